#!/bin/bash
# One GPU-machine run for issues [2/7]-[4/7] (see bench/RESULTS.md for what it produced):
#   speed of inference and of a training step (ours, end to end) vs torchvision's RetinaNet in the same run,
#   data-loader throughput, BCCD accuracy of ours vs torchvision (same weights, size, batch, iterations, schedule),
#   and a TensorBoard read-back of our event files.
# Needs .device/ (bash ../shared/device/pack.sh bench/RetinaNet.Bench) and .devdata/ (bccd + fp16 ResNet18 weights).
# Usage on the device: bash bench/device/issues_2_4.sh [iters]
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"
D=.devdata
O=${OUT:-/tmp/out}; mkdir -p "$O"
ITERS=${1:-1500}
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; echo "cores $(nproc)"; date -u; } | tee "$O/machine.txt"

if [[ -z "${SKIP_SPEED:-}" ]]; then
echo "== speed: inference and training step, ResNet50FPN 800x1216, score threshold 0"
for args in "infer --batch 1 --precision fp32" "infer --batch 1 --precision bf16 --convert true --nhwc true" \
            "infer --batch 8 --precision bf16" "infer --batch 8 --precision bf16 --convert true --nhwc true" "infer --batch 8 --precision fp16 --convert true --nhwc true" \
            "train --batch 8 --precision bf16" ${SPEED_EXTRA:-}; do
  $R $args --iters 20 2>&1 | tail -1 | tee -a "$O/speed.jsonl"
done
for args in "--mode infer --batch 1" "--mode infer --batch 8 --amp" "--mode train --batch 8 --amp"; do
  python3 .device/peer_torchvision.py $args --score-thresh 0 2>&1 | tail -1 | tee -a "$O/speed.jsonl"
done

fi

if [[ -n "${LOADER:-}" ]]; then
  echo "== loader: decode + augment (800 shorter side, max 1333) + batch on BCCD"
  $R loader --images $D/bccd/images --count 2048 --workers 1,4,8,15 --pin true 2>&1 | tee "$O/loader.jsonl"
fi

echo "== accuracy: ours on BCCD"
COMMON="--backbone ResNet18FPN --classes 3 --batch 8 --jitter 480 480 --resize 480 --iters $ITERS --milestones $((ITERS*2/3)) $((ITERS*13/15)) --warmup $((ITERS/5)) --lr ${LR:-0.005}"
start=$SECONDS; $R train $O/bccd.pth $COMMON --annotations $D/bccd/annotations/train.json --images $D/bccd/images \
  --backbone-weights $D/resnet18-imagenet-fp16.pth --logdir $O/tb --log-interval 15 > "$O/ours_train.log" 2>&1
echo "train_wall_s $((SECONDS-start))" >> "$O/ours_train.log"
tail -3 "$O/ours_train.log"
$R infer $O/bccd.pth --images $D/bccd/images --annotations $D/bccd/annotations/val.json --output $O/ours_dets.json --resize 480 --batch 8 > "$O/ours_infer.log" 2>&1
$R evaluate --annotations $D/bccd/annotations/val.json --detections $O/ours_dets.json --metrics-json $O/ours_metrics.json > "$O/ours_eval.txt" 2>&1

echo "== accuracy: torchvision on BCCD"
python3 bench/accuracy/torchvision_peer.py --train-json $D/bccd/annotations/train.json --train-images $D/bccd/images \
  --val-json $D/bccd/annotations/val.json --val-images $D/bccd/images --weights $D/resnet18-imagenet-fp16.pth --out $O/peer_dets.json \
  --iters $ITERS --batch 8 --size 480 --lr ${LR:-0.005} --warmup $((ITERS/5)) --milestones $((ITERS*2/3)) $((ITERS*13/15)) > "$O/peer_train.log" 2>&1
tail -2 "$O/peer_train.log"
$R evaluate --annotations $D/bccd/annotations/val.json --detections $O/peer_dets.json --metrics-json $O/peer_metrics.json > "$O/peer_eval.txt" 2>&1

echo "== TensorBoard read-back"
python3 - "$O/tb" > "$O/tensorboard.txt" 2>&1 <<'PY'
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
tags = ea.Tags()['scalars']; print('tags', tags)
for t in tags: print(t, [(s.step, round(s.value, 4)) for s in ea.Scalars(t)][:3], '...', len(ea.Scalars(t)), 'points')
PY
cat "$O/tensorboard.txt" | head -8

echo "== summary"
cat "$O/speed.jsonl"
grep -h "Average Precision  (AP) @\[ IoU=0.50:0.95 | area=   all" "$O/ours_eval.txt" "$O/peer_eval.txt"
grep -h "Average Precision  (AP) @\[ IoU=0.50      | area=   all" "$O/ours_eval.txt" "$O/peer_eval.txt"
grep -h "train_wall_s\|im/s" "$O/ours_train.log" | tail -2; tail -1 "$O/peer_train.log"
