"""ONNX int8 and fp16 files, made from ``model.onnx`` by ONNX Runtime's own tools.

Both keep the fp32 file's float32 input and output and its dynamic batch
dimension, so every precision is fed the same float batch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.exporters.base import Artifact, describe_file
from harness.exporters.onnx import INPUT_NAME, OUTPUT_NAME
from harness.formats import FORMATS

_ONNX = FORMATS["onnx"]


def export_int8(model, spec, out_dir: Path, calibration: np.ndarray) -> Artifact:
    """Static QDQ quantization (``model.int8.onnx``), as ONNX Runtime documents it.

    ``quant_pre_process`` (symbolic shape inference and optimisation) then
    ``quantize_static``: 8-bit activations (per-tensor, MinMax-calibrated on
    ``calibration``, one image per batch; unsigned on x86-64, signed on ARM, as
    ONNX Runtime recommends, see ``formats.ORT_ACTIVATIONS``) and int8 per-channel
    weights, stored as QuantizeLinear/DequantizeLinear pairs around float ops.
    ``model`` is unused.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = out_dir / _ONNX.file("int8")
    with tempfile.TemporaryDirectory(prefix="onnx-int8-", dir=out_dir) as tmp:
        prepared = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(out_dir / _ONNX.file(), prepared)
        quantize_static(
            prepared,
            path,
            _calibration_reader(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=(
                QuantType.QUInt8
                if _ONNX.variant("int8").settings["activation_type"] == "uint8"
                else QuantType.QInt8
            ),
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            use_external_data_format=False,
        )
    return _artifact(spec, path, "int8", {"calibration_images": len(calibration)})


def export_fp16(model, spec, out_dir: Path, calibration: np.ndarray) -> Artifact:
    """``convert_float_to_float16(keep_io_types=True)`` (``model.fp16.onnx``): fp16
    weights and ops, with Cast nodes keeping the input and output float32.
    ``model`` and ``calibration`` are unused.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    path = out_dir / _ONNX.file("fp16")
    fp16 = convert_float_to_float16(onnx.load(out_dir / _ONNX.file()), keep_io_types=True)
    onnx.save(fp16, path)
    return _artifact(spec, path, "fp16")


def _artifact(spec, path: Path, precision: str, extra: dict | None = None) -> Artifact:
    return describe_file(
        "onnx", spec, path, INPUT_NAME, OUTPUT_NAME, precision=precision, extra=extra
    )


def _calibration_reader(calibration: np.ndarray):
    """A ``CalibrationDataReader`` feeding each NCHW image as a float32 batch of one."""
    from onnxruntime.quantization import CalibrationDataReader

    class Images(CalibrationDataReader):
        def __init__(self) -> None:
            self._images: Iterator[np.ndarray] = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self._images, None)
            if image is None:
                return None
            return {INPUT_NAME: np.ascontiguousarray(image[None], dtype=np.float32)}

    return Images()
