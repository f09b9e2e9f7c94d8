"""Core ML precision variants: an fp16-compute program and int8 weights on it.

``model.fp16.mlpackage`` is the fp32 exporter's conversion with
``compute_precision=FLOAT16`` (Core ML's default): weights and activations are
fp16, with casts from and to float32 at the edges (I/O stay float32).
``model.int8.mlpackage`` is that program with its conv and linear weights
quantized by ``coremltools.optimize.coreml.linear_quantize_weights`` (symmetric,
per output channel). At the ``macOS13`` target (the lowest that has it, shared with
the fp32 package) each weight becomes a ``constexpr_affine_dequantize`` op holding
int8 data; iOS18/macOS15 would make ``constexpr_blockwise_shift_scale`` instead.
This is weight-only compression: Core ML decompresses the weights and computes
in fp16. Neither variant needs calibration images.

:func:`mil_precision` reads the dtypes back from a saved program (no macOS needed).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.exporters.base import Artifact
from harness.exporters.coreml import (
    DEPLOYMENT_TARGET,
    WEIGHTED_OPS,
    argument,
    artifact,
    convert,
    main_block,
)
from harness.formats import get_format

_DTYPES = {"FLOAT16": "fp16", "FLOAT32": "fp32", "FLOAT64": "fp64", "BFLOAT16": "bf16"}


def export_fp16(model, spec, out_dir: Path, calibration) -> Artifact:
    """The fp16-compute mlprogram (float32 I/O); ``calibration`` is unused."""
    import coremltools as ct

    path = out_dir / get_format("coreml").file("fp16")
    convert(model, spec, ct.precision.FLOAT16).save(str(path))
    return _artifact(spec, path, "fp16")


def export_int8(model, spec, out_dir: Path, calibration) -> Artifact:
    """int8 per-channel weights on the fp16-compute program; ``calibration`` is unused.

    The fp16 package already in ``out_dir`` is quantized when present (no second
    conversion); otherwise the model is converted at fp16 first.
    """
    import coremltools.optimize.coreml as cto

    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(**quantizer()))
    path = out_dir / get_format("coreml").file("int8")
    cto.linear_quantize_weights(_fp16_program(model, spec, out_dir), config=config).save(str(path))
    return _artifact(spec, path, "int8")


def quantizer() -> dict:
    """``OpLinearQuantizerConfig`` arguments from the int8 variant's settings.

    ``weight_threshold`` 0 quantizes every weight: coremltools' default (2048
    elements) would leave the stem, most depthwise and the small 1x1 weights fp16.
    """
    settings = get_format("coreml").variant("int8").settings
    return {
        "mode": settings["mode"],
        "dtype": settings["dtype"],
        "granularity": settings["granularity"],
        "weight_threshold": settings["weight_threshold"],
    }


def _fp16_program(model, spec, out_dir: Path):
    import coremltools as ct

    saved = out_dir / get_format("coreml").file("fp16")
    if saved.is_dir():
        return ct.models.MLModel(str(saved), skip_model_load=True)
    return convert(model, spec, ct.precision.FLOAT16)


def _artifact(spec, path: Path, precision: str) -> Artifact:
    extra = {"deployment_target": DEPLOYMENT_TARGET, "mil_precision": mil_precision(path)}
    return artifact(spec, path, precision, extra)


def mil_precision(path: Path) -> dict:
    """The dtypes a saved mlprogram computes and stores its weights in.

    ``io``: the dtype of the model's input and output. ``compute``: per conv/linear,
    how many take their activation in each dtype. ``weights``: per conv/linear, how
    many weights are stored in each dtype (a ``constexpr_*`` op's quantized data
    counts as its dtype). ``dequantize_ops``: ``constexpr_*`` op counts. ``casts``:
    cast op counts by target dtype.
    """
    import coremltools as ct

    model = ct.utils.load_spec(str(path))
    function = model.mlProgram.functions["main"]
    block = main_block(model)
    dtypes = {value.name: _dtype(value.type) for value in function.inputs}
    stored: dict[str, str] = {}
    compute = {op: Counter() for op in WEIGHTED_OPS}
    weights = {op: Counter() for op in WEIGHTED_OPS}
    dequantize: Counter = Counter()
    casts: Counter = Counter()
    for op in block.operations:
        dtypes.update((out.name, _dtype(out.type)) for out in op.outputs)
        if op.type.startswith("constexpr_"):
            dequantize[op.type] += 1
            stored[op.outputs[0].name] = _quantized_dtype(op, dtypes)
        elif op.type == "cast":
            casts[dtypes[op.outputs[0].name]] += 1
        elif op.type in WEIGHTED_OPS:
            compute[op.type][dtypes[argument(op, "x")]] += 1
            weight = argument(op, "weight")
            weights[op.type][stored.get(weight, dtypes[weight])] += 1
    return {
        "io": {"input": dtypes[function.inputs[0].name], "output": dtypes[block.outputs[0]]},
        "compute": {op: dict(counts) for op, counts in compute.items()},
        "weights": {op: dict(counts) for op, counts in weights.items()},
        "dequantize_ops": dict(dequantize),
        "casts": dict(casts),
    }


def _dtype(value_type) -> str:
    from coremltools.proto import MIL_pb2

    name = MIL_pb2.DataType.Name(value_type.tensorType.dataType)
    return _DTYPES.get(name, name.lower())


def _quantized_dtype(op, dtypes: dict[str, str]) -> str:
    """The stored dtype of a ``constexpr_*`` op's data: an attribute (iOS16) or input (iOS18)."""
    if "quantized_data" in op.attributes:
        return _dtype(op.attributes["quantized_data"].type)
    if "data" in op.inputs:
        return dtypes[argument(op, "data")]
    return "unknown"
