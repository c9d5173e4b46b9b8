#!/bin/bash
# Second look at the torchvision peer on BCCD (it diverged at lr 0.005 in bf16 and in fp16+GradScaler):
# the same schedule in fp32, and half the lr in fp16. Each scored by `retinanet evaluate`.
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; D=.devdata; O=${OUT:-/tmp/out}; mkdir -p "$O"; ITERS=${1:-1500}
for v in "fp32 0.005" "fp16 0.0025"; do
  set -- $v
  python3 bench/accuracy/torchvision_peer.py --train-json $D/bccd/annotations/train.json --train-images $D/bccd/images \
    --val-json $D/bccd/annotations/val.json --val-images $D/bccd/images --weights $D/resnet18-imagenet-fp16.pth --out $O/peer_$1_$2.json \
    --iters $ITERS --batch 8 --size 480 --lr $2 --precision $1 --warmup $((ITERS/5)) --milestones $((ITERS*2/3)) $((ITERS*13/15)) > "$O/peer_$1_$2.log" 2>&1
  grep first_non_finite "$O/peer_$1_$2.log" | head -2
  $R evaluate --annotations $D/bccd/annotations/val.json --detections $O/peer_$1_$2.json > "$O/peer_eval_$1_$2.txt" 2>&1
  head -2 "$O/peer_eval_$1_$2.txt"
done
