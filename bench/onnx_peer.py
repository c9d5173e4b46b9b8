#!/usr/bin/env python3
"""Runs an exported detector with Python's onnxruntime (another build than ours): it must load, take a uint8 batch with
per-image sizes, and return boxes [B, D, 4], scores [B, D], classes [B, D]. Prints one JSON line per model with the
output shapes, detections kept per image and milliseconds per batch (CPU).

Usage: python3 bench/onnx_peer.py MODEL.onnx [MODEL.onnx ...] [--batch 2] [--runs 5]
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for path in args.models:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        inputs = {i.name: i for i in session.get_inputs()}
        if "images" not in inputs:
            print(json.dumps({"model": path, "skipped": "no 'images' input (raw heads)"}))
            continue
        _, _, height, width = inputs["images"].shape
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(args.batch, 3, height, width), dtype=np.uint8)
        sizes = np.array([[height, width]] * args.batch, dtype=np.int64)
        feed = {"images": images, "image_sizes": sizes}
        outputs = session.run(None, feed)
        start = time.perf_counter()
        for _ in range(args.runs):
            session.run(None, feed)
        ms = (time.perf_counter() - start) * 1000 / args.runs
        names = [o.name for o in session.get_outputs()]
        result = dict(zip(names, outputs))
        print(json.dumps({
            "model": path, "onnxruntime": ort.__version__, "batch": args.batch,
            "shapes": {n: list(v.shape) for n, v in result.items()},
            "kept_per_image": [int((s > 0).sum()) for s in result["scores"]],
            "ms_per_batch": round(ms, 1),
        }))


if __name__ == "__main__":
    main()
