#!/usr/bin/env python3
"""The figures of issues [4/7] and [7/7] from one perf.sh run: ours, the peer (torchvision) in the same run on the same
card, their ratio and the target. Reads OUT/ours.jsonl, OUT/peer.jsonl (each JSON line optionally followed by a
"peak_gpu_memory_mib N" line when MEM=1), OUT/real_train*.log and OUT/peer_real.jsonl (REAL=1: the peer at the real
batches' shape). Where a side ran several times, ours takes
its best and the peer its best too (the peer's best makes our ratio the least flattering). Usage: table.py OUT"""
import json
import re
import statistics
import sys
from pathlib import Path


def runs(path):
    """JSON lines with the peak memory line that follows each (None without MEM=1)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith('{'):
            out.append([json.loads(line), None])
        elif line.startswith('peak_gpu_memory_mib') and out:
            out[-1][1] = int(line.split()[1])
    return out


def steady_rate(log):
    """Images/s of a training log's interval lines after the first (start-up: cuDNN, allocator, workers)."""
    rates = [float(m.group(1)) for m in re.finditer(r'^\[.*?([0-9.]+) im/s', log.read_text(), re.M)]
    return statistics.median(rates[1:]) if len(rates) > 1 else None


def main(out):
    ours, peer = runs(out / 'ours.jsonl'), runs(out / 'peer.jsonl')
    card = (peer or ours or [[{}]])[0][0].get('gpu', '?')
    machine = out / 'machine.txt'
    if machine.exists():
        card = machine.read_text().splitlines()[0]
    rows = []

    def add(figure, mine, theirs, better, target, unit):
        if mine is None or theirs is None:
            return
        ratio = mine / theirs
        if target is None:
            rows.append((figure, f'{mine:.2f} {unit}', f'{theirs:.2f} {unit}', f'{ratio:.2f}x', '-', 'information'))
            return
        met = ratio <= target if better == 'lower' else ratio >= target
        rows.append((figure, f'{mine:.2f} {unit}', f'{theirs:.2f} {unit}', f'{ratio:.2f}x', f'{"<=" if better == "lower" else ">="} {target}x', 'met' if met else 'MISSED'))

    def pick(items, key, best):
        values = [key(r) for r in items]
        values = [v for v in values if v is not None]
        return best(values) if values else None

    infer = lambda b: [r for r in ours if r[0].get('bench') == 'infer' and r[0].get('batch') == b and r[0].get('kernels', True)]
    add('batch-1 latency (ours best vs peer fp32)', pick(infer(1), lambda r: r[0]['ms_per_batch'], min),
        pick([r for r in peer if r[0]['mode'] == 'infer' and r[0]['batch'] == 1 and not r[0]['amp']], lambda r: r[0]['ms_per_batch'], min), 'lower', 0.4, 'ms')
    peer_amp8 = [r for r in peer if r[0]['mode'] == 'infer' and r[0]['batch'] == 8 and r[0]['amp']]
    add('batch-8 inference (vs peer AMP)', pick(infer(8), lambda r: r[0]['images_per_s'], max), pick(peer_amp8, lambda r: r[0]['images_per_s'], max), 'higher', 3, 'im/s')
    train = [r for r in ours if r[0].get('bench') == 'train' and r[0].get('kernels', True)]
    peer_train = [r for r in peer if r[0]['mode'] == 'train']
    peer_train_best = pick(peer_train, lambda r: r[0]['images_per_s'], max)
    # the 2x target is for real JPEGs through our loader (REAL=1); the synthetic step is shown for reference
    add('training step, synthetic batch (vs peer AMP+CL)', pick(train, lambda r: r[0]['images_per_s'], max), peer_train_best, 'higher', None, 'im/s')
    for log in sorted(out.glob('real_train*.log')):
        decode = 'nvJPEG' if 'dali' in log.name else 'CPU decode'
        classes = re.search(r'\((\d+) categories\)', log.read_text())
        # like for like only with the peer's head size (torchvision's default 91 classes; 80 is COCO's)
        label = f'training, real JPEGs, {classes.group(1) if classes else "?"} classes ({decode})'
        fair = classes is not None and int(classes.group(1)) >= 80
        add(label + ' vs peer 800x1216', steady_rate(log), peer_train_best, 'higher', 2 if fair else None, 'im/s')
        # like for like in shape as well: the peer at our batches' size (perf.sh's REAL_H x REAL_W)
        same = runs(out / 'peer_real.jsonl')
        if same:
            h, w = same[0][0]['size']
            add(label + f' vs peer {w}x{h} (same shape)', steady_rate(log), pick(same, lambda r: r[0]['images_per_s'], max), 'higher', 2 if fair else None, 'im/s')
    add('GPU memory, batch-8 inference', pick(infer(8), lambda r: r[1], min), pick(peer_amp8, lambda r: r[1], min), 'lower', 1, 'MiB')
    add('GPU memory, training batch 8', pick(train, lambda r: r[1], min), pick(peer_train, lambda r: r[1], min), 'lower', 1, 'MiB')

    header = ('figure', 'ours', 'peer', 'ratio', 'target', '')
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(f'card: {card}')
    for r in [header] + rows:
        print('  '.join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


if __name__ == '__main__':
    main(Path(sys.argv[1] if len(sys.argv) > 1 else '/tmp/out'))
