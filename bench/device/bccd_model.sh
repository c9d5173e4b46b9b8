#!/bin/bash
# Trains the BCCD ResNet18-FPN of bccd_export.sh on the GPU and sends it back in fp16 (the machine returns files of at
# most 16 MiB: the checkpoint comes back split), so INT8 exports of one model can be timed on other CPUs.
# Needs .device/ (bash ../shared/device/pack.sh) and .devdata/ (bccd + fp16 ResNet18 weights).
# Usage on the device: bash bench/device/bccd_model.sh [iters]; here: cat OUT/bccd16.pth.part* > bccd16.pth
set -uo pipefail
R="bash .device/on-device.sh"; D=.devdata; O=${OUT:-/tmp/out}; mkdir -p "$O"
ITERS=${1:-1500}
{ nvidia-smi --query-gpu=name --format=csv,noheader; echo "cores $(nproc)"; date -u; } | tee "$O/machine.txt"
$R train /tmp/bccd.pth --backbone ResNet18FPN --classes 3 --batch 8 --jitter 480 480 --resize 480 --iters $ITERS \
  --milestones $((ITERS*2/3)) $((ITERS*13/15)) --warmup $((ITERS/5)) --lr ${LR:-0.0025} --seed ${SEED:-0} \
  --annotations $D/bccd/annotations/train.json --images $D/bccd/images \
  --backbone-weights $D/resnet18-imagenet-fp16.safetensors > "$O/train.log" 2>&1
tail -2 "$O/train.log"
$R infer /tmp/bccd.pth --images $D/bccd/images --annotations $D/bccd/annotations/val.json --resize 480 --max-size 640 \
  --batch 8 --device cuda --full-precision --output /tmp/d.json > "$O/infer.log" 2>&1
grep -E 'IoU=0.50:0.95 \| area=   all \| maxDets=100|IoU=0.50      \| area=   all' "$O/infer.log"
python3 - <<'PY'
import torch
ck = torch.load("/tmp/bccd.pth", map_location="cpu", weights_only=False)
sd = ck["state_dict"]
for k, v in sd.items():
    if v.is_floating_point() and v.abs().max() < 60000: sd[k] = v.half()
torch.save(ck, "/tmp/bccd16.pth")
PY
split -b 15M -d /tmp/bccd16.pth "$O/bccd16.pth.part"; ls -la "$O"; sha256sum /tmp/bccd16.pth
