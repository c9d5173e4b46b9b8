# Stores a safetensors file's float32 conv weights (4-D) as float16, halving it for the device's 64 MiB carry limit.
# Usage: python3 bench/tools/round_fp16.py IN.safetensors OUT.safetensors   (stdlib only)
import json, struct, sys, array
src, dst = sys.argv[1], sys.argv[2]
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n]); body = raw[8 + n:]
out_header, chunks, offset = {}, [], 0
for name, info in header.items():
    if name == '__metadata__': out_header[name] = info; continue
    b, e = info['data_offsets']; data = body[b:e]
    if info['dtype'] == 'F32' and len(info['shape']) == 4:
        vals = array.array('f'); vals.frombytes(data)
        data = struct.pack('<%de' % len(vals), *vals); dtype = 'F16'
    else: dtype = info['dtype']
    out_header[name] = {'dtype': dtype, 'shape': info['shape'], 'data_offsets': [offset, offset + len(data)]}
    chunks.append(data); offset += len(data)
h = json.dumps(out_header).encode(); h += b' ' * ((8 - len(h) % 8) % 8)
with open(dst, 'wb') as f: f.write(struct.pack('<Q', len(h))); f.write(h); [f.write(c) for c in chunks]
