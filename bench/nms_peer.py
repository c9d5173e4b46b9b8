"""Peer figure for the NMS benchmark: torchvision.ops.batched_nms on the same kind of boxes, same GPU, same run.
Usage: python3 bench/nms_peer.py [--boxes 20000] [--classes 80] [--iters 50]"""
import argparse, json, time
import torch, torchvision

p = argparse.ArgumentParser()
p.add_argument('--boxes', type=int, default=20000)
p.add_argument('--classes', type=int, default=80)
p.add_argument('--iters', type=int, default=50)
a = p.parse_args()
g = torch.Generator(device='cuda').manual_seed(0)
n = a.boxes
centres = (torch.rand(300, 2, generator=g, device='cuda') * 1100).repeat_interleave(n // 300 + 1, 0)[:n]
jitter = torch.randn(n, 2, generator=g, device='cuda') * 20
size = torch.rand(n, 2, generator=g, device='cuda') * 150 + 10
boxes = torch.cat([centres + jitter, centres + jitter + size], 1)
scores = torch.rand(n, generator=g, device='cuda')
labels = torch.randint(0, a.classes, (n,), generator=g, device='cuda')
for _ in range(5):
    torchvision.ops.batched_nms(boxes, scores, labels, 0.5)
torch.cuda.synchronize()
times = []
for _ in range(a.iters):
    t = time.perf_counter()
    keep = torchvision.ops.batched_nms(boxes, scores, labels, 0.5)[:100]
    torch.cuda.synchronize()
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({'bench': 'nms_peer', 'impl': 'torchvision.ops.batched_nms', 'gpu': torch.cuda.get_device_name(), 'boxes': n,
                  'classes': a.classes, 'kept_top': len(keep), 'median_ms': round(times[len(times) // 2], 3), 'min_ms': round(times[0], 3)}))
