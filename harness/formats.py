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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Precisions a format can carry; fp32 is every format's base artifact.
FP32 = "fp32"
#: Distributions that are not a format's but still change numbers or files.
COMMON_DISTRIBUTIONS = ("numpy",)


@dataclass(frozen=True)
class Format:
    """One exported model format.

    ``source`` is the native model the exporter starts from (``pytorch`` or
    ``keras``); formats with the same source are exported in one process from
    one built model. ``modules`` are what exporting needs (the reference and
    the source framework included); ``runtime_module``/``runtime_distribution``
    are what runs the file. ``precisions`` lists the variants an export folder
    can hold; a variant's file and manifest key carry the precision's name.
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
    precisions: tuple[str, ...] = (FP32,)
    #: The largest batch the exported file accepts (its dynamic batch dimension's bound).
    max_batch: int = 1024

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

    def missing(self) -> str | None:
        """Why this format cannot be exported here (one line), or None when it can."""
        absent = [m for m in self.modules if importlib.util.find_spec(m) is None]
        if not absent:
            return None
        return (
            f"exporting {self.name} needs {', '.join(absent)} "
            f"(pip install 'mobilebench[{self.extra}]')"
        )

    def export_function(self) -> Callable:
        """The exporter, imported now: ``fn(model, spec, out_dir) -> Artifact``."""
        module, _, attr = self.exporter.partition(":")
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


def by_source(names: Iterable[str]) -> dict[str, list[str]]:
    """Format names grouped by the native model they are exported from, in export order."""
    wanted = [get_format(n) for n in dict.fromkeys(names)]
    return {
        source: [f.name for f in wanted if f.source == source]
        for source in SOURCES
        if any(f.source == source for f in wanted)
    }


def distributions() -> tuple[str, ...]:
    """Every distribution whose version changes exported files or measured numbers."""
    names = [d for f in FORMATS.values() for d in f.distributions]
    return tuple(dict.fromkeys([*names, *COMMON_DISTRIBUTIONS]))
