#!/usr/bin/env bash
# Rotated training on the GPU ([w2 5/7]): the GPU tests named Rotated (matching and NMS against the CPU, a rotated
# train + infer through the CLI, IoU/NMS kernels), the training step with rotated heads against the axis-aligned one
# in the same call (the issue asks for at most 1.3x), then the rotated and axis-aligned models trained on the same
# rotated shapes and scored as polygons (RetinaNet.Bench rotated-vs-axis). Needs .device/ from
#   bash bench/device/pack_tests_and_bench.sh
# Usage there: bash bench/device/rotated_training.sh
set -uo pipefail
RETINANET_EXE=RetinaNet.Tests bash .device/on-device.sh gpu-facts Rotated 2>&1 | tail -25
for rotated in false true; do
  RETINANET_EXE=RetinaNet.Bench bash .device/on-device.sh train --backbone ResNet50FPN --batch 8 --height 800 --width 1216 \
    --iters 10 --rotated $rotated 2>&1 | tail -1
done
RETINANET_EXE=RetinaNet.Bench bash .device/on-device.sh rotated-vs-axis --images 96 --size 128 --iters 1000 --batch 8 \
  --lr 0.005 --dir /tmp/rva 2>&1 | grep '^{'
