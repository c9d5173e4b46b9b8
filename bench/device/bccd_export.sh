#!/bin/bash
# Issue [5/7] accuracy on BCCD val: the ResNet18-FPN trained as in issue [3/7] (same command as issues_2_4.sh), then
# mAP of the TorchSharp checkpoint vs its FP32 ONNX, FP16 ONNX and calibrated INT8 QDQ ONNX run by `infer MODEL.onnx`
# (ONNX Runtime, CPU provider), all at the same input size (640x512 canvas: BCCD's 640x480 at --resize 480).
# Needs .device/ and .devdata/ (bccd + fp16 ResNet18 weights). Usage on the device: bash bench/device/bccd_export.sh [iters]
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; D=.devdata; O=${OUT:-/tmp/out}; mkdir -p "$O"
ITERS=${1:-1500}
{ nvidia-smi --query-gpu=name --format=csv,noheader; echo "cores $(nproc)"; date -u; } | tee "$O/bccd_machine.txt"
$R train $O/bccd.pth --backbone ResNet18FPN --classes 3 --batch 8 --jitter 480 480 --resize 480 --iters $ITERS \
  --milestones $((ITERS*2/3)) $((ITERS*13/15)) --warmup $((ITERS/5)) --lr ${LR:-0.005} \
  --annotations $D/bccd/annotations/train.json --images $D/bccd/images --backbone-weights ${WEIGHTS:-$D/resnet18-imagenet-fp16.pth} > "$O/bccd_train.log" 2>&1
tail -1 "$O/bccd_train.log"
$R export $O/bccd.pth $O/bccd_fp32.onnx --size 512 640 --full-precision 2>&1 | tail -1
$R export $O/bccd.pth $O/bccd_fp16.onnx --size 512 640 2>&1 | tail -1
$R export $O/bccd.pth $O/bccd_int8.onnx --size 512 640 --int8 --calibration-images $D/bccd/images --calibration-batches 16 --batch 8 \
  --calibration-table $O/bccd_int8.cache 2>&1 | tail -2
python3 tools/onnx/check.py $O/bccd_*.onnx 2>&1 | tail -3
VAL="--images $D/bccd/images --annotations $D/bccd/annotations/val.json --resize 480 --max-size 640 --batch 8 --workers 8"
for m in "$O/bccd.pth --device cuda --full-precision" "$O/bccd.pth --device cuda" "$O/bccd.pth --device cpu" "$O/bccd_fp32.onnx --device cpu" "$O/bccd_fp16.onnx --device cpu" "$O/bccd_int8.onnx --device cpu"; do
  $R infer $m $VAL --output "$O/bccd_dets.json" > "$O/bccd_infer.log" 2>&1
  echo "$m | $(grep -E 'IoU=0.50:0.95 \| area=   all \| maxDets=100' "$O/bccd_infer.log" | head -1 | awk '{print "mAP", $NF}') | $(grep -E 'IoU=0.50      \| area=   all' "$O/bccd_infer.log" | awk '{print "AP50", $NF}') | $(grep -oE '[0-9.]+ im/s' "$O/bccd_infer.log" | head -1) $(grep -E 'error|note' "$O/bccd_infer.log" | head -2)"
done | tee "$O/bccd_export.txt"
