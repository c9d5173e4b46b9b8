#!/bin/bash
# Issue [7/7] (and [4/7]'s speed targets): ours vs torchvision's RetinaNet-ResNet50-FPN at 800x1216 in one run, one card.
# Needs .device/ (bash ../shared/device/pack.sh bench/RetinaNet.Bench). Usage on the device: bash bench/device/perf.sh
# OURS / PEER override the lists of configurations; SYMBOLS=1 also lists libtorch's CUDA-graph/stream exports.
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"
O=${OUT:-/tmp/out}; mkdir -p "$O"
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; echo "cores $(nproc)"; date -u; git log -1 --format=%h 2>/dev/null; } | tee "$O/machine.txt"
if [[ -n "${SYMBOLS:-}" ]]; then
  lib=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')
  for f in libtorch_cuda.so libc10_cuda.so; do nm -D --defined-only "$lib/$f" | grep -E "CUDAGraph|StreamFromPool|CurrentCUDAStream" | awk '{print $3}'; done > "$O/symbols.txt"
  wc -l "$O/symbols.txt"
fi
# Default: every figure of [4/7] and [7/7] (batch-1 latency, batch-8 inference, training); the peer twice where it
# varies most. Add REAL=1 for training on real JPEGs (the [7/7] training target) and MEM=1 for peak memory.
# --kernels false anywhere gives the same configuration without our CUDA kernels (libtorch's ops instead).
IFS=';' read -ra ours <<< "${OURS:-infer --batch 1 --precision bf16 --convert true --nhwc true --graphs true;infer --batch 8 --precision bf16 --convert true --nhwc true --graphs true;infer --batch 8 --precision bf16 --convert true --nhwc true --parts false;train --batch 8 --precision bf16 --nhwc true}"
IFS=';' read -ra peer <<< "${PEER:---mode infer --batch 1;--mode infer --batch 1;--mode infer --batch 8 --amp;--mode train --batch 8 --amp --channels-last;--mode train --batch 8 --amp --channels-last}"
# MEM=1: peak GPU memory in use (nvidia-smi, every 50 ms) while each command runs: the caching allocator's reserved
# memory plus the CUDA context, the same measure for both sides (TorchSharp exposes no allocator statistics).
peak() {
  if [[ -z "${MEM:-}" ]]; then "$@"; return; fi
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > "$O/mem.txt" & local poll=$!
  "$@"; local code=$?
  kill $poll; wait $poll 2>/dev/null
  echo "peak_gpu_memory_mib $(sort -n "$O/mem.txt" | tail -1)" >&2
  return $code
}
rm -rf /tmp/retinanet-app
for args in "${ours[@]}"; do
  peak timeout 300 $R $args --iters ${ITERS:-20} > "$O/last.log" 2>"$O/last.err"; tail -1 "$O/last.log" | tee -a "$O/ours.jsonl"; grep peak_gpu "$O/last.err" | tee -a "$O/ours.jsonl"
  grep -q '"bench"' <(tail -1 "$O/last.log") || { echo "FAILED: $args"; tail -20 "$O/last.log" "$O/last.err"; }
done
for args in "${peer[@]}"; do
  peak python3 .device/peer_torchvision.py $args --score-thresh 0 > "$O/last.log" 2>"$O/last.err"; tail -1 "$O/last.log" | tee -a "$O/peer.jsonl"; grep peak_gpu "$O/last.err" | tee -a "$O/peer.jsonl"
done
if [[ -n "${REAL:-}" ]]; then
  # Training throughput with real JPEGs through our data pipeline (BCCD 640x480 -> 1066x800), ResNet50FPN, batch 8.
  # REAL_DATA holds annotations/train.json, images/ and optionally annotations/val.json; REAL_CLASSES its class count.
  # Default: COCO's 640x480 images, 80 classes, the peer's head size (python3 bench/device/make_coco480.py makes it);
  # REAL_DATA=.devdata/bccd REAL_CLASSES=3 is BCCD (3 classes: a smaller head than the peer's, not like for like).
  D=${REAL_DATA:-.devdata/coco480}
  for dali in "--with-dali" ""; do
    $R train /tmp/r50.pth --override --backbone ResNet50FPN --classes ${REAL_CLASSES:-80} --annotations $D/annotations/train.json --images $D/images \
      --backbone-weights none --batch 8 --iters ${REAL_ITERS:-300} --jitter 800 800 --resize 800 --max-size 1333 --warmup 20 --lr 0.005 \
      --log-interval ${REAL_LOG:-1} $dali > "$O/real_train${dali:+_dali}.log" 2>&1
    echo "real JPEG training ${dali:-cpu-decode}: $(grep -E '^\[' "$O/real_train${dali:+_dali}.log" | tail -3 | tr '\n' ' ')"
  done
  # the peer at our real batches' exact shape (COCO 640x480 -> 1066x800, padded to 1152x896 by ODTK's stride 128), twice
  for i in 1 2; do
    python3 .device/peer_torchvision.py --mode train --batch 8 --amp --channels-last --height ${REAL_H:-896} --width ${REAL_W:-1152} --score-thresh 0 2>/dev/null | tail -1 | tee -a "$O/peer_real.jsonl"
  done
  if [[ -f $D/annotations/val.json ]]; then
  $R infer /tmp/r50.pth --images $D/images --annotations $D/annotations/val.json --output /tmp/r50_dets.json --batch 1 --cuda-graphs > "$O/real_infer_graphs.log" 2>&1
  $R infer /tmp/r50.pth --images $D/images --annotations $D/annotations/val.json --output /tmp/r50_dets_eager.json --batch 1 > "$O/real_infer_eager.log" 2>&1
  grep -E "im/s|Average Precision  \(AP\) @\[ IoU=0.50:0.95 \| area=   all" "$O"/real_infer_*.log
  python3 - <<'PY'
import json
a = json.load(open('/tmp/r50_dets.json'))['annotations']; b = json.load(open('/tmp/r50_dets_eager.json'))['annotations']
print('cli infer --cuda-graphs vs eager: detections', len(a), len(b), 'max score diff', max([abs(x['score'] - y['score']) for x, y in zip(a, b)] or [0]))
PY
  fi
fi
# the table: ours, peer, ratio, target, per figure
python3 "$(dirname "$0")/table.py" "$O" | tee "$O/table.txt"
