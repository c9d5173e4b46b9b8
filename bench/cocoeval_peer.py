"""Peer timing for `RetinaNet.Bench eval`: pycocotools COCOeval (bbox) on the files that the bench writes.

    python3 bench/cocoeval_peer.py DIR      # DIR holds gt.json and detections.json (default /tmp/retinanet-evalbench)

Prints the summary and one JSON line: seconds for loadRes + evaluate + accumulate + summarize (loading gt excluded).
"""
import json, sys, time
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

folder = sys.argv[1] if len(sys.argv) > 1 else "/tmp/retinanet-evalbench"
gt = COCO(f"{folder}/gt.json")
start = time.perf_counter()
dt = gt.loadRes(f"{folder}/detections.json")
e = COCOeval(gt, dt, "bbox")
e.evaluate(); e.accumulate(); e.summarize()
print(json.dumps({"bench": "cocoeval_peer", "seconds": round(time.perf_counter() - start, 3), "stats": list(e.stats)}))
