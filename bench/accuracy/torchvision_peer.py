"""The peer of the accuracy run (issue [3/7]): torchvision's RetinaNet with a ResNet18-FPN built from the same
ImageNet weights, trained with the same images, size, batch, iterations and lr schedule as `retinanet train`,
then its detections on the validation split written as a COCO results list for `retinanet evaluate` to score.

  python3 torchvision_peer.py --train-json A --train-images DIR --val-json V --val-images DIR \
      --weights resnet18-imagenet.pth --out peer_detections.json [--iters 1500 --batch 8 --size 480 ...]

Settings mirror ODTK's (and our) defaults: SGD momentum 0.9, weight decay 1e-4, linear warm-up from 0.1x,
step decay x0.1 at the milestones, horizontal flip, frozen batch norm, conv1 and layer1 frozen (torchvision's default trainable_layers=3, as ours), fp16 autocast with GradScaler.
"""
import argparse, json, os, random, time
import torch, torchvision
from torchvision.io import read_image, ImageReadMode
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

p = argparse.ArgumentParser()
for k in ['train-json', 'train-images', 'val-json', 'val-images', 'weights', 'out']:
    p.add_argument('--' + k, required=True)
p.add_argument('--iters', type=int, default=1500)
p.add_argument('--batch', type=int, default=8)
p.add_argument('--size', type=int, default=480)
p.add_argument('--max-size', type=int, default=1333)
p.add_argument('--lr', type=float, default=0.01)
p.add_argument('--warmup', type=int, default=300)
p.add_argument('--milestones', type=int, nargs='*', default=[1000, 1300])
p.add_argument('--workers', type=int, default=8)
p.add_argument('--precision', choices=['fp16', 'fp32'], default='fp16')
a = p.parse_args()
torch.manual_seed(0); random.seed(0)
dev = 'cuda'
torch.backends.cudnn.benchmark = True

def load(json_path, images):
    d = json.load(open(json_path))
    cats = sorted(c['id'] for c in d['categories'])
    by_image = {i['id']: [] for i in d['images']}
    for an in d.get('annotations', []):
        if an.get('iscrowd', 0): continue
        x, y, w, h = an['bbox']
        if w > 0 and h > 0: by_image[an['image_id']].append((x, y, x + w, y + h, an['category_id']))
    return d, cats, [(i['id'], os.path.join(images, i['file_name']), by_image[i['id']]) for i in d['images']]

train_d, cats, train = load(a.train_json, a.train_images)
val_d, _, val = load(a.val_json, a.val_images)

class Data(torch.utils.data.Dataset):
    def __init__(self, items, flip): self.items, self.flip = items, flip
    def __len__(self): return len(self.items)
    def __getitem__(self, i):
        image_id, path, boxes = self.items[i]
        img = read_image(path, ImageReadMode.RGB).float() / 255
        b = torch.tensor([x[:4] for x in boxes], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([x[4] for x in boxes], dtype=torch.int64)
        if self.flip and random.random() < 0.5:
            img = img.flip(-1); w = img.shape[-1]
            b = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
        return image_id, img, {'boxes': b, 'labels': labels}

def collate(batch): return list(zip(*batch))

backbone = resnet_fpn_backbone(backbone_name='resnet18', weights=None, trainable_layers=3, returned_layers=[2, 3, 4],
                               extra_blocks=LastLevelP6P7(256, 256))
state = torch.load(a.weights, map_location='cpu')
missing, unexpected = backbone.body.load_state_dict({k: v for k, v in state.items() if not k.startswith('fc.')}, strict=False)
assert not [m for m in missing if 'num_batches' not in m], missing
model = RetinaNet(backbone, num_classes=max(cats) + 1, min_size=a.size, max_size=a.max_size).to(dev)

opt = torch.optim.SGD([q for q in model.parameters() if q.requires_grad], lr=a.lr, momentum=0.9, weight_decay=1e-4)
def factor(it):
    if a.warmup and it <= a.warmup: return 0.9 * it / a.warmup + 0.1
    return 0.1 ** len([m for m in a.milestones if m <= it])
sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
loader = torch.utils.data.DataLoader(Data(train, True), batch_size=a.batch, shuffle=True, num_workers=a.workers, collate_fn=collate,
                                     drop_last=True, persistent_workers=True)
scaler = torch.amp.GradScaler(enabled=a.precision == 'fp16')  # torchvision's standard AMP recipe (its reference scripts' --amp); bf16 without it diverged
model.train()
it, t0, first_bad = 0, time.time(), None
while it < a.iters:
    for _, imgs, targets in loader:
        imgs = [i.to(dev, non_blocking=True) for i in imgs]
        targets = [{k: v.to(dev) for k, v in t.items()} for t in targets]
        with torch.autocast('cuda', dtype=torch.float16, enabled=a.precision == 'fp16'):
            losses = model(imgs, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss) and first_bad is None:
            first_bad = it + 1
            print(json.dumps({'first_non_finite': first_bad, 'losses': {k: float(v) for k, v in losses.items()},
                              'boxes_wh_min': min(float((t['boxes'][:, 2:] - t['boxes'][:, :2]).min()) for t in targets if len(t['boxes']))}), flush=True)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt); scaler.update(); sched.step(); it += 1
        if it % 100 == 0:
            print(json.dumps({'iter': it, 'loss': round(loss.item(), 4), 'lr': sched.get_last_lr()[0], 's': round(time.time() - t0, 1)}), flush=True)
        if it >= a.iters: break
torch.cuda.synchronize(); train_s = time.time() - t0

model.eval()
results = []
t1 = time.time()
with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16, enabled=a.precision == 'fp16'):
    for image_id, path, _ in val:
        img = (read_image(path, ImageReadMode.RGB).float() / 255).to(dev)
        out = model([img])[0]
        for (x1, y1, x2, y2), s, l in zip(out['boxes'].float().tolist(), out['scores'].float().tolist(), out['labels'].tolist()):
            results.append({'image_id': image_id, 'category_id': l, 'bbox': [x1, y1, x2 - x1, y2 - y1], 'score': s})
json.dump(results, open(a.out, 'w'))
print(json.dumps({'peer': 'torchvision RetinaNet resnet18-fpn', 'torch': torch.__version__, 'torchvision': torchvision.__version__,
                  'gpu': torch.cuda.get_device_name(), 'precision': a.precision, 'lr': a.lr, 'first_non_finite': first_bad, 'iters': a.iters, 'batch': a.batch, 'size': a.size, 'train_s': round(train_s, 1),
                  'infer_s': round(time.time() - t1, 1), 'detections': len(results)}), flush=True)
