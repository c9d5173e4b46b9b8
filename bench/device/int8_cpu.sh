#!/bin/bash
# [w2 6/7] item 6 on the GPU machine's 16-core CPU: a BCCD ResNet18-FPN trained here on the GPU (from random weights:
# the ImageNet weights do not fit in the call beside an app with ONNX Runtime), exported float32 and INT8 for ONNX
# Runtime and for TensorRT, each run by `infer --device cpu` (our ONNX Runtime 1.31, CPU provider) on BCCD val:
# mAP and images/s, twice in turns; then Python's onnxruntime on random batches as a second client.
# Needs .device/ (bash bench/device/pack_cli_lean.sh) and .devdata/bccd. Usage on the device: bash bench/device/int8_cpu.sh
set -uo pipefail
R="bash .device/on-device.sh"; D=.devdata; O=${OUT:-/tmp/out}; mkdir -p "$O"; W=/tmp/w; mkdir -p $W
ITERS=${1:-1500}
{ nvidia-smi --query-gpu=name --format=csv,noheader; echo "cores $(nproc)"; lscpu | grep 'Model name'; date -u; } | tee "$O/machine.txt"
$R train $W/bccd.pth --backbone ResNet18FPN --classes 3 --batch 8 --jitter 480 480 --resize 480 --iters $ITERS \
  --milestones $((ITERS*2/3)) $((ITERS*13/15)) --warmup $((ITERS/5)) --lr 0.005 \
  --annotations $D/bccd/annotations/train.json --images $D/bccd/images --backbone-weights none > "$O/train.log" 2>&1 \
  || { tail -2 "$O/train.log"; exit 1; }
tail -1 "$O/train.log"
CAL="--size 512 640 --int8 --calibration-images $D/bccd/images --calibration-batches 16 --batch 8"
$R export $W/bccd.pth $W/fp32.onnx --size 512 640 --full-precision 2>&1 | tail -1
$R export $W/bccd.pth $W/int8-ort.onnx $CAL --int8-target onnxruntime 2>&1 | tail -1
$R export $W/bccd.pth $W/int8-trt.onnx $CAL --int8-target tensorrt --device cuda 2>&1 | tail -1
VAL="--images $D/bccd/images --annotations $D/bccd/annotations/val.json --resize 480 --max-size 640 --batch 8 --device cpu"
for m in fp32 int8-ort int8-trt fp32 int8-ort int8-trt; do
  $R infer $W/$m.onnx $VAL --output $W/d.json > "$O/infer-$m.log" 2>&1
  echo "$m | $(grep -E 'IoU=0.50:0.95 \| area=   all \| maxDets=100' "$O/infer-$m.log" | awk '{print "mAP", $NF}') | $(grep -E 'IoU=0.50      \| area=   all' "$O/infer-$m.log" | awk '{print "AP50", $NF}') | $(grep -oE '[0-9]+ images in [0-9.]+ s: [0-9.]+ im/s' "$O/infer-$m.log") $(grep -E 'error' "$O/infer-$m.log" | head -2)"
done | tee "$O/int8_cpu.txt"
python3 bench/onnx_peer.py $W/fp32.onnx $W/int8-ort.onnx $W/int8-trt.onnx --batch 8 --runs 5 | tee -a "$O/int8_cpu.txt"
ls -la $W/*.onnx | tee -a "$O/int8_cpu.txt"
