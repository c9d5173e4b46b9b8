#!/bin/bash
# Issue [6/7] on a machine with several GPUs (made for 2 H100s; < 5 min there after the machine starts):
#  1. nccl-check: the NCCL building blocks from C# (collectives checked by value, fp32 all-reduce timed; NCCL_DEBUG=INFO
#     in nccl.log shows the transport, P2P/NVLink expected).
#  2. ResNet50FPN training at 800x1216 (synthetic 1216x800 JPEGs made here, nothing to carry), 200 iterations with
#     the same global batch 8 on 1 GPU and on N GPUs: loss per 50 iterations compared; then N GPUs at 8 per GPU for
#     the usual (per-GPU batch kept) scaling efficiency = N-GPU im/s / (N x 1-GPU im/s), target >= 0.9.
#  3. inference of the 1-GPU model on 1 GPU (batch 1) and on N GPUs (batch 1 each): the same detections and mAP.
#  4. a training job on N GPUs whose rank 1 is killed (SIGKILL) mid-run: the job must end non-zero within seconds,
#     naming rank 1.
# Needs .device/ (bash ../shared/device/pack.sh bench/RetinaNet.Bench). Logs and a summary go to $OUT.
# Usage on the device, from the repository root: bash bench/device/multi_gpu.sh [iterations]
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"
O=${OUT:-/tmp/out}; mkdir -p "$O"
W=/tmp/multi_gpu; mkdir -p "$W"
ITERS=${1:-200}
N=${GPUS:-$(nvidia-smi -L | wc -l)}
REPORT="python3 bench/device/multi_gpu_report.py"
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; echo "gpus $N, cores $(nproc)"; date -u; } | tee "$O/machine.txt"
start_all=$SECONDS

echo "== 1. nccl-check on $N GPUs"
NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,P2P $R nccl-check --gpus "$N" > "$O/nccl.log" 2>&1; nccl_code=$?
grep '"bench": "nccl"' "$O/nccl.log" | tee "$O/nccl.json"
grep -hoE "via (P2P/[A-Za-z/]+|SHM[A-Za-z/]*|NET/[A-Za-z/]+)" "$O/nccl.log" | sort | uniq -c | head -5
if [[ $nccl_code != 0 ]]; then echo "nccl-check failed (exit $nccl_code):"; grep -v "NCCL INFO" "$O/nccl.log" | tail -20; fi

echo "== data: synthetic 1216x800"
python3 bench/device/make_shapes.py "$W/data" --train 192 --val 48 | tee "$O/data.txt"
D="--annotations $W/data/train.json --images $W/data/images"
TRAIN="--backbone ResNet50FPN --classes 3 --backbone-weights none --jitter 800 800 --resize 800 --max-size 1216 --lr 0.001 --warmup 50 --seed 0 --log-interval 1 --checkpoint-interval 100000 --override"

echo "== 2. training: $ITERS iterations, global batch 8, 1 GPU then $N GPUs"
s=$SECONDS; $R train "$W/one.pth" $D $TRAIN --iters "$ITERS" --batch 8 --gpus 1 > "$O/train_1gpu.log" 2>&1; echo "exit $? in $((SECONDS - s)) s (1 GPU)"
s=$SECONDS; $R train "$W/many.pth" $D $TRAIN --iters "$ITERS" --batch 8 --gpus "$N" > "$O/train_${N}gpu.log" 2>&1; echo "exit $? in $((SECONDS - s)) s ($N GPUs)"
s=$SECONDS; $R train "$W/weak.pth" $D $TRAIN --iters 120 --batch $((8 * N)) --gpus "$N" > "$O/train_${N}gpu_batch$((8 * N)).log" 2>&1; echo "exit $? in $((SECONDS - s)) s ($N GPUs, 8 per GPU)"
grep -h "error" "$O"/train_*.log | head -5
$REPORT curves "$O/train_1gpu.log" "$O/train_${N}gpu.log" | tee "$O/curves.txt"
one=$($REPORT throughput "$O/train_1gpu.log" 8)
many=$($REPORT throughput "$O/train_${N}gpu.log" 8)
weak=$($REPORT throughput "$O/train_${N}gpu_batch$((8 * N)).log" $((8 * N)))

echo "== 3. inference: 1 GPU vs $N GPUs, batch 1 per GPU, the 1-GPU model"
INFER="--images $W/data/images --annotations $W/data/val.json --resize 800 --max-size 1216"
$R infer "$W/one.pth" $INFER --gpus 1 --batch 1 --output "$W/dets_1gpu.json" > "$O/infer_1gpu.log" 2>&1; echo "exit $? (1 GPU)"
$R infer "$W/one.pth" $INFER --gpus "$N" --batch "$N" --output "$W/dets_${N}gpu.json" > "$O/infer_${N}gpu.log" 2>&1; echo "exit $? ($N GPUs)"
$REPORT detections "$W/dets_1gpu.json" "$W/dets_${N}gpu.json" | tee "$O/detections.txt"
map1=$(grep -h "IoU=0.50:0.95 | area=   all | maxDets=100" "$O/infer_1gpu.log" | head -1 | awk '{print $NF}')
mapn=$(grep -h "IoU=0.50:0.95 | area=   all | maxDets=100" "$O/infer_${N}gpu.log" | head -1 | awk '{print $NF}')

echo "== 4. rank 1 killed during training on $N GPUs"
$R train "$W/kill.pth" $D $TRAIN --iters 100000 --batch $((8 * N)) --gpus "$N" > "$O/kill.log" 2>&1 &
launcher=$!
for _ in $(seq 1 240); do [[ $(grep -c "^\[" "$O/kill.log") -ge 3 ]] && break; kill -0 $launcher 2>/dev/null || break; sleep 0.5; done
victim=""
for p in $(pgrep -P $launcher); do tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "RANK=1" && victim=$p; done
kill_code=none; kill_s=none
if [[ -n $victim ]]; then
  t0=$EPOCHREALTIME; kill -9 "$victim"
  for _ in $(seq 1 1200); do kill -0 $launcher 2>/dev/null || break; sleep 0.1; done
  if kill -0 $launcher 2>/dev/null; then echo "STILL RUNNING 120 s after the kill"; pkill -9 -P $launcher; kill -9 $launcher; fi
  wait $launcher; kill_code=$?
  kill_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
else
  echo "could not find rank 1 (launcher pid $launcher)"; kill -9 $launcher 2>/dev/null
fi
grep -E "error|failed" "$O/kill.log" | head -5
left=$(pgrep -c -f "retinanet-app/RetinaNet.Bench" || true)

echo "== summary ($((SECONDS - start_all)) s)" | tee "$O/summary.txt"
eff_strong=$(python3 -c "print(f'{$many / ($N * $one):.2f}')" 2>/dev/null || echo nan)
eff_weak=$(python3 -c "print(f'{$weak / ($N * $one):.2f}')" 2>/dev/null || echo nan)
{
  printf "%-52s %s\n" "nccl-check ($N ranks)" "$(grep -oE '"checks": "ok"|busbw_gbs": [0-9.]+' "$O/nccl.json" | tr '\n' ' ' || echo FAILED)"
  printf "%-52s %s\n" "loss curve, 1 vs $N GPUs, global batch 8" "$(grep loss_curve_max_rel_diff "$O/curves.txt")"
  printf "%-52s %s\n" "train im/s, 1 GPU batch 8" "$one"
  printf "%-52s %s\n" "train im/s, $N GPUs batch 8 (4 per GPU)" "$many (efficiency $eff_strong, same global batch)"
  printf "%-52s %s\n" "train im/s, $N GPUs batch $((8 * N)) (8 per GPU)" "$weak (scaling efficiency $eff_weak, target >= 0.9)"
  printf "%-52s %s\n" "inference mAP, 1 GPU / $N GPUs" "$map1 / $mapn"
  printf "%-52s %s\n" "inference detections, 1 vs $N GPUs" "$(cat "$O/detections.txt")"
  printf "%-52s %s\n" "rank 1 killed: exit code, seconds to end" "$kill_code, $kill_s (processes left: $left)"
  printf "%-52s %s\n" "rank 1 killed: message" "$(grep -m1 -oE "rank 1 failed: .{0,60}" "$O/kill.log")"
} | tee -a "$O/summary.txt"
