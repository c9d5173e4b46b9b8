#!/bin/bash
# The BCCD ResNet18-FPN that the lever scripts (fused_accuracy.sh, levers.sh) evaluate with each lever off and on:
# ImageNet ResNet18 weights (fp16), 480 px, seed 0. Writes /tmp/bccd.pth and OUT/train.log, and the machine's name.
# Usage on the device, from another script: bash bench/device/train_bccd.sh [iters]
set -uo pipefail
R="bash .device/on-device.sh"; D=.devdata; O=${OUT:-/tmp/out}; mkdir -p "$O"
ITERS=${1:-1500}
{ nvidia-smi --query-gpu=name --format=csv,noheader; echo "cores $(nproc)"; date -u; } | tee "$O/machine.txt"
RETINANET_EXE=RetinaNet.Bench $R train /tmp/bccd.pth --backbone ResNet18FPN --classes 3 --batch 8 --jitter 480 480 \
  --resize 480 --iters $ITERS --milestones $((ITERS*2/3)) $((ITERS*13/15)) --warmup $((ITERS/5)) --lr 0.0025 \
  --seed 0 --annotations $D/bccd/annotations/train.json --images $D/bccd/images \
  --backbone-weights $D/resnet18-imagenet-fp16.safetensors > "$O/train.log" 2>&1
tail -1 "$O/train.log"
