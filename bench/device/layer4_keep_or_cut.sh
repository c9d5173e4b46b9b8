#!/usr/bin/env bash
# [w2 1/7] Keep or cut the third layer4 block of NuGet's ImageNet ResNet18? BCCD val mAP of ResNet18FPN (layer4 cut
# to torchvision's 2 blocks) against ResNet18x3FPN (all 3 blocks, an exact copy of the package's network), same
# training as bench/device/bccd_export.sh, SEEDS seeds each, PAR runs side by side on the GPU.
# Needs an app published from branch layer4-measure (it adds ResNet18x3FPN) and W=folder with bccd/ and both
# fp16-rounded weight files. Usage there: W=/tmp/w bash bench/device/layer4_keep_or_cut.sh
set -uo pipefail
R="bash .device/on-device.sh"; W=${W:-/tmp/w}; O=${OUT:-/tmp/out}; mkdir -p "$O"
ITERS=${ITERS:-1500} SEEDS=${SEEDS:-"1 2 3"} PAR=${PAR:-3}
{ nvidia-smi --query-gpu=name --format=csv,noheader; date -u; } | tee "$O/l4_machine.txt"
one() { # backbone weights seed
  local tag=$1-s$3
  $R train "$O/$tag.pth" --backbone "$1" --classes 3 --batch 8 --jitter 480 480 --resize 480 --iters "$ITERS" \
    --milestones $((ITERS*2/3)) $((ITERS*13/15)) --warmup $((ITERS/5)) --lr 0.005 --seed "$3" \
    --annotations "$W/bccd/annotations/train.json" --images "$W/bccd/images" --backbone-weights "$2" > "$O/$tag.train.log" 2>&1
  $R infer "$O/$tag.pth" --images "$W/bccd/images" --annotations "$W/bccd/annotations/val.json" --resize 480 \
    --max-size 640 --batch 8 --output "$O/$tag.dets.json" > "$O/$tag.infer.log" 2>&1
  echo "$1 seed $3: $(grep -E 'IoU=0.50:0.95 \| area=   all \| maxDets=100' "$O/$tag.infer.log" | head -1 | awk '{print "mAP", $NF}')" \
    "$(grep -E 'IoU=0.50      \| area=   all' "$O/$tag.infer.log" | awk '{print "AP50", $NF}')" \
    "$(tail -1 "$O/$tag.train.log" | cut -c1-100)" > "$O/$tag.result"
}
jobs=()
for s in $SEEDS; do jobs+=("ResNet18FPN $W/resnet18-fp16.safetensors $s" "ResNet18x3FPN $W/resnet18x3-fp16.safetensors $s"); done
i=0
for j in "${jobs[@]}"; do
  one $j &
  i=$((i + 1)); (( i % PAR == 0 )) && wait
done
wait
cat "$O"/*.result
