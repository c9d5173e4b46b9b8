#!/bin/bash
# INT8 export (issue [5/7]) on the GPU machine, on the demo's model (trained here on the GPU, ~1 min):
#  1. calibration on CUDA (histc / index_add_ histograms on the device) against the same on the CPU, per method:
#     same convolutions, scales within a few 1e-3 (the GPU's convolutions round differently, TF32);
#  2. the image's newer onnx checker and Python's onnxruntime load and run the QDQ models;
#  3. mAP of the QDQ models through `infer` (our ONNX Runtime, CPU package) against float32: within 0.01;
#  4. TensorRT 10, where installed (tensorrt module or trtexec): INT8 engines built from the QDQ models (full detector
#     and raw heads), with the number of layers running in INT8; else one line saying it is absent.
# Needs .device/ (bash ../shared/device/pack.sh bench/RetinaNet.Bench). Usage on the device: bash bench/device/int8.sh
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; O=${OUT:-/tmp/out}; mkdir -p "$O"
{ nvidia-smi --query-gpu=name --format=csv,noheader; echo "cores $(nproc)"; date -u; git rev-parse --short HEAD 2>/dev/null; } | tee "$O/machine.txt"

$R demo --output "$O/demo" --device cuda > "$O/demo.log" 2>&1; tail -1 "$O/demo.log"
M="$O/demo/model.pth"; DATA="$O/demo/data"
mkdir -p "$O/calibration"; ls "$DATA"/images/*.png | grep -v '/val_' | head -32 | xargs -I{} cp {} "$O/calibration/"
CAL="--size 128 --int8 --calibration-images $O/calibration --batch 8 --calibration-batches 4"
$R export "$M" "$O/fp32.onnx" --size 128 --full-precision 2>&1 | tail -1
for method in entropy minmax percentile; do
  for dev in cuda cpu; do
    echo "== export --int8 --calibration-method $method --device $dev"
    $R export "$M" "$O/int8-$method-$dev.onnx" $CAL --calibration-method $method --device $dev --calibration-table "$O/$method-$dev.cache" 2>&1 | tail -2
  done
  python3 bench/int8_check.py tables "$O/$method-cuda.cache" "$O/$method-cpu.cache"
done
$R export "$M" "$O/raw-int8.onnx" --raw-heads --size 128 --int8 --calibration-table "$O/entropy-cuda.cache" 2>&1 | tail -1

echo "== onnx checker ($(python3 -c 'import onnx; print(onnx.__version__)'))"; python3 tools/onnx/check.py "$O"/int8-*-cuda.onnx "$O/raw-int8.onnx"
echo "== python onnxruntime"; python3 bench/onnx_peer.py "$O/fp32.onnx" "$O"/int8-*-cuda.onnx

COMMON="--images $DATA/images --annotations $DATA/val.json --resize 128 --max-size 128 --batch 8 --workers 4 --device cpu"
for m in fp32 int8-entropy-cuda int8-minmax-cuda int8-percentile-cuda int8-entropy-cpu; do
  echo "== infer $m.onnx"
  $R infer "$O/$m.onnx" $COMMON --output "$O/d.json" > "$O/infer.log" 2>&1
  grep -E "error|IoU=0.50:0.95 \| area=   all|IoU=0.50      \| area=   all" "$O/infer.log"
done

echo "== TensorRT"; python3 bench/int8_check.py tensorrt "$O/int8-entropy-cuda.onnx" "$O/raw-int8.onnx" --batch 8
