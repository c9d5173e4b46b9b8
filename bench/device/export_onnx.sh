#!/bin/bash
# Issue [5/7] on the GPU machine: the demo model exported (fp32, fp16, raw heads), checked by the image's newer onnx
# checker, run by Python's onnxruntime (another ORT build), and `infer MODEL.onnx` (our ONNX Runtime, CPU package:
# its notes say why TensorRT/CUDA are not used) against `infer MODEL.pth` (TorchSharp on the GPU and the CPU) on the
# held-out demo images. Expect: identical mAP lines for fp32 ONNX and the checkpoint, fp16 within a few 0.001, the
# .plan export refused in one line naming the missing TensorRT provider (exit 1). Then ResNet50FPN at 512x512 for
# speed: ORT CPU im/s vs TorchSharp on the GPU and CPU.
# Needs .device/ (bash ../shared/device/pack.sh bench/RetinaNet.Bench). Usage on the device: bash bench/device/export_onnx.sh
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; O=${OUT:-/tmp/out}; mkdir -p "$O"
{ nvidia-smi --query-gpu=name --format=csv,noheader; echo "cores $(nproc)"; date -u; git rev-parse --short HEAD 2>/dev/null; } | tee "$O/machine.txt"

$R demo --output "$O/demo" > "$O/demo.log" 2>&1; tail -1 "$O/demo.log"
M="$O/demo/model.pth"; DATA="$O/demo/data"
$R export "$M" "$O/fp32.onnx" --size 128 --full-precision 2>&1 | tail -1
$R export "$M" "$O/fp16.onnx" --size 128 2>&1 | tail -1
$R export "$M" "$O/raw.onnx" --size 128 --raw-heads --full-precision 2>&1 | tail -1
echo "== onnx checker ($(python3 -c 'import onnx; print(onnx.__version__)'))"; python3 tools/onnx/check.py "$O"/*.onnx
echo "== python onnxruntime"; python3 bench/onnx_peer.py "$O/fp32.onnx" "$O/fp16.onnx"
echo "== export to .plan without TensorRT"; $R export "$M" "$O/demo.plan" --size 128; echo "exit $?"

COMMON="--images $DATA/images --annotations $DATA/val.json --resize 128 --max-size 128 --batch 8 --workers 4"
for m in "$M --device cuda --full-precision" "$M --device cpu" "$O/fp32.onnx --device cpu" "$O/fp16.onnx --device cpu" "$O/fp32.onnx --device cuda"; do
  echo "== infer $m"
  $R infer $m $COMMON --output "$O/d.json" > "$O/infer.log" 2>&1
  grep -E "note:|error|im/s|IoU=0.50:0.95 \| area=   all|IoU=0.50      \| area=   all" "$O/infer.log"
done

echo "== speed: ResNet50FPN 512x512, 64 demo images (random weights, score threshold default)"
$R train "$O/r50.pth" --backbone ResNet50FPN --classes 3 --annotations "$DATA/annotations.json" --images "$DATA/images" \
  --iters 1 --backbone-weights none --batch 2 > "$O/r50-train.log" 2>&1 || tail -2 "$O/r50-train.log"
$R export "$O/r50.pth" "$O/r50.onnx" --size 512 --full-precision 2>&1 | tail -1
SPEED="--images $DATA/images --resize 512 --max-size 512 --batch 8 --workers 8"
for m in "$O/r50.pth --device cuda" "$O/r50.pth --device cpu" "$O/r50.onnx --device cpu"; do
  echo "== infer $m"; $R infer $m $SPEED --output "$O/r50.json" 2>&1 | grep -E "im/s|error"
done
