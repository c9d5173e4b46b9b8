#!/usr/bin/env bash
# Rotated boxes on the GPU ([w2 5/7]): the GPU tests of rotated IoU/NMS (and every other [GpuFact] matching FILTER),
# then RetinaNet.Bench rotated (100,000 anchor x box IoU pairs, exact NMS of 20,000 boxes; each checked against the
# CPU form). Needs .device/ holding both the test assembly and the bench app, published into one folder:
#   bash bench/device/pack_tests_and_bench.sh
# Usage there: bash bench/device/rotated.sh [FILTER...]
set -uo pipefail
RETINANET_EXE=RetinaNet.Tests bash .device/on-device.sh gpu-facts "${@:-Rotated}"
RETINANET_EXE=RetinaNet.Bench bash .device/on-device.sh rotated --anchors 2000 --boxes 50 --nms-boxes 20000 --detections 100
RETINANET_EXE=RetinaNet.Bench bash .device/on-device.sh rotated --anchors 2000 --boxes 50 --nms-boxes 20000 --detections 1000 --iters 20
# what the GPU machine offers, as `retinanet doctor` sees it
RETINANET_EXE=RetinaNet.Bench bash .device/on-device.sh doctor
