"""Core ML (mlprogram ``.mlpackage``, fp32 compute) from the traced PyTorch twin.

coremltools cannot convert Keras 3 models, so the weight-identical PyTorch model
is traced (``torch.jit.trace``, its stable path). The batch dimension is a range,
so one package serves every batch size. Conversion works on Linux; prediction
needs macOS, so :func:`mil_summary` reads the saved program instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.exporters.base import Artifact, describe_file, example_batch
from harness.formats import get_format

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
#: Ops fed a weight (``weight`` input) and their activation (``x`` input).
WEIGHTED_OPS = ("conv", "linear")
#: ``minimum_deployment_target`` of every package: the iOS16 opset, whose
#: ``constexpr_affine_dequantize`` also carries the int8 variant's weights.
DEPLOYMENT_TARGET = "macOS13"


def export_coreml(model, spec, out_dir: Path) -> Artifact:
    import coremltools as ct

    path = out_dir / "model.mlpackage"
    convert(model, spec, ct.precision.FLOAT32).save(str(path))
    return artifact(spec, path)


def convert(model, spec, compute_precision):
    """Trace ``model`` and convert it to an mlprogram computing in ``compute_precision``.

    Inputs and outputs are declared float32: at fp16 compute on a macOS13+ target
    coremltools would otherwise make them fp16 (it then casts fp32 I/O at the edges).
    """
    import coremltools as ct
    import numpy as np
    import torch

    example = torch.from_numpy(example_batch(spec))
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
    res = spec.resolution
    batch = ct.RangeDim(1, get_format("coreml").max_batch, 1)
    return ct.convert(
        traced,
        inputs=[ct.TensorType(name=INPUT_NAME, shape=(batch, 3, res, res), dtype=np.float32)],
        outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
        convert_to="mlprogram",
        compute_precision=compute_precision,
        minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
    )


def artifact(spec, path: Path, precision: str = "fp32", extra: dict | None = None) -> Artifact:
    """The :class:`Artifact` of a Core ML package of ``spec`` (float32 NCHW I/O)."""
    return describe_file(
        "coreml", spec, path, INPUT_NAME, OUTPUT_NAME, precision=precision, extra=extra
    )


@dataclass(frozen=True)
class MilOp:
    """One operation of a saved mlprogram: its type, first output shape and weight shape.

    Shapes are per image: a flexible (batch) dimension counts as 1. ``weight_shape``
    is set for ``conv`` and ``linear`` only.
    """

    type: str
    output_shape: tuple[int, ...]
    weight_shape: tuple[int, ...] | None


def mil_ops(path: Path) -> list[MilOp]:
    """The operations of a saved mlprogram's ``main`` function, in order (no macOS needed)."""
    import coremltools as ct

    shapes: dict[str, tuple[int, ...]] = {}
    ops = []
    for op in main_block(ct.utils.load_spec(str(path))).operations:
        for output in op.outputs:
            dims = output.type.tensorType.dimensions
            shapes[output.name] = tuple(
                d.constant.size if d.HasField("constant") else 1 for d in dims
            )
        weight = None
        if op.type in WEIGHTED_OPS:
            weight = shapes[argument(op, "weight")]
        ops.append(MilOp(op.type, shapes.get(op.outputs[0].name, ()), weight))
    return ops


def argument(op, name: str) -> str:
    """The name of the value a MIL op takes as its input ``name``."""
    return op.inputs[name].arguments[0].name


def main_block(model_spec):
    """The ``main`` function's block (MIL protobuf) of a loaded mlprogram spec."""
    function = model_spec.mlProgram.functions["main"]
    return function.block_specializations[function.opset]


def mil_summary(path: Path) -> dict:
    """Op counts and conv/linear weight shapes of a saved mlprogram."""
    ops = mil_ops(path)
    return {
        "op_counts": dict(Counter(op.type for op in ops)),
        "weights": [
            {"op": op.type, "weight_shape": list(op.weight_shape)}
            for op in ops
            if op.weight_shape is not None
        ],
    }
