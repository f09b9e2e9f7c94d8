"""Native files: the PyTorch exported program (``.pt2``) and the ``.keras`` archive."""

from __future__ import annotations

from pathlib import Path

from harness.exporters.base import Artifact, example_batch
from harness.formats import get_format


def export_pytorch(model, spec, out_dir: Path) -> Artifact:
    """``torch.export`` with a dynamic batch dimension, saved as ``model.pt2``."""
    import torch

    path = out_dir / "model.pt2"
    batch = torch.export.Dim("batch", min=1, max=get_format("pytorch").max_batch)
    program = torch.export.export(
        model, (torch.from_numpy(example_batch(spec)),), dynamic_shapes=({0: batch},)
    )
    torch.export.save(program, str(path))
    res = spec.resolution
    return Artifact("pytorch", path, "x", ("batch", 3, res, res), "NCHW", "output")


def export_keras(model, spec, out_dir: Path) -> Artifact:
    """The Keras functional model saved as ``model.keras``."""
    path = out_dir / "model.keras"
    model.save(path)
    res = spec.resolution
    return Artifact(
        "keras", path, model.inputs[0].name, ("batch", res, res, 3), "NHWC", model.outputs[0].name
    )
