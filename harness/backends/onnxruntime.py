"""ONNX Runtime: CPU execution provider with full graph optimisation.

Modes: ``cpu`` (default) and ``coreml`` (the CoreML execution provider, macOS).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from harness.backends.base import Artifact, Backend

_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "coreml": ["CoreMLExecutionProvider", "CPUExecutionProvider"],
}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    artifact_format = "onnx"
    layout = "NCHW"
    modes = ("cpu", "coreml")
    macos_modes: ClassVar[dict[str, str]] = {"coreml": "the CoreML execution provider"}

    @classmethod
    def runtime_has(cls, mode: str) -> tuple[bool, str]:
        import onnxruntime as ort

        if "CoreMLExecutionProvider" not in ort.get_available_providers():
            return False, "this onnxruntime build has no CoreMLExecutionProvider"
        return True, ""

    def load(self, artifact: Artifact) -> None:
        import onnxruntime as ort

        self._session = ort.InferenceSession(
            str(artifact.path),
            sess_options=session_options(self.threads),
            providers=_PROVIDERS[self.mode],
        )
        self._input = artifact.input_name

    def run(self, prepared: Any) -> np.ndarray:
        return self._session.run(None, {self._input: prepared})[0]


def session_options(threads: int):
    """Full graph optimisation, ``threads`` intra-op threads, sequential execution."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return so
