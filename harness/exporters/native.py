"""Native files: the PyTorch exported program (``.pt2``) and the ``.keras`` archive."""

from __future__ import annotations

from pathlib import Path

from harness.exporters.base import Artifact, describe_file, example_batch
from harness.formats import get_format


def export_pytorch(model, spec, out_dir: Path) -> Artifact:
    """``torch.export`` with a dynamic batch dimension, saved as ``model.pt2``."""
    return save_program(export_program(model, spec), spec, out_dir)


def export_program(module, spec):
    """``torch.export`` of ``module`` with the dynamic batch dimension every .pt2 file has."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=get_format("pytorch").max_batch)
    example = torch.from_numpy(example_batch(spec))
    return torch.export.export(module, (example,), dynamic_shapes=({0: batch},))


def save_program(
    program, spec, out_dir: Path, precision: str = "fp32", extra: dict | None = None
) -> Artifact:
    """Save an exported program as the ``precision`` file of the pytorch format."""
    import torch

    path = out_dir / get_format("pytorch").file(precision)
    torch.export.save(program, str(path))
    return describe_file("pytorch", spec, path, "x", "output", precision=precision, extra=extra)


def export_keras(model, spec, out_dir: Path) -> Artifact:
    """The Keras functional model saved as ``model.keras``."""
    path = out_dir / "model.keras"
    model.save(path)
    return describe_file("keras", spec, path, model.inputs[0].name, model.outputs[0].name, "NHWC")
