#!/usr/bin/env python3
"""Two COCO results files of the same images, compared image by image: the same number of detections, and the largest
score and box differences between the detections of equal rank (both sorted by score).

  python3 bench/compare_detections.py A.json B.json
"""
import json, sys
from collections import defaultdict


def by_image(path):
    out = defaultdict(list)
    for d in json.load(open(path)):
        out[d['image_id']].append((d['score'], d['bbox'], d['category_id']))
    for v in out.values():
        v.sort(key=lambda t: -t[0])
    return out


a, b = by_image(sys.argv[1]), by_image(sys.argv[2])
counts = sum(len(v) for v in a.values()), sum(len(v) for v in b.values())
score = box = 0.0
differing = 0
for image in set(a) | set(b):
    x, y = a.get(image, []), b.get(image, [])
    if len(x) != len(y):
        differing += 1
    for (s1, b1, _), (s2, b2, _) in zip(x, y):
        score = max(score, abs(s1 - s2))
        box = max(box, max(abs(p - q) for p, q in zip(b1, b2)))
print(json.dumps({'compare': sys.argv[1:], 'images': len(set(a) | set(b)), 'detections': counts,
                  'images_with_other_counts': differing, 'max_score_diff': score, 'max_box_diff': box}))
