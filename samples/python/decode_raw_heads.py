#!/usr/bin/env python3
"""Detections from a `retinanet export --raw-heads` model, for a Python ONNX Runtime client: ODTK's decode (top-n per
level, box deltas on the level's anchors) and class-aware greedy NMS, axis-aligned or rotated (`--rotated-bbox`:
exact polygon IoU), with numpy alone.

The file's metadata says everything needed: `retinanet.anchors` (ratios, scales, angles, strides), and the settings
of `retinanet.inference` can be passed here. Its outputs: `score_1..score_5` [batch, A*C, H/s, W/s] sigmoid scores,
channel a*C + c; `box_1..box_5` [batch, A*K, H/s, W/s], channel a*K + k, K = 4 (dx, dy, log dw, log dh) or 6 for
rotated boxes (then also sin, cos of the absolute angle). Anchors are ordered (a, y, x).

A box comes back as (x1, y1, x2, y2) inclusive pixel corners of the input, or for rotated models
(x1, y1, x2, y2, theta): the box before turning and its angle, turned anticlockwise on screen about its centre.

Use with ONNX Runtime (images normalised as the file's `retinanet.input` says):
    session = onnxruntime.InferenceSession("model.onnx")
    meta = session.get_modelmeta().custom_metadata_map
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"images": images})))
    detections = detect(outputs, json.loads(meta["retinanet.anchors"]), image=0)

`python3 decode_raw_heads.py DIR` reads DIR/meta.json and DIR/NAME.f32 (raw float32 arrays, shapes in meta.json),
prints the detections of image 0 as JSON: how this script is tested against the library's own decode and NMS.
"""
import json
import math
import sys

import numpy as np

MAX_LOG_SCALE = math.log(1000.0 / 16)


def cell_anchors(stride, ratios, scales, angles):
    """ODTK's generate_anchors / generate_anchors_rotated for one cell: [A, 4] (x1, y1, x2, y2), and for rotated
    anchors their angles [A]; index a = (angle * scales + scale) * ratios + ratio."""
    s = np.float32(stride)
    rows, thetas = [], []
    for angle in (angles or [None]):
        for scale in scales:
            for ratio in ratios:
                r, sc = np.float32(ratio), np.float32(scale)
                if angle is None:
                    ws = np.sqrt(s * s / r)
                    hs = ws * r
                    rows.append([0.5 * (s - ws * sc), 0.5 * (s - hs * sc), 0.5 * (s + ws * sc), 0.5 * (s + hs * sc)])
                else:
                    ws = np.round(np.sqrt(s * s / r))
                    hs = np.round(ws * r)
                    rows.append([0.5 * (s - ws * sc), 0.5 * (s - hs * sc), 0.5 * (s + ws * sc) - 1, 0.5 * (s + hs * sc) - 1])
                    thetas.append(angle)
    return np.array(rows, dtype=np.float32), np.array(thetas, dtype=np.float32)


def level_anchors(stride, height, width, anchors):
    """A level's anchors [A*H*W, 4], ordered (a, y, x) like the heads' channels."""
    cell, _ = cell_anchors(stride, anchors["ratios"], anchors["scales"], anchors.get("angles") or [])
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float32) * stride, np.arange(width, dtype=np.float32) * stride, indexing="ij")
    shift = np.stack([xs, ys, xs, ys], -1)  # [H, W, 4]
    return (cell[:, None, None, :] + shift[None]).reshape(-1, 4)


def decode_boxes(deltas, anchors, size):
    """ODTK's delta2box (and delta2box_rotated): inclusive widths, clamped to the input (width, height)."""
    wh = anchors[:, 2:4] - anchors[:, :2] + 1
    ctr = anchors[:, :2] + 0.5 * wh
    pred_ctr = deltas[:, :2] * wh + ctr
    pred_wh = np.exp(np.minimum(deltas[:, 2:4], MAX_LOG_SCALE)) * wh
    limit = np.array([size[0] - 1, size[1] - 1], dtype=np.float32)
    xy1 = np.clip(pred_ctr - 0.5 * pred_wh, 0, limit)
    xy2 = np.clip(pred_ctr + 0.5 * pred_wh - 1, 0, limit)
    boxes = np.concatenate([xy1, xy2], 1)
    if deltas.shape[1] == 6:
        boxes = np.concatenate([boxes, np.arctan2(deltas[:, 4], deltas[:, 5])[:, None]], 1)
    return boxes


def corners(box):
    """A rotated box (x1, y1, x2, y2, theta) as its 4 corners [4, 2], turned anticlockwise on screen."""
    x1, y1, x2, y2, theta = (float(v) for v in box)
    w, h = x2 - x1 + 1, y2 - y1 + 1
    cx, cy, c, s = x1 + w / 2, y1 + h / 2, math.cos(theta), math.sin(theta)
    return np.array([[cx + c * dx + s * dy, cy - s * dx + c * dy] for dx, dy in
                     [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]])


def polygon_area(p):
    x, y = p[:, 0], p[:, 1]
    return 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def rotated_iou(p, q):
    """Exact IoU of two convex quadrilaterals: p clipped by each edge of q (Sutherland-Hodgman), in float64."""
    area_p, area_q = abs(polygon_area(p)), polygon_area(q)
    if area_p <= 0 or area_q == 0:
        return 0.0
    if area_q < 0:
        q = q[::-1]
    poly = list(map(tuple, p))
    for i in range(4):
        (ex, ey), (fx, fy) = q[i], q[(i + 1) % 4]
        side = lambda pt: (fx - ex) * (pt[1] - ey) - (fy - ey) * (pt[0] - ex)
        out = []
        for j in range(len(poly)):
            a, b = poly[j - 1], poly[j]
            sa, sb = side(a), side(b)
            if (sb >= 0) != (sa >= 0):
                t = sa / (sa - sb)
                out.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
            if sb >= 0:
                out.append(b)
        poly = out
        if not poly:
            return 0.0
    if len(poly) < 3:
        return 0.0
    inter = abs(polygon_area(np.array(poly)))
    return inter / (area_p + abs(area_q) - inter)


def axis_iou(a, b):
    """IoU of inclusive-pixel boxes in float32, as the library computes it."""
    f = np.float32
    iw = max(min(a[2], b[2]) - max(a[0], b[0]) + f(1), f(0))
    ih = max(min(a[3], b[3]) - max(a[1], b[1]) + f(1), f(0))
    inter = f(iw * ih)
    area = lambda r: f((r[2] - r[0] + f(1)) * (r[3] - r[1] + f(1)))
    return inter / (area(a) + area(b) - inter)


def detect(outputs, anchors, image=0, threshold=0.05, top_n=1000, nms=0.5, detections=100):
    """Decode and NMS for one image of the outputs (name -> array); (scores, boxes, classes), best first."""
    levels = sorted({int(n.split("_")[1]) for n in outputs if n.startswith("score_")})
    size = None
    scores, boxes, classes = [], [], []
    for level in levels:
        cls, box = outputs[f"score_{level}"][image], outputs[f"box_{level}"][image]
        stride = anchors["strides"][level - 1]
        a = len(anchors["ratios"]) * len(anchors["scales"]) * max(1, len(anchors.get("angles") or []))
        c, h, w = cls.shape[0] // a, cls.shape[1], cls.shape[2]
        k = box.shape[0] // a
        size = size or (w * stride, h * stride)
        flat = cls.reshape(-1)  # index ((a*C + c)*H + y)*W + x
        keep = np.nonzero(flat >= threshold)[0]
        keep = keep[np.argsort(-flat[keep], kind="stable")][:top_n]
        anchor, cls_index, pixel = keep // (c * h * w), keep // (h * w) % c, keep % (h * w)
        deltas = box.reshape(a, k, h * w)[anchor, :, pixel]  # [n, k]
        level_boxes = level_anchors(stride, h, w, anchors)[anchor * h * w + pixel]
        scores.append(flat[keep])
        boxes.append(decode_boxes(deltas.astype(np.float32), level_boxes, size))
        classes.append(cls_index)
    scores, boxes, classes = np.concatenate(scores), np.concatenate(boxes), np.concatenate(classes)
    order = np.argsort(-scores, kind="stable")  # ties in level order, as the library
    rotated = boxes.shape[1] == 5
    polygons = [corners(b) for b in boxes] if rotated else None
    kept = []
    for i in order:
        if len(kept) == detections:
            break
        if any(classes[j] == classes[i] and (rotated_iou(polygons[j], polygons[i]) if rotated else axis_iou(boxes[j], boxes[i])) > nms
               for j in kept):
            continue
        kept.append(i)
    return scores[kept], boxes[kept], classes[kept]


def main(directory):
    with open(f"{directory}/meta.json") as f:
        meta = json.load(f)
    outputs = {name: np.fromfile(f"{directory}/{name}.f32", dtype=np.float32).reshape(shape)
               for name, shape in meta["shapes"].items()}
    settings = meta.get("settings", {})
    scores, boxes, classes = detect(outputs, meta["anchors"], **settings)
    print(json.dumps([{"score": float(s), "box": [float(v) for v in b], "class": int(c)}
                      for s, b, c in zip(scores, boxes, classes)]))


if __name__ == "__main__":
    main(sys.argv[1])
