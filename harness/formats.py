"""The one table of model formats: what exports each one, its file, what it needs.

Everything else that varies by format is derived from :data:`FORMATS`: the
export jobs (grouped by the native model they start from), the missing-
framework reasons, the distributions whose versions key the artifact cache and
go into ``env.json``, and each backend's runtime module and version. Adding a
backend for a new format is one record here, one backend file, one registry
entry and one pyproject extra. No framework is imported here.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: Precisions a format can carry; fp32 is every format's base artifact.
FP32 = "fp32"
#: Every precision the matrix knows, in the order tables show them.
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: Seeded images each int8 variant is calibrated on (disjoint from the evaluation set).
CALIBRATION_IMAGES = 32
#: ONNX Runtime's documented int8 activation type for this CPU family (``quantize_static``'s
#: docstring): uint8 activations with int8 weights (U8S8) on x86-64, whose VNNI/AVX2 kernels
#: are U8S8 (S8S8 QDQ graphs there are only partly fused, or fused into slow kernels), and
#: int8 activations (S8S8) on ARM.
ORT_ACTIVATIONS = "uint8" if platform.machine().lower() in ("x86_64", "amd64") else "int8"
#: Distributions that are not a format's but still change numbers or files.
COMMON_DISTRIBUTIONS = ("numpy",)


@dataclass(frozen=True)
class Variant:
    """A reduced-precision file of a format, made by its runtime's own deployment tooling.

    ``exporter`` is ``fn(model, spec, out_dir, calibration) -> Artifact``: it gets the
    native source model, the spec, the export folder (which already holds the fp32
    file) and the seeded calibration images (NCHW float32). ``settings`` are the
    quantization / conversion settings: recorded in the manifest entry, and a
    cached variant made with other settings is made again. ``compiles`` names the
    JIT compile step the variant runs through (None: none).
    """

    precision: str
    exporter: str
    settings: dict[str, Any] = field(default_factory=dict)
    modules: tuple[str, ...] = ()
    distributions: tuple[str, ...] = ()
    compiles: str | None = None


@dataclass(frozen=True)
class Format:
    """One exported model format.

    ``source`` is the native model the exporter starts from (``pytorch`` or
    ``keras``); formats with the same source are exported in one process from
    one built model. ``modules`` are what exporting needs (the reference and
    the source framework included); ``runtime_module``/``runtime_distribution``
    are what runs the file. ``variants`` are the reduced-precision files an export
    folder can hold beside the fp32 one; a variant's file and manifest key carry
    the precision's name. ``absent`` says why a precision has no variant.
    """

    name: str
    source: str
    exporter: str  # "package.module:function", imported only when exporting
    filename: str
    modules: tuple[str, ...]
    runtime_module: str
    runtime_distribution: str
    extra: str
    distributions: tuple[str, ...]
    variants: tuple[Variant, ...] = ()
    absent: dict[str, str] = field(default_factory=dict)
    #: The largest batch the exported file accepts (its dynamic batch dimension's bound).
    max_batch: int = 1024

    @property
    def precisions(self) -> tuple[str, ...]:
        return (FP32, *(v.precision for v in self.variants))

    def variant(self, precision: str) -> Variant:
        """The variant record of ``precision`` (not fp32)."""
        self._check(precision)
        return next(v for v in self.variants if v.precision == precision)

    def absent_reason(self, precision: str) -> str | None:
        """Why this format has no ``precision`` file (one line), or None when it has one."""
        if precision in self.precisions:
            return None
        return self.absent.get(precision) or f"mobilebench makes no {precision} {self.name} file"

    def key(self, precision: str = FP32) -> str:
        """The manifest key of a variant: ``onnx`` for fp32, ``onnx.int8`` otherwise."""
        self._check(precision)
        return self.name if precision == FP32 else f"{self.name}.{precision}"

    def file(self, precision: str = FP32) -> str:
        """The artifact's file name: ``model.onnx``, or ``model.int8.onnx`` for a variant."""
        self._check(precision)
        if precision == FP32:
            return self.filename
        stem, dot, suffix = self.filename.partition(".")
        return f"{stem}.{precision}{dot}{suffix}"

    def missing(self, precision: str = FP32) -> str | None:
        """Why this format (at ``precision``) cannot be exported here, or None when it can."""
        modules = (
            self.modules if precision == FP32 else (*self.modules, *self.variant(precision).modules)
        )
        absent = [m for m in dict.fromkeys(modules) if importlib.util.find_spec(m) is None]
        if not absent:
            return None
        return (
            f"exporting {self.name} needs {', '.join(absent)} "
            f"(pip install 'mobilebench[{self.extra}]')"
        )

    def export_function(self, precision: str = FP32) -> Callable:
        """The exporter, imported now: ``fn(model, spec, out_dir[, calibration]) -> Artifact``."""
        target = self.exporter if precision == FP32 else self.variant(precision).exporter
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def _check(self, precision: str) -> None:
        if precision not in self.precisions:
            raise ValueError(
                f"format {self.name!r} has no {precision} variant "
                f"(it has: {', '.join(self.precisions)})"
            )


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            name="pytorch",
            source="pytorch",
            exporter="harness.exporters.native:export_pytorch",
            filename="model.pt2",
            modules=("torch",),
            runtime_module="torch",
            runtime_distribution="torch",
            extra="pytorch",
            distributions=("torch",),
            variants=(
                Variant(
                    "int8",
                    "harness.exporters.pytorch_variants:export_int8",
                    settings={
                        "flow": "PT2E: torch.export, prepare_pt2e, calibrate, convert_pt2e",
                        "quantizer": "torchao X86InductorQuantizer, default static config",
                        "activations": "int8 (unsigned), per-tensor, calibrated",
                        "weights": "int8 (signed), per-channel",
                        "calibration_images_at_most": CALIBRATION_IMAGES,
                        "lowering": "torch.compile (inductor, freezing)",
                    },
                    modules=("torchao",),
                    distributions=("torchao",),
                    compiles="torch.compile (inductor generates and compiles C++)",
                ),
                Variant(
                    "bf16",
                    "harness.exporters.pytorch_variants:export_bf16",
                    settings={"weights": "bfloat16", "compute": "bfloat16", "io": "float32"},
                ),
            ),
            absent={"fp16": "PyTorch deploys reduced precision on CPUs as bf16, not fp16"},
        ),
        Format(
            name="keras",
            source="keras",
            exporter="harness.exporters.native:export_keras",
            filename="model.keras",
            modules=("torch", "tensorflow", "keras"),
            runtime_module="keras",
            runtime_distribution="keras",
            extra="keras",
            distributions=("tensorflow", "keras"),
            absent=dict.fromkeys(
                PRECISIONS[1:],
                "Keras has no int8/fp16/bf16 inference runtime of its own: a Keras "
                "model deploys through TFLite (see the tflite rows)",
            ),
        ),
        Format(
            name="onnx",
            source="pytorch",
            exporter="harness.exporters.onnx:export_onnx",
            filename="model.onnx",
            modules=("torch", "onnx", "onnxscript"),
            runtime_module="onnxruntime",
            runtime_distribution="onnxruntime",
            extra="onnx",
            distributions=("onnx", "onnxscript", "onnxruntime"),
            variants=(
                Variant(
                    "int8",
                    "harness.exporters.onnx_variants:export_int8",
                    settings={
                        "tool": "onnxruntime.quantization: quant_pre_process, quantize_static",
                        "format": "QDQ",
                        "activation_type": ORT_ACTIVATIONS,
                        "activations": f"{ORT_ACTIVATIONS}, per-tensor (ONNX Runtime's choice "
                        "for this CPU: U8S8 on x86-64, S8S8 on ARM)",
                        "weights": "int8 (signed), per-channel",
                        "calibration": "MinMax",
                        "calibration_images_at_most": CALIBRATION_IMAGES,
                    },
                    modules=("onnxruntime",),
                ),
                Variant(
                    "fp16",
                    "harness.exporters.onnx_variants:export_fp16",
                    settings={
                        "tool": "onnxruntime.transformers.float16.convert_float_to_float16",
                        "keep_io_types": True,
                    },
                    modules=("onnxruntime",),
                ),
            ),
            absent={"bf16": "ONNX Runtime's CPU execution provider has no bf16 convolutions"},
        ),
        Format(
            name="tflite",
            source="keras",
            exporter="harness.exporters.tflite:export_tflite",
            filename="model.tflite",
            modules=("torch", "tensorflow", "keras", "ai_edge_litert"),
            runtime_module="ai_edge_litert",
            runtime_distribution="ai-edge-litert",
            extra="tflite",
            distributions=("tensorflow", "keras", "ai-edge-litert"),
            variants=(
                Variant(
                    "int8",
                    "harness.exporters.tflite_variants:export_int8",
                    settings={
                        "converter": "TFLiteConverter.from_keras_model",
                        "optimizations": "DEFAULT",
                        "representative_dataset_images": CALIBRATION_IMAGES,
                        "supported_ops": "TFLITE_BUILTINS_INT8 (full integer)",
                        "io": "float32 (quantize/dequantize at the edges)",
                    },
                ),
                Variant(
                    "fp16",
                    "harness.exporters.tflite_variants:export_fp16",
                    settings={
                        "converter": "TFLiteConverter.from_keras_model",
                        "optimizations": "DEFAULT",
                        "supported_types": "float16",
                    },
                ),
            ),
            absent={"bf16": "TFLite has no bf16 tensor type"},
        ),
        Format(
            name="coreml",
            source="pytorch",
            exporter="harness.exporters.coreml:export_coreml",
            filename="model.mlpackage",
            modules=("torch", "coremltools"),
            runtime_module="coremltools",
            runtime_distribution="coremltools",
            extra="coreml",
            distributions=("coremltools",),
            variants=(
                Variant(
                    "fp16",
                    "harness.exporters.coreml_variants:export_fp16",
                    settings={"compute_precision": "FLOAT16"},
                ),
                Variant(
                    "int8",
                    "harness.exporters.coreml_variants:export_int8",
                    settings={
                        "base": "the fp16-compute program",
                        "tool": "coremltools.optimize.coreml.linear_quantize_weights",
                        "mode": "linear_symmetric",
                        "dtype": "int8",
                        "granularity": "per_channel",
                        "weight_threshold": 0,
                    },
                ),
            ),
            absent={"bf16": "Core ML computes in fp16 or fp32 only"},
            max_batch=64,
        ),
    )
}
#: The native models formats are exported from, in export order: the PyTorch
#: process also writes the fp32 reference every artifact is held to.
SOURCES = ("pytorch", "keras")


def get_format(name: str) -> Format:
    """A format by name; ValueError naming the valid ones otherwise."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}: choose from {', '.join(FORMATS)}")
    return FORMATS[name]


def by_source(keys: Iterable[str]) -> dict[str, list[str]]:
    """Artifact keys grouped by the native model they are exported from, in export order.

    Within a source, fp32 files come before variants (a variant starts from its fp32 file).
    """
    wanted = [(key, *parse_key(key)) for key in dict.fromkeys(keys)]
    wanted.sort(key=lambda item: item[2] != FP32)
    return {
        source: [key for key, fmt, _ in wanted if fmt.source == source]
        for source in SOURCES
        if any(fmt.source == source for _, fmt, _ in wanted)
    }


def artifact_keys(formats: Iterable[str], precisions: Iterable[str]) -> list[str]:
    """The artifact keys that hold ``formats`` at ``precisions``: every fp32 file (the
    base each variant starts from and is compared with) and each variant a format has."""
    wanted = list(precisions)
    keys = []
    for name in formats:
        fmt = get_format(name)
        keys += [fmt.key(p) for p in fmt.precisions if p == FP32 or p in wanted]
    return keys


def distributions() -> tuple[str, ...]:
    """Every distribution whose version changes exported files or measured numbers."""
    names = [
        d
        for f in FORMATS.values()
        for d in (*f.distributions, *(d for v in f.variants for d in v.distributions))
    ]
    return tuple(dict.fromkeys([*names, *COMMON_DISTRIBUTIONS]))


def precision_rank(precision: Any) -> tuple[int, str]:
    """Sort key: fp32, fp16, bf16, int8, then anything else by name."""
    text = str(precision)
    return (PRECISIONS.index(text) if text in PRECISIONS else len(PRECISIONS), text)


def parse_precisions(text: str) -> list[str]:
    """``fp32,int8`` or ``all`` -> precision names; ValueError listing the valid ones."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if names == ["all"]:
        return list(PRECISIONS)
    unknown = [p for p in names if p not in PRECISIONS]
    if unknown or not names:
        raise ValueError(
            f"unknown precision {(unknown or [text])[0]!r}: choose from "
            f"{', '.join(PRECISIONS)} or all"
        )
    return list(dict.fromkeys(names))


def missing_for(keys: Iterable[str]) -> str | None:
    """Why the first of these artifact keys cannot be exported here (None: all can)."""
    for key in keys:
        fmt, precision = parse_key(key)
        reason = fmt.missing(precision)
        if reason:
            return reason
    return None


def parse_key(key: str) -> tuple[Format, str]:
    """An artifact key (``onnx``, ``onnx.int8``) -> (format, precision)."""
    name, _, precision = key.partition(".")
    fmt = get_format(name)
    precision = precision or FP32
    fmt._check(precision)
    return fmt, precision
