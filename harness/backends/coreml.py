"""Core ML: ``MLModel.predict`` on the ``.mlpackage`` (macOS only).

Modes are Core ML's compute units. On other platforms the backend reports
itself unavailable: coremltools converts models there but cannot run them.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from harness.backends.base import Artifact, Backend, module_available

#: Mode name -> coremltools ComputeUnit member.
COMPUTE_UNITS = {
    "cpu_only": "CPU_ONLY",
    "cpu_and_gpu": "CPU_AND_GPU",
    "cpu_and_ne": "CPU_AND_NE",
    "all": "ALL",
}
NOT_MACOS = "Core ML runs only on macOS (coremltools converts here but cannot predict)"


class CoreMLBackend(Backend):
    name = "coreml"
    artifact_format = "coreml"
    layout = "NCHW"
    modes = tuple(COMPUTE_UNITS)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return platform_available(sys.platform)

    def load(self, artifact: Artifact) -> None:
        import coremltools as ct

        units = getattr(ct.ComputeUnit, COMPUTE_UNITS[self.mode])
        self._model = ct.models.MLModel(str(artifact.path), compute_units=units)
        self._input = artifact.input_name
        self._output = artifact.output_name

    def run(self, prepared: Any) -> np.ndarray:
        return np.asarray(self._model.predict({self._input: prepared})[self._output])


def platform_available(platform: str) -> tuple[bool, str]:
    """Core ML runs on macOS with coremltools installed; nowhere else."""
    if platform != "darwin":
        return False, NOT_MACOS
    return module_available(CoreMLBackend.module)
