#!/bin/bash
# [w2 6/7] item 2's fused convolutions (body norms folded, heads' conv + ReLU; on by default since 2026-12-03) against
# their absence in one call: BCCD val mAP of one trained model (the ResNet18-FPN of bccd_model.sh) in fp32 and bf16,
# then the model alone (ResNet50FPN, 800x1216, bf16 converted, channels-last) at batch 8 eager and batch 1 with CUDA
# graphs, the torchvision peer (AMP) beside it, and the parts at batch 8 and 1 (decode's top-k alone). LEVER names
# another bench switch to A/B the same way (LEVER=folded-downsamples: the fifth session's, off by default).
# Needs .device/ (NO_ORT=1 bash bench/device/pack_cli_lean.sh bench/RetinaNet.Bench) and .devdata/ (bccd, the fp16
# ResNet18 weights). Usage on the device: [LEVER=fused-conv] [PROFILE=1] bash bench/device/fused_accuracy.sh [iters]
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; D=.devdata; O=${OUT:-/tmp/out}; mkdir -p "$O"
ITERS=${1:-1500}; LEVER=${LEVER:-fused-conv}
bash bench/device/train_bccd.sh $ITERS
for precision in fp32 bf16; do
  for fused in false true; do
    $R e2e --mode eval --model /tmp/bccd.pth --images $D/bccd/images --annotations $D/bccd/annotations/val.json \
      --resize 480 --max-size 640 --batch 8 --precision $precision --$LEVER $fused > "$O/eval.log" 2>&1
    echo "BCCD val, $precision, $LEVER $fused:"
    grep -E 'levers|IoU=0.50:0.95 \| area=   all \| maxDets=100|IoU=0.50      \| area=   all' "$O/eval.log"
  done
done
b="$R infer --precision bf16 --convert true --nhwc true --height 800 --width 1216"
for i in 1 2; do
  for f in false true; do
    $b --batch 8 --parts false --$LEVER $f 2>/dev/null | tail -1 | tee -a "$O/model.jsonl"
    $b --batch 1 --graphs true --parts false --$LEVER $f 2>/dev/null | tail -1 | tee -a "$O/model.jsonl"
  done
  python3 .device/peer_torchvision.py --mode infer --batch 8 --amp --score-thresh 0 | tee -a "$O/model.jsonl"
done
for bs in 8 1; do $b --batch $bs --$LEVER true 2>/dev/null | tail -1 | tee -a "$O/model.jsonl"; done
# with PROFILE=1: every kernel of a detector call timed by Nsight Compute (4 calls: 3 warm-ups and 1 timed), summed
# per kernel and family (bench/kernel_profile.py), at batch 1 and 8, eager
if [[ -n "${PROFILE:-}" ]]; then
  for bs in 1 8; do
    timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
      $b --batch $bs --iters 1 --parts false --$LEVER true > "$O/ncu_b$bs.csv" 2> "$O/ncu_b$bs.err"
    python3 bench/kernel_profile.py "$O/ncu_b$bs.csv" 4 --top 30
  done
fi
