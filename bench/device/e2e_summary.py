#!/usr/bin/env python3
"""Compact lines from e2e.sh's log (stdin): each e2e run's main figures, peak memory, whole commands, the peer."""
import json, sys

for line in sys.stdin:
    line = line.strip()
    if line.startswith('{"bench": "e2e"'):
        d = json.loads(line)
        keys = ['mode', 'batch', 'images_per_s', 'after_first_batch_images_per_s', 'first_batch_ms',
                'detect_ms_per_batch', 'wait_ms_per_batch', 'mean_batch_mpixels', 'shapes', 'padding_entries',
                'preloaded_images_per_s']
        print('e2e', ' '.join(f'{k}={d[k]}' for k in keys if k in d))
    elif line.startswith('{') and '"peer' in line:
        d = json.loads(line)
        print('peer', ' '.join(f'{k}={v}' for k, v in d.items() if k != 'bench'))
    elif line.startswith('{"bench": "train"') or line.startswith('{"bench": "infer"'):
        print(line[:300])
    elif not line.startswith('{'):
        print(line[:300])
