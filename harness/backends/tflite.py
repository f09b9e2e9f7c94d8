"""TFLite: the ai-edge-litert interpreter with XNNPACK (falls back to ``tf.lite``).

The interpreter's input is resized to the batch on first use. Modes: ``xnnpack``
(default delegate) and ``reference`` (built-in kernels, no delegate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.backends.base import Artifact, Backend, module_available


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    return Interpreter, OpResolverType


class TFLiteBackend(Backend):
    name = "tflite"
    artifact_format = "tflite"
    layout = "NHWC"
    module = "ai_edge_litert"
    distribution = "ai-edge-litert"
    modes = ("xnnpack", "reference")

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, reason = module_available("ai_edge_litert")
        if ok or module_available("tensorflow")[0]:
            return True, ""
        return False, f"{reason}, and no tensorflow to fall back to"

    def load(self, artifact: Artifact, threads: int, options: dict[str, Any] | None = None) -> None:
        interpreter_cls, resolver = _interpreter_class()
        resolver_type = (
            resolver.AUTO if self.mode == "xnnpack" else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        self._interpreter = interpreter_cls(
            model_path=str(artifact.path),
            num_threads=threads,
            experimental_op_resolver_type=resolver_type,
        )
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = int(self._interpreter.get_input_details()[0]["shape"][0])

    def prepare(self, batch: np.ndarray) -> Any:
        prepared = super().prepare(batch)
        if prepared.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input, list(prepared.shape))
            self._interpreter.allocate_tensors()
            self._batch = prepared.shape[0]
        return prepared

    def run(self, prepared: Any) -> np.ndarray:
        self._interpreter.set_tensor(self._input, prepared)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)
