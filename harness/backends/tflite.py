"""TFLite: the ai-edge-litert interpreter with XNNPACK.

The interpreter's input is resized to the batch on first use. Modes: ``xnnpack``
(default delegate) and ``reference`` (built-in kernels, no delegate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.backends.base import Artifact, Backend


class TFLiteBackend(Backend):
    name = "tflite"
    artifact_format = "tflite"
    layout = "NHWC"
    modes = ("xnnpack", "reference")

    def load(self, artifact: Artifact) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = (
            OpResolverType.AUTO
            if self.mode == "xnnpack"
            else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        self._interpreter = Interpreter(
            model_path=str(artifact.path),
            num_threads=self.threads,
            experimental_op_resolver_type=resolver,
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
