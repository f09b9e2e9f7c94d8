"""TFLite int8 and fp16 files, made by the TFLite converter's post-training quantization.

Both start from the same Keras model as ``model.tflite`` and keep float32 input
and output, so every precision is fed the same float batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from harness.exporters.base import Artifact
from harness.exporters.tflite import convert


def export_int8(model, spec, out_dir: Path, calibration: np.ndarray) -> Artifact:
    """Full-integer post-training quantization (``model.int8.tflite``).

    Weights and activations are int8 (biases int32), calibrated on ``calibration``
    fed one image at a time as the representative dataset; only int8 builtin ops
    are allowed. The input and output stay float32 (the converter adds a QUANTIZE
    op after the input and a DEQUANTIZE op before the output), so this file is fed
    the same float batch as every other precision.
    """
    import tensorflow as tf

    def configure(converter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_dataset(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

    extra = {"calibration_images": len(calibration)}
    with warnings.catch_warnings():
        # Asks for (mean, std) of an int8 *input*; ours stays float32, so none apply.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        return convert(model, spec, out_dir, "int8", configure, extra)


def export_fp16(model, spec, out_dir: Path, calibration: np.ndarray) -> Artifact:
    """Post-training float16 quantization (``model.fp16.tflite``): weights stored as
    float16, each behind a DEQUANTIZE op; activations, input and output stay float32.
    ``calibration`` is unused.
    """
    import tensorflow as tf

    def configure(converter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]

    return convert(model, spec, out_dir, "fp16", configure)


def _representative_dataset(calibration: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's calibration feed: each NCHW image as a float32 NHWC batch of one."""

    def images() -> Iterator[list[np.ndarray]]:
        for image in calibration:
            yield [np.ascontiguousarray(image.transpose(1, 2, 0)[None], dtype=np.float32)]

    return images
