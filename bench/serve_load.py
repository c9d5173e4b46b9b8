"""Load generator for `retinanet serve` (stdlib only): C concurrent clients POST images to /v1/detect for S seconds;
prints requests/s and p50/p99 latency per concurrency, one line each.
Usage: python3 bench/serve_load.py URL IMAGE_DIR --concurrency 1 8 32 --seconds 20"""
import argparse, glob, http.client, os, statistics, threading, time, urllib.parse

p = argparse.ArgumentParser()
p.add_argument('url'); p.add_argument('images')
p.add_argument('--concurrency', type=int, nargs='+', default=[1, 8, 32])
p.add_argument('--seconds', type=float, default=20)
a = p.parse_args()
u = urllib.parse.urlparse(a.url)
bodies = [open(f, 'rb').read() for f in sorted(glob.glob(os.path.join(a.images, '*.jpg')))]
assert bodies, 'no .jpg in ' + a.images

def client(deadline, latencies, errors, offset):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    i = offset
    while time.perf_counter() < deadline:
        body = bodies[i % len(bodies)]; i += 1
        start = time.perf_counter()
        conn.request('POST', '/v1/detect', body, {'Content-Type': 'image/jpeg'})
        r = conn.getresponse(); r.read()
        (latencies if r.status == 200 else errors).append(time.perf_counter() - start)

for c in a.concurrency:
    latencies, errors = [], []
    deadline = time.perf_counter() + a.seconds
    threads = [threading.Thread(target=client, args=(deadline, latencies, errors, k * 7)) for k in range(c)]
    start = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    print(f'concurrency {c:3d}: {len(latencies) / wall:7.1f} requests/s, p50 {1000 * q[49]:7.1f} ms, '
          f'p99 {1000 * q[98]:7.1f} ms, {len(latencies)} ok, {len(errors)} errors', flush=True)
