"""A second ONNX reader for the tests (Debian's python3-onnx): checks the model with onnx.checker and prints its
metadata and its graph inputs and outputs as JSON on stdout.
Usage: /usr/bin/python3 read_onnx_metadata.py MODEL.onnx"""
import json, sys
import onnx

model = onnx.load(sys.argv[1])
onnx.checker.check_model(model)

NAMES = {"FLOAT": "float32", "FLOAT16": "float16", "DOUBLE": "float64"}

def value_info(v):
    dims = [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]
    kind = onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
    return {"name": v.name, "type": NAMES.get(kind, kind.lower()), "shape": dims}

print(json.dumps({
    "metadata": {p.key: p.value for p in model.metadata_props},
    "inputs": [value_info(v) for v in model.graph.input],
    "outputs": [value_info(v) for v in model.graph.output],
}))
