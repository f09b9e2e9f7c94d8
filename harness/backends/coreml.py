"""Core ML: ``MLModel.predict`` on the ``.mlpackage`` (macOS only).

Modes are Core ML's compute units. On other platforms the backend reports
itself unavailable: coremltools converts models there but cannot run them.
Every precision's package (fp32, fp16, int8) takes and returns float32.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from harness.backends.base import Artifact, Backend, module_available
from harness.cpu import Native, native
from harness.formats import FP32

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
        self._artifact = artifact

    def run(self, prepared: Any) -> np.ndarray:
        inputs = {self._artifact.input_name: prepared}
        return np.asarray(self._model.predict(inputs)[self._artifact.output_name])

    def compute_note(self) -> str | None:
        """What the loaded variant computes in, read from its program (None for fp32): the
        manifest's record of it, made at export, or the saved program itself."""
        if self._artifact.precision == FP32:
            return None
        program = self._artifact.extra.get("mil_precision")
        if program is None:
            from harness.exporters.coreml_variants import mil_precision

            program = mil_precision(self._artifact.path)
        return precision_note(program, self.mode, native("fp16"))


def precision_note(program: dict, mode: str, fp16: Native) -> str | None:
    """One sentence on what Core ML computes a program in (``program``: its ``mil_precision``).

    Weight-only compression: "All computation at runtime uses float precision; the
    precision of the intermediate tensors and the compute precision of the ops are not
    altered" (https://apple.github.io/coremltools/source/coremltools.optimize.coreml.
    post_training_quantization.html); the weights are decompressed at load or, from
    iOS17/macOS14, possibly at prediction time (https://apple.github.io/coremltools/
    docs-guides/source/performance-impact.html). An fp16-typed program "may run with
    float 32 precision as well, depending on the availability of the float 16 version of
    the op"; on the CPU "a few selected ops, such as convolution, are also available with
    float 16 precision" (https://apple.github.io/coremltools/docs-guides/source/
    typed-execution.html).
    """
    compute = sorted({d for counts in program["compute"].values() for d in counts})
    computed = "/".join(compute)
    notes = []
    if program["dequantize_ops"]:
        stored = sorted(
            {d for counts in program["weights"].values() for d in counts} - set(compute)
        )
        count = sum(program["dequantize_ops"].values())
        ops = ", ".join(program["dequantize_ops"])
        notes.append(
            f"{count} {'/'.join(stored)} weight tensors ({ops}) are decompressed to "
            f"{computed} for compute; convolutions run in {computed}, not {'/'.join(stored)}"
        )
    if compute == ["fp16"] and mode == "cpu_only":
        if fp16.available:
            notes.append(
                f"on this CPU ({fp16.describe()}) Core ML has fp16 kernels for selected ops "
                "such as convolution; others may run in fp32"
            )
        else:
            notes.append(f"{fp16.describe()}: Core ML may run the fp16 ops in fp32")
    return "; ".join(notes) or None


def platform_available(platform: str) -> tuple[bool, str]:
    """Core ML runs on macOS with coremltools installed; nowhere else."""
    if platform != "darwin":
        return False, NOT_MACOS
    return module_available(CoreMLBackend.module)
