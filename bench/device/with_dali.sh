#!/bin/bash
# --with-dali (nvJPEG decode + GPU augmentation) on the GPU machine: pixel agreement with the CPU decoder, loader
# throughput, and the BCCD accuracy run of issues_2_4.sh (lr 0.0025) with the GPU data path for training and inference.
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; D=.devdata; O=${OUT:-/tmp/out}; mkdir -p "$O"; ITERS=${1:-1500}
{ nvidia-smi --query-gpu=name --format=csv,noheader; date -u; } | tee "$O/machine.txt"
$R nvjpeg-check --images $D/bccd/images 2>&1 | tail -1
$R nvjpeg-check --images tests/RetinaNet.Tests/Fixtures/images 2>&1 | tail -1
$R loader --images $D/bccd/images --count 4096 --workers 4,8,15 --pin true --gpu-decode true 2>&1 | grep bench
COMMON="--backbone ResNet18FPN --classes 3 --batch 8 --jitter 480 480 --resize 480 --iters $ITERS --milestones $((ITERS*2/3)) $((ITERS*13/15)) --warmup $((ITERS/5)) --lr 0.0025"
start=$SECONDS
$R train $O/bccd.pth $COMMON --with-dali --annotations $D/bccd/annotations/train.json --images $D/bccd/images \
  --backbone-weights $D/resnet18-imagenet-fp16.pth --log-interval 15 > "$O/train.log" 2>&1
echo "train_wall_s $((SECONDS-start))"; grep "^\[" "$O/train.log" | tail -1; grep -v "^\[" "$O/train.log" | tail -2
$R infer $O/bccd.pth --with-dali --images $D/bccd/images --annotations $D/bccd/annotations/val.json --output $O/dets.json --resize 480 --batch 8 > "$O/infer.log" 2>&1
grep -E "im/s|IoU=0.50:0.95 \| area=   all|IoU=0.50      \| area=   all" "$O/infer.log"
