#!/usr/bin/env bash
# bench/stress_cpu_training.sh on the GPU machine's 16-core Xeon as 8 copies side by side, each `taskset` to 2 cores
# (the CI machine's thread count) with its own busy loops on those cores, each running its runs in a row; every run
# of every copy must give the same losses and checkpoint bytes. Usage there: bash bench/device/stress_pairs.sh
# Environment: RUNS (runs per copy, 4), LIMIT (seconds, 570: copies are cut there), OUT (results folder).
set -uo pipefail
out=${OUT:-/tmp/stress}; mkdir -p "$out"
bash .device/on-device.sh --version > /dev/null 2>&1 || true   # unpack the app once, before the copies race to
for pair in 0 1 2 3 4 5 6 7; do
  cores=$((2 * pair)),$((2 * pair + 1))
  OUT=/tmp/stress_$pair RUNS=${RUNS:-4} RETINANET="bash .device/on-device.sh" \
    timeout "${LIMIT:-570}" taskset -c "$cores" bash bench/stress_cpu_training.sh > "$out/copy$pair.log" 2>&1 &
done
wait
grep -h "^run " "$out"/copy*.log | awk '{print $4}' | sort | uniq -c
grep -h "exit" "$out"/copy*.log | head
