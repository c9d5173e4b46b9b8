#!/usr/bin/env python3
"""Validates ONNX files with the reference checker: onnx.checker.check_model(full_check=True), which also runs strict
shape and type inference over the whole graph. Prints one line per file; exit status 1 if any file fails.

Usage: /usr/bin/python3 tools/onnx/check.py MODEL.onnx [MODEL.onnx ...]
(Debian 12: apt-get install python3-onnx, ONNX 1.12.0, the version tools/onnx/onnx.proto comes from.)
"""
import sys

import onnx


def main(paths):
    failed = 0
    for path in paths:
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
            print(f"{path}: ok (IR version {model.ir_version}, opset {opsets}, {len(model.graph.node)} nodes)")
        except Exception as e:  # one line per failing file, whatever the checker raises
            failed += 1
            message = str(e).strip().splitlines()
            print(f"{path}: FAILED: {message[0] if message else type(e).__name__}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
