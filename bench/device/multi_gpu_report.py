"""Reads the logs and outputs of bench/device/multi_gpu.sh.
  curves ONE.log MANY.log [--bin 50]      loss (focal + box) per bin of iterations, one GPU vs several
  throughput LOG BATCH [--from 60]         images/s over the steady-state window (log lines after iteration --from)
  detections A.json B.json                 how far two detection files agree (same image, category, box, score)
Log lines are ODTK's: [ i/N] focal loss: F, box loss: B, S s/K-batch (...), R im/s, lr: L"""
import json
import math
import re
import sys

LINE = re.compile(r"^\[\s*(\d+)/(\d+)\] focal loss: ([\d.naif]+), box loss: ([\d.naif]+), ([\d.]+)s/(\d+)-batch")


def lines(path):
    out = []
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if m:
            out.append((int(m[1]), float(m[3]) + float(m[4]), float(m[5]), int(m[6])))
    return out


def bins(path, size):
    """Mean loss per bin of `size` iterations; each log line averages the iterations since the previous line."""
    result, prev = {}, 0
    for it, loss, _, _ in lines(path):
        for k in range(prev + 1, it + 1):
            result.setdefault((k - 1) // size, []).append(loss)
        prev = it
    return {b: (sum(v) / len(v), len(v)) for b, v in sorted(result.items())}


def curves(one, many, size=50):
    a, b = bins(one, size), bins(many, size)
    worst = 0.0
    print(f"{'iterations':>12} {'1 GPU loss':>11} {'N GPU loss':>11} {'rel diff':>9}")
    for k in sorted(set(a) & set(b)):
        rel = abs(a[k][0] - b[k][0]) / max(abs(a[k][0]), 1e-9)
        worst = max(worst, rel)
        print(f"{k * size + 1:>5}-{(k + 1) * size:<6} {a[k][0]:>11.4f} {b[k][0]:>11.4f} {rel:>9.3f}")
    first_a, last_a = a[min(a)][0], a[max(a)][0]
    print(f"loss_curve_max_rel_diff {worst:.3f} (1 GPU loss fell {first_a:.3f} -> {last_a:.3f})")


def throughput(path, batch, start=60):
    seen, prev = [], None
    for it, _, seconds, _ in lines(path):
        if prev is not None and prev >= start:
            seen.append((it - prev, seconds))
        prev = it
    its = sum(n for n, _ in seen)
    secs = sum(n * s for n, s in seen)
    print(f"{batch * its / secs:.1f}" if secs > 0 else "nan")


def detections(a_path, b_path):
    def load(p):
        d = json.load(open(p))
        return d["annotations"] if isinstance(d, dict) else d
    a, b = load(a_path), load(b_path)
    def key(d):
        return (d["image_id"], d["category_id"])
    exact = same = 0
    worst_box = worst_score = 0.0
    for x, y in zip(a, b):
        if key(x) != key(y):
            continue
        db = max(abs(p - q) for p, q in zip(x["bbox"], y["bbox"]))
        ds = abs(x["score"] - y["score"])
        worst_box, worst_score = max(worst_box, db), max(worst_score, ds)
        same += db < 0.5 and ds < 1e-3
        exact += db == 0 and ds == 0
    print(f"detections {len(a)} vs {len(b)}; same (box within 0.5 px, score within 1e-3) {same}; bitwise equal {exact}; "
          f"max box diff {worst_box:.3g} px, max score diff {worst_score:.3g}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "curves":
        curves(args[0], args[1], int(args[3]) if len(args) > 3 else 50)
    elif cmd == "throughput":
        throughput(args[0], int(args[1]), int(args[3]) if len(args) > 3 else 60)
    elif cmd == "detections":
        detections(args[0], args[1])
