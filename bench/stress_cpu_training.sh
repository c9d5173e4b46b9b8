#!/usr/bin/env bash
# Stress check of CPU training ([w2 1/7]): the same small seeded CPU training RUNS times in a row while another
# process keeps every core busy. Passes when no run meets a NaN and all runs give the same per-iteration losses and
# byte-identical checkpoints. Prints one line per run and a verdict; exit 1 on any difference.
#   bash bench/stress_cpu_training.sh                       # here (builds ./retinanet on first use)
#   RETINANET="bash .device/on-device.sh" bash bench/stress_cpu_training.sh   # on the GPU machine (its CPU)
# Environment: RUNS (20), ITERS (30), WORKERS (0: the default), NICE (19: the busy loops' niceness), OUT (a temp folder).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
retinanet=${RETINANET:-$root/retinanet}
runs=${RUNS:-20} iters=${ITERS:-30} workers=${WORKERS:-0}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

# data: the demo's synthetic shapes (PNG + COCO JSON), written by a 1-iteration demo run
$retinanet demo --output "$out/data" --iters 1 --images 32 --backbone-weights none --device cpu > "$out/data.log" 2>&1 \
  || { echo "could not write the dataset:"; tail -3 "$out/data.log"; exit 1; }

# load: one busy loop per core (niced, so the runs still finish in minutes: the point is threads preempted at
# random moments, not a slower machine), ended when this script exits
busy=()
for _ in $(seq "$(nproc)"); do nice -n "${NICE:-19}" bash -c 'while :; do :; done' & busy+=($!); done
trap 'kill "${busy[@]}" 2>/dev/null' EXIT

first="" nan=0 differ=0
for run in $(seq "$runs"); do
  model="$out/run$run.pth"
  # jitter, rotation and colour jitter: the configuration that met NaN on 2-core AMD machines before the fix
  $retinanet train "$model" --override --device cpu --annotations "$out/data/data/annotations.json" \
    --images "$out/data/data/images" --backbone ResNet18FPN --classes 3 --backbone-weights none --batch 4 \
    --resize 128 --max-size 160 --jitter 96 160 --augment-rotate --augment-brightness 0.1 --augment-contrast 0.1 \
    --augment-saturation 0.1 --augment-hue 0.02 --iters "$iters" --warmup 5 --milestones $((iters * 3 / 4)) \
    --lr 0.01 --log-interval 0 --seed 1 --workers "$workers" > "$out/run$run.log" 2>&1
  code=$?
  losses=$(grep -oE '^\[ *[0-9]+/[0-9]+\] focal loss: [0-9.naif]+, box loss: [0-9.naif]+' "$out/run$run.log")
  sum=$( (echo "$losses"; [[ -f $model ]] && sha256sum < "$model") | sha256sum | cut -c1-16)
  if [[ $code -ne 0 ]]; then
    nan=$((nan + 1)); echo "run $run: exit $code: $(tail -1 "$out/run$run.log")"; continue
  fi
  [[ -z $first ]] && first=$sum
  [[ $sum != "$first" ]] && differ=$((differ + 1))
  echo "run $run: losses+weights $sum, last: $(echo "$losses" | tail -1)"
done
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs): $runs runs, $nan failed, $differ differ from run 1"
[[ $nan -eq 0 && $differ -eq 0 ]]
