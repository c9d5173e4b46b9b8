#!/bin/bash
# [w2 6/7] item 1: end-to-end folder inference, ours against the torchvision folder peer (bench/peer_folder.py) in one
# call. 1,024 real JPEGs: COCO128's train2017 images copied 8 times (.devdata/coco128, git-excluded, carried).
# ResNet50FPN, 80 classes, weights after one training step from random ones (both sides untrained), default score
# threshold. Needs .device/ from `NO_ORT=1 bash bench/device/pack_cli_lean.sh bench/RetinaNet.Bench`.
# Usage on the device: bash bench/device/e2e.sh   (WORKERS overrides the batch-8 worker counts; SHORT=1 runs only the
# per-shape timing at batch 8 and batch 1 with CUDA graphs, for a call with little device time left; AB=1 the levers
# of 2026-12-03 against their absence, the whole command and the peer; FINAL=1 the warm-up A/B, whole commands, peers
# and training's step with and without expandable segments; GRAPHS=1 --cuda-graphs against eager; NEXT=1 the fused
# convolutions and two batches in flight, each against its absence, and PyTorch's own fused calls; LEVERS=1 the
# sixth session's levers, none against all)
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; D=.devdata/coco128; O=${OUT:-/tmp/out}; mkdir -p "$O"
{ nvidia-smi --query-gpu=name --format=csv,noheader; echo "cores $(nproc)"; date -u; } | tee "$O/machine.txt"
F=/tmp/coco1024; mkdir -p $F
for k in 0 1 2 3 4 5 6 7; do for f in $D/train2017/*.jpg; do cp "$f" "$F/${k}_$(basename "$f")"; done; done
echo "images $(ls $F | wc -l)"
$R train /tmp/r50.pth --override --backbone ResNet50FPN --classes 80 --backbone-weights none --batch 8 --iters 1 \
  --warmup 0 --annotations $D/annotations/instances_train2017_first128.json --images $D/train2017 \
  > "$O/train.log" 2>&1 || { tail -5 "$O/train.log"; exit 1; }
e2e() { timeout 300 $R e2e --model /tmp/r50.pth --images $F "$@" 2>>"$O/e2e.err" | tee -a "$O/e2e.jsonl"; }
# peak GPU memory in use while a command runs (nvidia-smi every 50 ms), as perf.sh measures it
peak() {
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > "$O/mem.txt" & local poll=$!
  "$@"
  kill $poll; wait $poll 2>/dev/null; echo "peak_mib $(sort -n "$O/mem.txt" | tail -1): $*" | cut -c1-120
}
if [[ -n "${SHORT:-}" ]]; then
  # is a new padded shape's first batch what costs? ours per shape, then PyTorch's own first call per shape
  peak e2e --batch 8; e2e --batch 8 --mode preloaded
  PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True peak e2e --batch 8
  e2e --batch 1 --graphs true | grep '"e2e"'
  python3 bench/shape_cost_peer.py; python3 bench/shape_cost_peer.py --channels-last
  exit
fi
if [[ -n "${FINAL:-}" ]]; then
  # the warm-up while the checkpoint loads against none (the kernel cache filled by a first run), in turn
  e2e --batch 8 > /dev/null
  for i in 1 2; do e2e --batch 8 --warmup false; e2e --batch 8; done
fi
if [[ -n "${AB:-}" ]]; then
  # the levers of 2026-12-03 one at a time, each against its absence in the same call: the kernel cache (first batch,
  # empty then filled), expandable segments (peak memory), the shape plan (shapes, im/s); then the whole command and
  # the peer, and training's step with and without expandable segments
  export RETINANET_KERNEL_CACHE=/tmp/kernels; rm -rf /tmp/kernels
  e2e --batch 8; e2e --batch 8; RETINANET_KERNEL_CACHE=off e2e --batch 8
  for i in 1 2; do
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:False peak e2e --batch 8 --new-shape-pixels 0
    peak e2e --batch 8 --new-shape-pixels 0
    e2e --batch 8
  done
  e2e --batch 8 --mode preloaded; e2e --batch 8 --mode preloaded --new-shape-pixels 0
  for i in 1 2; do e2e --batch 1 --new-shape-pixels 0; e2e --batch 1; done
  e2e --batch 1 --graphs true --new-shape-pixels 0; e2e --batch 1 --graphs true; e2e --batch 8 --graphs true
fi
peer() { timeout 300 python3 bench/peer_folder.py --images $F --amp "$@" 2>>"$O/peer.err" | tee -a "$O/peer.jsonl"; }
if [[ -n "${LEVERS:-}" ]]; then
  # the sixth session's levers in infer's folder loop (bench/device/levers.sh has the model alone): none against all,
  # in turn with the peer, at batch 8 and at batch 1 with CUDA graphs (the kernel cache filled by a first run)
  NONE="--folded-downsamples false --maxpool-kernel false --nhwc-decode false"
  ALL="--folded-downsamples true --maxpool-kernel true --nhwc-decode true"
  e2e --batch 8 > /dev/null
  for i in 1 2; do
    e2e --batch 8 $NONE; e2e --batch 8 $ALL
    peer --batch 8 --workers 8
  done
  for i in 1 2; do e2e --batch 1 --graphs true $NONE; e2e --batch 1 --graphs true $ALL; done
  peer --batch 1 --workers 8
  exit
fi
# the command a user runs, timed from outside; the app called directly (on-device.sh spends seconds importing torch
# to find its libraries)
torch_lib=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')
export LD_LIBRARY_PATH="$torch_lib:${LD_LIBRARY_PATH:-}"
whole() {
  local start=$(date +%s%N)
  /tmp/retinanet-app/RetinaNet.Bench infer /tmp/r50.pth --images $F --output /tmp/dets.json "$@" > "$O/infer.log" 2>&1
  echo "infer $* whole_ms $(( ($(date +%s%N) - start) / 1000000 )): $(grep 'im/s' "$O/infer.log")" \
    | tee -a "$O/whole.txt"
}
if [[ -n "${NEXT:-}" ]]; then
  # the fourth session's levers (measured in the fifth: bench/RESULTS.md), each against its absence in turn:
  # item 2: BN folded into cuDNN's fused conv + bias (+ residual) + ReLU (--fused-conv true) against our conv + affine
  # kernel, the model alone at batch 8 and batch 1 (graphs); the peer at batch 8 AMP
  b="$R infer --precision bf16 --convert true --nhwc true --height 800 --width 1216"
  for i in 1 2; do
    for f in false true; do
      $b --batch 8 --parts false --fused-conv $f 2>/dev/null | tail -1 | tee -a "$O/next.jsonl"
      $b --batch 1 --graphs true --parts false --fused-conv $f 2>/dev/null | tail -1 | tee -a "$O/next.jsonl"
    done
    python3 .device/peer_torchvision.py --mode infer --batch 8 --amp --score-thresh 0 | tee -a "$O/next.jsonl"
  done
  $b --batch 8 --fused-conv true 2>/dev/null | tail -1 | tee -a "$O/next.jsonl" # the parts, with the fused body
  # item 1: infer's loop with 2 batches in flight against 1 (the kernel cache filled by a first run), and the peer
  e2e --batch 8 --mode job > /dev/null
  for i in 1 2; do for n in 1 2; do e2e --batch 8 --mode job --in-flight $n; done; done
  # where the first batch's ≈ 1 s goes: cuDNN's first convolution, the first small call, the first real batch
  for i in 1 2; do e2e --batch 8 --mode first; done
  # item 2 in the loop: the fused convolutions against none; item 5: --cuda-graphs' peak memory with one capture
  # stream for all shapes against a pooled stream each (eager's peak beside them)
  for f in false true; do e2e --batch 8 --fused-conv $f; done
  for b in 1 8; do
    peak e2e --batch $b --graphs true --shared-capture-stream false; peak e2e --batch $b --graphs true
    peak e2e --batch $b
  done
  peer --batch 8 --workers 8
  # PyTorch's own fused calls and packed heads, so item 2's predictions have a reference
  for bs in 8 1; do python3 bench/fused_conv_peer.py --batch $bs --shape 800x1216 | tee -a "$O/next.jsonl"; done
  exit
fi
if [[ -n "${GRAPHS:-}" ]]; then
  # --cuda-graphs (graphs sharing one pool and one capture stream) against eager: peak memory, and the detections
  # of all 1,024 images at score threshold 0 compared
  for b in 1 8; do
    peak whole --batch $b --cuda-graphs --score-threshold 0; mv /tmp/dets.json /tmp/graphs.json
    peak whole --batch $b --score-threshold 0
    python3 bench/compare_detections.py /tmp/dets.json /tmp/graphs.json
  done
  for alloc in ${TRAIN:+expandable_segments:False expandable_segments:True}; do
    PYTORCH_CUDA_ALLOC_CONF=$alloc timeout 300 $R train --batch 8 --precision bf16 --nhwc true --iters 30 \
      2>/dev/null | grep -o '"images_per_s": [0-9.]*' | sed "s/^/training, $alloc: /"
  done
  exit
fi
if [[ -n "${FINAL:-}" ]]; then
  peak peer --batch 8 --workers 8; peak whole --batch 8; peak whole --batch 8 --cuda-graphs
  peak peer --batch 8 --workers 8; peak whole --batch 8
  peak whole --batch 1 --cuda-graphs; peak whole --batch 1; peak peer --batch 1 --workers 8
  for alloc in expandable_segments:False expandable_segments:True; do
    PYTORCH_CUDA_ALLOC_CONF=$alloc peak timeout 300 $R train --batch 8 --precision bf16 --nhwc true --iters 30 \
      > "$O/train_bench.log" 2>/dev/null; echo "training, $alloc:"; grep -o '"images_per_s": [0-9.]*' "$O/train_bench.log"
  done
  exit
fi
if [[ -n "${AB:-}" ]]; then
  peak peer --batch 8 --workers 8; peak whole --batch 8; peak whole --batch 8 --cuda-graphs
  peak peer --batch 8 --workers 8; peak whole --batch 1 --cuda-graphs; peak whole --batch 1
  peak peer --batch 1 --workers 8
  for alloc in expandable_segments:False expandable_segments:True; do
    PYTORCH_CUDA_ALLOC_CONF=$alloc peak timeout 300 $R train --batch 8 --precision bf16 --nhwc true --iters 30 \
      2>/dev/null | tail -1 | cut -c1-300; echo "(training, $alloc)"
  done
  tail -n 3 "$O/e2e.err" "$O/peer.err"
  exit
fi
peak peer --batch 8 --workers 8
e2e --batch 8 --mode preloaded
for w in ${WORKERS:-4 6 8 12}; do e2e --batch 8 --workers $w; done
for w in 4 8; do e2e --batch 8 --workers $w --mode loader; done
e2e --batch 8 --workers 12 --graphs true
e2e --batch 8 --workers 6 --graphs true
e2e --batch 8 --mode preloaded --graphs true
DOTNET_gcServer=1 e2e --batch 8 --workers 12
peak whole --batch 8
peak whole --batch 8 --cuda-graphs
peak peer --batch 8 --workers 8
e2e --batch 1 --mode preloaded --graphs true
e2e --batch 1
e2e --batch 1 --graphs true
peak whole --batch 1 --cuda-graphs
peak peer --batch 1 --workers 8
tail -n 3 "$O/e2e.err" "$O/peer.err"
