"""Reference cases for rotated-box IoU and NMS (tests/RetinaNet.Tests/Fixtures/rotated/iou_nms_cases.json).

Brute force in exact rational arithmetic, by a different method than the library's clipping: the intersection of two
convex quadrilaterals is the convex hull of (a) each one's corners that lie inside or on the other, and (b) every
crossing of an edge of one with an edge of the other; its area is the shoelace formula over the hull. Corners are
float32 values (as the library holds them), read exactly as fractions. NMS is greedy, class-aware, in score order
(ties: lower index first), suppressing a box whose IoU with a kept box of its class exceeds the threshold.

Usage: /usr/bin/python3 bench/tools/rotated_reference.py [OUT.json]     (needs numpy; seed fixed, output deterministic)
"""
import json, sys
from fractions import Fraction as F
import numpy as np

rng = np.random.default_rng(20261202)


def corners(cx, cy, w, h, theta):
    """tl, tr, br, bl of a w x h box centred at (cx, cy), turned anticlockwise on screen (y down) by theta."""
    c, s = np.cos(theta), np.sin(theta)
    pts = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        pts += [cx + c * dx + s * dy, cy - s * dx + c * dy]
    return [float(np.float32(v)) for v in pts]


def cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def area(poly):
    return abs(sum(poly[i][0] * poly[(i + 1) % len(poly)][1] - poly[(i + 1) % len(poly)][0] * poly[i][1]
                   for i in range(len(poly)))) / 2 if len(poly) >= 3 else F(0)


def inside(p, poly):
    """On or inside a convex polygon of either orientation."""
    signs = [cross(poly[i], poly[(i + 1) % 4], p) for i in range(4)]
    return all(s >= 0 for s in signs) or all(s <= 0 for s in signs)


def crossings(a, b):
    out = []
    for i in range(4):
        p, p2 = a[i], a[(i + 1) % 4]
        for j in range(4):
            q, q2 = b[j], b[(j + 1) % 4]
            r = (p2[0] - p[0], p2[1] - p[1]); s = (q2[0] - q[0], q2[1] - q[1])
            den = r[0] * s[1] - r[1] * s[0]
            if den == 0: continue  # parallel: shared stretches are covered by the corners inside
            t = ((q[0] - p[0]) * s[1] - (q[1] - p[1]) * s[0]) / den
            u = ((q[0] - p[0]) * r[1] - (q[1] - p[1]) * r[0]) / den
            if 0 <= t <= 1 and 0 <= u <= 1: out.append((p[0] + t * r[0], p[1] + t * r[1]))
    return out


def hull(points):
    pts = sorted(set(points))
    if len(pts) < 3: return pts
    def half(seq):
        h = []
        for p in seq:
            while len(h) >= 2 and cross(h[-2], h[-1], p) <= 0: h.pop()
            h.append(p)
        return h
    lower, upper = half(pts), half(reversed(pts))
    return lower[:-1] + upper[:-1]


def quad(c):
    return [(F(c[2 * i]), F(c[2 * i + 1])) for i in range(4)]


def iou(ca, cb):
    a, b = quad(ca), quad(cb)
    inter = area(hull([p for p in a if inside(p, b)] + [p for p in b if inside(p, a)] + crossings(a, b)))
    union = area(a) + area(b) - inter
    return float(inter / union) if union > 0 else 0.0


def random_box(centre_spread=60, size=(4, 120)):
    return corners(rng.uniform(0, centre_spread), rng.uniform(0, centre_spread), rng.uniform(*size), rng.uniform(*size),
                   rng.uniform(-np.pi / 4, np.pi / 4))


pairs = []
def add(kind, a, b): pairs.append({"kind": kind, "a": a, "b": b, "iou": iou(a, b)})

for _ in range(300): add("random", random_box(), random_box())
for _ in range(30):
    a = random_box(); add("identical", a, list(a))
for _ in range(20):
    cx, cy, w, h, t = rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(10, 80), rng.uniform(10, 80), rng.uniform(-0.7, 0.7)
    add("nested", corners(cx, cy, w, h, t), corners(cx + 1, cy - 1, w / 3, h / 4, t + rng.uniform(-0.3, 0.3)))
    add("nearly parallel", corners(cx, cy, w, h, t), corners(cx + 3, cy + 2, w, h, t + 1e-6))
    add("zero area", corners(cx, cy, 0.0, h, t), corners(cx, cy, w, h, t))
    add("far apart", corners(cx, cy, w, h, t), corners(cx + 500, cy, w, h, -t))
    add("large", corners(cx * 100, cy * 100, w * 60, h * 40, t), corners(cx * 100 + 300, cy * 100 - 200, w * 50, h * 45, -t / 2))
# touching: boxes sharing an edge or a corner, built from exact points (whole numbers, then turned by 90 degrees)
for k in range(20):
    x, y, w, h = (float(v) for v in rng.integers(0, 50, 4) + [0, 0, 1, 1])
    a = [x, y, x + w, y, x + w, y + h, x, y + h]
    add("touching edge", a, [x + w, y, x + 2 * w, y, x + 2 * w, y + h, x + w, y + h])
    add("touching corner", a, [x + w, y + h, x + 2 * w, y + h, x + 2 * w, y + 2 * h, x + w, y + 2 * h])
    add("diamond in box", a, [x + w / 2, y, x + w, y + h / 2, x + w / 2, y + h, x, y + h / 2])

nms_cases = []
for case in range(8):
    n = [30, 60, 120, 200, 40, 80, 150, 250][case]
    boxes = [random_box(centre_spread=200, size=(10, 80)) for _ in range(n)]
    scores = [float(np.float32(s)) for s in rng.uniform(0.05, 1, n)]
    classes = [int(c) for c in rng.integers(0, 3 if case % 2 else 1, n)]
    threshold = [0.5, 0.3, 0.5, 0.7, 0.1, 0.5, 0.4, 0.5][case]
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if all(classes[k] != classes[i] or iou(boxes[k], boxes[i]) <= threshold for k in kept): kept.append(i)
    nms_cases.append({"boxes": boxes, "scores": scores, "classes": classes, "threshold": threshold, "kept": kept})

out = sys.argv[1] if len(sys.argv) > 1 else "tests/RetinaNet.Tests/Fixtures/rotated/iou_nms_cases.json"
with open(out, "w") as f:
    json.dump({"made_by": "bench/tools/rotated_reference.py (exact rational arithmetic, convex hull of inner corners "
               "and edge crossings)", "pairs": pairs, "nms": nms_cases}, f)
print(f"{len(pairs)} pairs, {len(nms_cases)} NMS cases -> {out}")
