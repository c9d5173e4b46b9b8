#!/usr/bin/env bash
# `retinanet serve` on the GPU machine: requests/s and p50/p99 at concurrency 1, 8, 32 (bench/serve_load.py, 640x480
# JPEGs, a ResNet50FPN with 3 classes at 800 px trained for 1 iteration from random weights, score threshold 0.05), with
# --max-batch 8 and with
# --max-batch 1 (sequential batch-1 model calls), then `infer` over the same images for its throughput.
# Usage there: bash bench/device/serve.sh   (OUT: results folder)
set -uo pipefail
out=${OUT:-/tmp/serve}; mkdir -p "$out"; work=/tmp/serve_work; mkdir -p "$work/images"
retinanet="bash .device/on-device.sh"
python3 - "$work/images" <<'PY'
import sys, torch, torchvision.io as io
g = torch.Generator().manual_seed(0)
for i in range(64):
    img = (torch.rand(3, 480, 640, generator=g) * 255).to(torch.uint8)
    io.write_jpeg(img, f'{sys.argv[1]}/{i:03d}.jpg', quality=90)
PY
$retinanet demo --iters 1 --images 16 --backbone-weights none --output "$work/demo" > "$out/demo.log" 2>&1 \
  || { tail -3 "$out/demo.log"; exit 1; }
$retinanet train "$work/model.pth" --annotations "$work/demo/data/annotations.json" --images "$work/demo/data/images" \
  --backbone ResNet50FPN --backbone-weights none --iters 1 --batch 2 > "$out/train.log" 2>&1 || { tail -3 "$out/train.log"; exit 1; }
for batch in 8 1; do
  port=$((18000 + batch))
  $retinanet serve "$work/model.pth" --port $port --max-batch $batch --max-delay-ms 5 --queue 256 > "$out/serve$batch.log" 2>&1 &
  pid=$!
  for _ in $(seq 120); do curl -sf localhost:$port/readyz > /dev/null && break; sleep 1; done
  echo "--max-batch $batch"
  python3 bench/serve_load.py http://127.0.0.1:$port "$work/images" --concurrency 1 8 32 --seconds ${SECONDS_EACH:-15}
  curl -s localhost:$port/metrics | grep -E '^retinanet_batch_size_(sum|count)'
  # SIGTERM, not SIGINT: a background job of a script starts with SIGINT ignored, so the server would never stop
  pkill -TERM -f -- "serve .*--port $port"; wait $pid
done
python3 bench/device/serve_stop.py "$work/model.pth" 18100
start=$(date +%s%N)
$retinanet infer "$work/model.pth" --images "$work/images" --output "$work/d.json" --batch 8 > "$out/infer.log" 2>&1
echo "infer, 64 images, batch 8: $(( ($(date +%s%N) - start) / 1000000 )) ms (whole command)"; grep -iE "im/s|images/s" "$out/infer.log" | tail -2
