#!/usr/bin/env python3
"""Checks for INT8 exports on the GPU machine (bench/device/int8.sh).

  python3 bench/int8_check.py tables A.cache B.cache
      Two calibration tables (TensorRT's text format) of the same model: same names, and the largest relative
      difference of their scales (CPU vs CUDA calibration differ only by the GPU's convolution rounding).
  python3 bench/int8_check.py tensorrt MODEL.onnx [...] [--batch 8]
      Builds a TensorRT engine from each QDQ model with the INT8 and FP16 flags (explicit quantization: the Q/DQ
      scales are used, no calibrator) and counts the engine's layers running in INT8. Prints one line saying TensorRT
      is absent when neither the tensorrt module nor trtexec is there.
"""
import json
import shutil
import struct
import subprocess
import sys


def read_table(path):
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip()]
    assert lines[0].startswith("TRT-"), f"{path}: not a TensorRT calibration table"
    scales = {}
    for line in lines[1:]:
        name, _, hex_bits = line.rpartition(":")
        scales[name.strip()] = struct.unpack(">f", bytes.fromhex(hex_bits.strip().rjust(8, "0")))[0]
    return lines[0], scales


def tables(a, b):
    (ha, sa), (hb, sb) = read_table(a), read_table(b)
    assert sa.keys() == sb.keys(), f"names differ: {sorted(set(sa) ^ set(sb))[:5]}"
    worst = max(sa, key=lambda n: abs(sa[n] - sb[n]) / sb[n])
    print(json.dumps({"a": a, "b": b, "headers": [ha, hb], "ranges": len(sa),
                      "max_rel_diff": float(f"{abs(sa[worst] - sb[worst]) / sb[worst]:.3g}"), "worst": worst}))


def tensorrt(paths, batch):
    try:
        import tensorrt as trt
    except ImportError:
        trtexec = shutil.which("trtexec")
        if trtexec is None:
            print("TensorRT: absent on this machine (no tensorrt Python module, no trtexec): engine build not checked")
            return
        for path in paths:
            r = subprocess.run([trtexec, f"--onnx={path}", "--int8", "--fp16", "--skipInference"], capture_output=True, text=True)
            print(json.dumps({"model": path, "trtexec_exit": r.returncode, "tail": r.stdout.strip().splitlines()[-1:]}))
        return
    logger = trt.Logger(trt.Logger.WARNING)
    for path in paths:
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        with open(path, "rb") as f:
            if not parser.parse(f.read()):
                print(json.dumps({"model": path, "tensorrt": trt.__version__, "parsed": False,
                                  "errors": [str(parser.get_error(i)) for i in range(parser.num_errors)][:3]}))
                continue
        config = builder.create_builder_config()
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            t = network.get_input(i)
            shape = list(t.shape)
            profile.set_shape(t.name, [1] + shape[1:], [batch] + shape[1:], [batch] + shape[1:])
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            print(json.dumps({"model": path, "tensorrt": trt.__version__, "parsed": True, "built": False}))
            continue
        engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
        info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
        layers = json.loads(info).get("Layers", [])
        int8 = sum(1 for l in layers if "Int8" in json.dumps(l))
        print(json.dumps({"model": path, "tensorrt": trt.__version__, "built": True, "layers": len(layers), "layers_with_int8": int8,
                          "engine_mb": round(plan.nbytes / 1e6, 1)}))


def main(argv):
    if len(argv) >= 3 and argv[0] == "tables":
        tables(argv[1], argv[2])
    elif len(argv) >= 2 and argv[0] == "tensorrt":
        batch = int(argv[argv.index("--batch") + 1]) if "--batch" in argv else 8
        tensorrt([a for a in argv[1:] if a.endswith(".onnx")], batch)
    else:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
