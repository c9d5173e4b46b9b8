"""Synthetic detection data for GPU-machine runs that need full-size images but should carry no data there:
rectangles, ellipses and triangles (3 classes) on noisy backgrounds, JPEG, COCO JSON. Deterministic under --seed.
Usage: python3 make_shapes.py OUT_DIR [--train 256] [--val 64] [--width 1216] [--height 800] [--seed 0]
Writes OUT_DIR/images/*.jpg, OUT_DIR/train.json, OUT_DIR/val.json."""
import argparse
import json
import os

import numpy as np
from PIL import Image, ImageDraw

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--train", type=int, default=256)
parser.add_argument("--val", type=int, default=64)
parser.add_argument("--width", type=int, default=1216)
parser.add_argument("--height", type=int, default=800)
parser.add_argument("--seed", type=int, default=0)
a = parser.parse_args()
rng = np.random.default_rng(a.seed)
os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
categories = [{"id": 1, "name": "box", "supercategory": "shape"}, {"id": 2, "name": "disc", "supercategory": "shape"},
              {"id": 3, "name": "triangle", "supercategory": "shape"}]


def image(index):
    base = rng.integers(60, 190)
    pixels = np.clip(base + rng.normal(0, 18, (a.height, a.width, 3)), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels)
    draw = ImageDraw.Draw(picture)
    placed, boxes = [], []
    for _ in range(rng.integers(2, 7)):
        s = int(rng.integers(48, 320))
        x, y = int(rng.integers(0, a.width - s)), int(rng.integers(0, a.height - s))
        if any(x < px + ps and px < x + s and y < py + ps and py < y + s for px, py, ps in placed):
            continue
        placed.append((x, y, s))
        c = int(rng.integers(0, 3))
        colour = tuple(int(v) for v in np.clip(np.array([[220, 60, 60], [60, 200, 60], [70, 90, 230]][c]) + rng.integers(-30, 31, 3), 0, 255))
        if c == 0:
            draw.rectangle([x, y, x + s - 1, y + s - 1], fill=colour)
        elif c == 1:
            draw.ellipse([x, y, x + s - 1, y + s - 1], fill=colour)
        else:
            draw.polygon([(x, y + s - 1), (x + s - 1, y + s - 1), (x + s // 2, y)], fill=colour)
        boxes.append((c + 1, [x, y, s, s]))
    name = f"{index:05d}.jpg"
    picture.save(os.path.join(a.out, "images", name), quality=90)
    return name, boxes


def write(path, first, count):
    images, annotations = [], []
    for i in range(first, first + count):
        name, boxes = image(i)
        images.append({"id": i + 1, "file_name": name, "width": a.width, "height": a.height})
        for c, b in boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0})
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


write(os.path.join(a.out, "train.json"), 0, a.train)
write(os.path.join(a.out, "val.json"), a.train, a.val)
print(f"wrote {a.train} + {a.val} images of {a.width}x{a.height} to {a.out}")
