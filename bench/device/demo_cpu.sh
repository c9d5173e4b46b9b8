#!/usr/bin/env bash
# The demo on the GPU machine's CPU, each configuration pinned to 2 cores (taskset) as on a 2-core CI machine,
# several configurations side by side; then, if SECOND_RUN=1, the first configuration again to compare bit for bit.
# Usage there: bash bench/device/demo_cpu.sh "--lr 0.01" "--lr 0.005" ...   (WEIGHTS: backbone weights file)
set -uo pipefail
weights=${WEIGHTS:-.device/resnet18-fp16.safetensors}
out=${OUT:-/tmp/demo_cpu}; mkdir -p "$out"
i=0
for cfg in "$@"; do
  cores="$((2 * i)),$((2 * i + 1))"
  ( start=$SECONDS
    OMP_NUM_THREADS=2 taskset -c "$cores" bash .device/on-device.sh demo --device cpu --backbone-weights "$weights" \
      --output "$out/c$i" $cfg > "$out/c$i.log" 2>&1
    echo "config $i [$cfg] cores $cores: exit $? in $((SECONDS - start)) s" > "$out/c$i.time" ) &
  i=$((i + 1))
done
wait
for j in $(seq 0 $((i - 1))); do
  cat "$out/c$j.time"
  grep -E "Average Precision.*(0.50:0.95 \| area=   all|0.50      \| area=   all)" "$out/c$j.log" | sed 's/^/  /'
  grep -E "error|NaN" "$out/c$j.log" | head -2 | sed 's/^/  /'
  tr '\r' '\n' < "$out/c$j.log" | grep -E '^\[ *[0-9]+/' | awk 'NR % 4 == 0' | tail -3 | sed 's/^/  /'
  [[ -f $out/c$j/model.pth ]] && sha256sum "$out/c$j/model.pth" | cut -c1-16 | sed 's/^/  model /'
done
