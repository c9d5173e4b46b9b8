#!/bin/bash
# e2e.sh's shortest form, for a call with little device time left: the detector's call per padded shape at batch 8
# (is a new shape's first batch what costs?), then batch 1 with CUDA graphs (GraphSlots). Same data and app as e2e.sh.
set -uo pipefail
export RETINANET_EXE=RetinaNet.Bench
R="bash .device/on-device.sh"; D=.devdata/coco128; O=${OUT:-/tmp/out}; mkdir -p "$O"
{ nvidia-smi --query-gpu=name --format=csv,noheader; date -u; } | tee "$O/machine.txt"
F=/tmp/coco1024; mkdir -p $F
for k in 0 1 2 3 4 5 6 7; do for f in $D/train2017/*.jpg; do cp "$f" "$F/${k}_$(basename "$f")"; done; done
$R train /tmp/r50.pth --override --backbone ResNet50FPN --classes 80 --backbone-weights none --batch 2 --iters 1 \
  --warmup 0 --jitter 320 320 --annotations $D/annotations/instances_train2017_first128.json --images $D/train2017 \
  > "$O/train.log" 2>&1 || { tail -5 "$O/train.log"; exit 1; }
$R e2e --model /tmp/r50.pth --images $F --batch 8 2>>"$O/e2e.err" | tee -a "$O/e2e.jsonl"
$R e2e --model /tmp/r50.pth --images $F --batch 8 --mode preloaded 2>>"$O/e2e.err" | tee -a "$O/e2e.jsonl"
$R e2e --model /tmp/r50.pth --images $F --batch 1 --graphs true 2>>"$O/e2e.err" | grep '"e2e"' | tee -a "$O/e2e.jsonl"
