#!/usr/bin/env python3
"""Real JPEGs for the [7/7] training figure at the peer's head size: COCO128's 640x480 images that carry annotations
(train2017 and val2017 parts, 55 of them, 80 categories), so that every batch is 1066x800 after `--resize 800` (padded to
1152x896, 6% more pixels than the peer's 800x1216) and the heads and focal loss have the peer's size. Writes
.devdata/coco480/{images,annotations/train.json} (git-excluded, ~10 MB: it travels to the GPU machine with .device).
Usage from the project root: python3 bench/device/make_coco480.py [../shared/data/coco128]"""
import json
import os
import shutil
import sys

src = sys.argv[1] if len(sys.argv) > 1 else '../shared/data/coco128'
out = '.devdata/coco480'
os.makedirs(f'{out}/images', exist_ok=True)
os.makedirs(f'{out}/annotations', exist_ok=True)
images, annotations, categories = [], [], None
for part in ['train2017', 'val2017']:
    coco = json.load(open(f'{src}/annotations/instances_{part}_first128.json'))
    categories = coco['categories']
    annotated = {a['image_id'] for a in coco['annotations']}
    chosen = [i for i in coco['images'] if (i['width'], i['height']) == (640, 480) and i['id'] in annotated]
    ids = {i['id'] for i in chosen}
    for i in chosen:
        shutil.copy(f"{src}/{part}/{i['file_name']}", f"{out}/images/{i['file_name']}")
    images += chosen
    annotations += [a for a in coco['annotations'] if a['image_id'] in ids]
json.dump({'images': images, 'annotations': annotations, 'categories': categories}, open(f'{out}/annotations/train.json', 'w'))
print(f'{out}: {len(images)} images, {len(annotations)} boxes, {len(categories)} categories')
