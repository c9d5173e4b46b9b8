#!/usr/bin/env python3
"""Peer for end-to-end folder inference ([w2 6/7] item 1): torchvision's RetinaNet-ResNet50-FPN run as a torchvision
user runs it over a folder of JPEGs: a DataLoader with N workers decoding with torchvision.io (read_file +
decode_jpeg/decode_image, RGB), batches of uint8 tensors moved to the GPU, /255, the model under fp16 autocast
(its own transform resizes to 800 short side, max 1333, on the GPU, and pads), detections brought back to the host.
Prints one JSON line: in-loop images/s (first batch included, as our `infer` prints it), the same after the first
batch, and the whole process's seconds from interpreter start.

  python3 bench/peer_folder.py --images DIR [--batch 8] [--workers 8] [--amp] [--score-thresh 0.05]
"""
import argparse, json, os, time
T0 = time.perf_counter()
import torch
import torchvision
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.models.detection import retinanet_resnet50_fpn

p = argparse.ArgumentParser()
p.add_argument('--images', required=True)
p.add_argument('--batch', type=int, default=8)
p.add_argument('--workers', type=int, default=8)
p.add_argument('--amp', action='store_true')
p.add_argument('--score-thresh', type=float, default=0.05)
p.add_argument('--cudnn-benchmark', action='store_true',
               help='off by default: with a new shape every few batches it re-tunes and runs at a third of its speed')
a = p.parse_args()


class Folder(torch.utils.data.Dataset):
    def __init__(self, root):
        self.files = sorted(os.path.join(root, f) for f in os.listdir(root)
                            if f.lower().endswith(('.jpg', '.jpeg', '.png')))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return decode_image(read_file(self.files[i]), mode=ImageReadMode.RGB)


torch.backends.cudnn.benchmark = a.cudnn_benchmark
torch.manual_seed(0)
model = retinanet_resnet50_fpn(weights=None, weights_backbone=None, score_thresh=a.score_thresh).cuda().eval()
data = Folder(a.images)
loader = torch.utils.data.DataLoader(data, batch_size=a.batch, num_workers=a.workers, collate_fn=list,
                                     pin_memory=True)
images = detections = 0
first = None
torch.cuda.synchronize()
t = time.perf_counter()
with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16, enabled=a.amp):
    for batch in loader:
        out = model([im.cuda(non_blocking=True).float().div_(255) for im in batch])
        # on the host, as a user writes them out
        for o in out:
            detections += len(o['scores'].cpu())
            o['boxes'].cpu(); o['labels'].cpu()
        images += len(batch)
        if first is None:
            first = time.perf_counter() - t
dt = time.perf_counter() - t
print(json.dumps({'peer': 'torchvision folder', 'torch': torch.__version__, 'torchvision': torchvision.__version__,
                  'gpu': torch.cuda.get_device_name(), 'batch': a.batch, 'workers': a.workers, 'amp': a.amp,
                  'score_thresh': a.score_thresh, 'cudnn_benchmark': a.cudnn_benchmark, 'images': images,
                  'detections': detections,
                  'loop_s': round(dt, 2), 'images_per_s': round(images / dt, 1),
                  'after_first_batch_images_per_s': round((images - a.batch) / (dt - first), 1),
                  'whole_s': round(time.perf_counter() - T0, 2)}), flush=True)
