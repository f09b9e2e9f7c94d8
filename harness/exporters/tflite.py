"""TFLite from the Keras model via ``TFLiteConverter.from_keras_model``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.exporters.base import Artifact, describe_file
from harness.formats import get_format


def export_tflite(model, spec, out_dir: Path) -> Artifact:
    """Convert without optimisations, so weights and compute stay fp32."""
    return convert(model, spec, out_dir)


def convert(
    model,
    spec,
    out_dir: Path,
    precision: str = "fp32",
    configure: Callable[[object], None] | None = None,
    extra: dict | None = None,
) -> Artifact:
    """Convert the Keras model, with ``configure``'s converter settings, to the
    ``precision`` file, and describe it."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    path = out_dir / get_format("tflite").file(precision)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if configure:
        configure(converter)
    path.write_bytes(converter.convert())
    interpreter = Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    # The converter fixes the batch at 1; the interpreter resizes it at run time.
    return describe_file("tflite", spec, path, inp["name"], out["name"], "NHWC", precision, extra)
