"""ONNX from the PyTorch model (NCHW, dynamic batch) via ``torch.onnx.export``."""

from __future__ import annotations

from pathlib import Path

from harness.exporters.base import Artifact, describe_file, example_batch
from harness.formats import get_format

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(model, spec, out_dir: Path) -> Artifact:
    """Export with the dynamo exporter; weights are embedded in the one file."""
    import torch

    path = out_dir / "model.onnx"
    batch = torch.export.Dim("batch", min=1, max=get_format("onnx").max_batch)
    program = torch.onnx.export(
        model,
        (torch.from_numpy(example_batch(spec)),),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=OPSET,
        dynamic_shapes=({0: batch},),
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    program.save(str(path), external_data=False)
    return describe_file("onnx", spec, path, INPUT_NAME, OUTPUT_NAME)
