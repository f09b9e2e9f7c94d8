"""What every exporter returns (an :class:`Artifact`) and the example input they trace with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.spec import ModelSpec
from harness.weights import sample_input


def example_batch(spec: ModelSpec, batch: int = 2) -> np.ndarray:
    """A seeded NCHW float32 batch for tracing (batch > 1 keeps the batch dim dynamic)."""
    return sample_input(spec, batch=batch, seed=1234)


@dataclass(frozen=True)
class Artifact:
    """One exported model file, as an export folder's manifest.json describes it."""

    format: str
    path: Path
    input_name: str
    input_shape: tuple[int | str, ...]
    layout: str  # NCHW | NHWC
    output_name: str
    sha256: str = ""
    bytes: int = 0
    precision: str = "fp32"
    extra: dict[str, Any] = field(default_factory=dict)


def describe_file(
    fmt: str,
    spec: ModelSpec,
    path: Path,
    input_name: str,
    output_name: str,
    layout: str = "NCHW",
    precision: str = "fp32",
    extra: dict[str, Any] | None = None,
) -> Artifact:
    """The :class:`Artifact` of an exported file of ``spec`` with a dynamic batch dimension."""
    res = spec.resolution
    shape = ("batch", 3, res, res) if layout == "NCHW" else ("batch", res, res, 3)
    return Artifact(
        fmt, path, input_name, shape, layout, output_name, precision=precision, extra=extra or {}
    )
