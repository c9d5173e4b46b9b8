#!/usr/bin/env python3
"""Is a new input shape's first batch expensive in PyTorch too? ([w2 6/7] item 1.) torchvision's RetinaNet-ResNet50-FPN
body + FPN + heads (no transform, no postprocess) under bf16 autocast, cudnn.benchmark off, on the padded shapes a
shape-grouped COCO pass gives (batch 8): for each shape the first call and the mean of the next 3, in ms, synchronised.
With --channels-last the model and the inputs are channels-last.

  python3 bench/shape_cost_peer.py [--batch 8] [--channels-last]
"""
import argparse, json, time
import torch
from torchvision.models.detection import retinanet_resnet50_fpn

p = argparse.ArgumentParser()
p.add_argument('--batch', type=int, default=8)
p.add_argument('--channels-last', action='store_true')
a = p.parse_args()
torch.backends.cudnn.benchmark = False
model = retinanet_resnet50_fpn(weights=None, weights_backbone=None).cuda().eval()
fmt = torch.channels_last if a.channels_last else torch.contiguous_format
model = model.to(memory_format=fmt)
shapes = [(640, 640), (800, 1088), (800, 1216), (800, 1344), (1088, 800), (1216, 800), (896, 1216), (768, 1344),
          (640, 896), (704, 1088), (1344, 768), (960, 1280)]


def call(x):
    torch.cuda.synchronize()
    t = time.perf_counter()
    with torch.no_grad(), torch.autocast('cuda', dtype=torch.bfloat16):
        f = model.backbone(x)
        model.head(list(f.values()))
    torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1000


call(torch.rand(a.batch, 3, 512, 512, device='cuda').to(memory_format=fmt))  # lazy initialisation, not a shape's cost
for h, w in shapes:
    x = torch.rand(a.batch, 3, h, w, device='cuda').to(memory_format=fmt)
    first = call(x)
    rest = sum(call(x) for _ in range(3)) / 3
    print(json.dumps({'bench': 'shape-cost-peer', 'channels_last': a.channels_last, 'batch': a.batch,
                      'shape': f'{h}x{w}', 'first_ms': round(first, 1), 'rest_mean_ms': round(rest, 1)}), flush=True)
