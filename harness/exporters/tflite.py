"""TFLite (fp32) from the Keras model via ``TFLiteConverter.from_keras_model``."""

from __future__ import annotations

from pathlib import Path

from harness.exporters.base import Artifact


def export_tflite(model, spec, out_dir: Path) -> Artifact:
    """Convert without optimisations, so weights and compute stay fp32."""
    import tensorflow as tf

    path = out_dir / "model.tflite"
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    path.write_bytes(converter.convert())
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    res = spec.resolution
    # The converter fixes the batch at 1; the interpreter resizes it at run time.
    return Artifact("tflite", path, inp["name"], ("batch", res, res, 3), "NHWC", out["name"])
