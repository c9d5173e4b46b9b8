#!/bin/bash
# [w2 6/7] the sixth session's levers (each off by default until this call): --folded-downsamples, --maxpool-kernel,
# --nhwc-decode. One call: BCCD val mAP of one trained ResNet18-FPN with all of them off and on (fp32,
# bf16); the model alone (ResNet50FPN, 800x1216, bf16 converted, channels-last; batch 8 eager, batch 1 CUDA graphs)
# with none, each alone and all, the base and all twice, the torchvision peer (AMP) twice beside them; the parts with
# all on; with PROFILE=1 every kernel of a batch-8 call with all on (Nsight Compute, bench/kernel_profile.py).
# Needs .device/ (NO_ORT=1 bash bench/device/pack_cli_lean.sh bench/RetinaNet.Bench) and .devdata/ (bccd, the fp16
# ResNet18 weights). Usage on the device: [PROFILE=1] bash bench/device/levers.sh [iters]
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; D=.devdata; O=${OUT:-/tmp/out}; mkdir -p "$O"
ITERS=${1:-1500}
NONE="--folded-downsamples false --maxpool-kernel false --nhwc-decode false"
ALL="--folded-downsamples true --maxpool-kernel true --nhwc-decode true"
bash bench/device/train_bccd.sh $ITERS
for precision in fp32 bf16; do
  for levers in "$NONE" "$ALL"; do
    $R e2e --mode eval --model /tmp/bccd.pth --images $D/bccd/images --annotations $D/bccd/annotations/val.json \
      --resize 480 --max-size 640 --batch 8 --precision $precision $levers > "$O/eval.log" 2>&1
    echo "BCCD val, $precision, $levers:"
    grep -E 'IoU=0.50:0.95 \| area=   all \| maxDets=100|IoU=0.50      \| area=   all' "$O/eval.log"
  done
done
b="$R infer --precision bf16 --convert true --nhwc true --height 800 --width 1216"
run() { $b --batch 8 --parts false "$@" 2>/dev/null | tail -1 | tee -a "$O/model.jsonl"
        $b --batch 1 --graphs true --parts false "$@" 2>/dev/null | tail -1 | tee -a "$O/model.jsonl"; }
for i in 1 2; do
  run $NONE; run $ALL
  python3 .device/peer_torchvision.py --mode infer --batch 8 --amp --score-thresh 0 | tee -a "$O/model.jsonl"
  if [[ $i == 1 ]]; then
    for lever in folded-downsamples maxpool-kernel nhwc-decode; do run ${NONE/--$lever false/--$lever true}; done
  fi
done
for bs in 8 1; do $b --batch $bs --parts true $ALL 2>/dev/null | tail -1 | tee -a "$O/model.jsonl"; done
if [[ -n "${PROFILE:-}" ]]; then
  timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    $b --batch 8 --iters 1 --parts false $ALL > "$O/ncu_b8.csv" 2> "$O/ncu_b8.err"
  python3 bench/kernel_profile.py "$O/ncu_b8.csv" 4 --top 30
fi
