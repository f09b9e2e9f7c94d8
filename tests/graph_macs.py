"""Test helper: MACs counted from the built and exported graphs, independently of harness.macs.

Each counter reads a framework's own view of the model (ONNX shape inference,
PyTorch's flop counter, Keras layer shapes, the TFLite interpreter's tensors,
the Core ML program) and applies the per-op formula; the tests hold every one
to the analytic count. Counted: convolutions and the classifier (Gemm/MatMul/
fully connected), per image.
"""

from __future__ import annotations

import math
from pathlib import Path

from harness.spec import ModelSpec


def onnx_macs(path: Path) -> int:
    """Shape-infer the ONNX graph at batch 1, then sum Conv and Gemm/MatMul MACs."""
    import onnx

    model = onnx.load(str(path))
    for dim in model.graph.input[0].type.tensor_type.shape.dim[:1]:
        dim.ClearField("dim_param")
        dim.dim_value = 1
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {}
    for value in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        shapes[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]  # (out, in/groups, kh, kw)
            total += math.prod(shapes[node.output[0]]) * math.prod(weight[1:])
        elif node.op_type in ("Gemm", "MatMul"):
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            total += math.prod(out) * a[-1]
    return total


def torch_macs(model, spec: ModelSpec) -> int:
    """``torch.utils.flop_counter`` on one image: FLOPs / 2."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, spec.resolution, spec.resolution)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


def keras_macs(model) -> int:
    """From the Keras layers' kernel and output shapes (batch dimension dropped)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw, _, _ = layer.kernel.shape
            total += math.prod(layer.output.shape[1:]) * kh * kw
        elif isinstance(layer, layers.Conv2D):
            kh, kw, cin, _ = layer.kernel.shape
            total += math.prod(layer.output.shape[1:]) * kh * kw * cin
        elif isinstance(layer, layers.Dense):
            total += math.prod(layer.kernel.shape)
    return total


def tflite_macs(path: Path) -> int:
    """From the TFLite interpreter's op list and tensor shapes (batch 1)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    tensors = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = tensors[op["outputs"][0]]
        weight = tensors[op["inputs"][1]]
        if name == "CONV_2D":  # weight (out, kh, kw, in)
            total += math.prod(out) * math.prod(weight[1:])
        elif name == "DEPTHWISE_CONV_2D":  # weight (1, kh, kw, C)
            total += math.prod(out) * weight[1] * weight[2]
        else:  # weight (out, in)
            total += math.prod(out) * weight[1]
    return total


def coreml_macs(path: Path) -> int:
    """From the Core ML program's conv/linear weight shapes and output sizes (batch 1)."""
    from harness.exporters.coreml import mil_ops

    return sum(
        math.prod(op.output_shape) * math.prod(op.weight_shape[1:])
        for op in mil_ops(path)
        if op.weight_shape is not None
    )
