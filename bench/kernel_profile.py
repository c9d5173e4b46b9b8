#!/usr/bin/env python3
"""Sums an `ncu --csv --metrics gpu__time_duration.sum` log of a run per kernel and per family, divided by the number
of detector calls the run made, so a call's GPU time is split without Nsight Systems (not on the GPU machine).

  python3 bench/kernel_profile.py NCU.csv CALLS [--top 25]
"""
import argparse, collections, csv, json, re

p = argparse.ArgumentParser()
p.add_argument('csv'); p.add_argument('calls', type=float); p.add_argument('--top', type=int, default=25)
a = p.parse_args()
with open(a.csv) as f:
    lines = [l for l in f if l.startswith('"')]  # ncu's own messages start with ==
rows = [r for r in csv.DictReader(lines) if r.get('Metric Name') == 'gpu__time_duration.sum']
scale = {'nsecond': 1e-3, 'usecond': 1.0, 'msecond': 1e3}
per_kernel = collections.defaultdict(lambda: [0.0, 0])
for r in rows:
    us = float(r['Metric Value'].replace(',', '')) * scale.get(r['Metric Unit'], 1e-3)
    name = re.sub(r'\(.*', '', r['Kernel Name'])[:90]
    per_kernel[name][0] += us; per_kernel[name][1] += 1

FAMILIES = [('topk', r'topk'), ('nms', r'nms'), ('affine/relu kernel', r'affine'), ('convolution', r'conv|xmma|gemm|'
            r'cudnn|sm90|sm80|implicit|winograd|fprop|cutlass|nhwc|nchw'), ('sort/scan', r'sort|scan|radix|cub'),
            ('copy/cast', r'copy|cast|elementwise_kernel.*direct|unrolled'), ('other', r'.')]
fam = collections.Counter(); kernels = collections.Counter()
for name, (us, n) in per_kernel.items():
    fam[next(f for f, rx in FAMILIES if re.search(rx, name, re.I))] += us
    kernels[name] += n
total = sum(us for us, _ in per_kernel.values())
print(json.dumps({'profile': a.csv, 'kernels_per_call': round(sum(kernels.values()) / a.calls, 1),
                  'gpu_us_per_call': round(total / a.calls, 1),
                  'families_us_per_call': {f: round(us / a.calls, 1) for f, us in fam.most_common()}}))
for name, (us, n) in sorted(per_kernel.items(), key=lambda kv: -kv[1][0])[:a.top]:
    print(f'{us / a.calls:9.1f} us/call  {n / a.calls:6.1f} launches/call  {name}')
