"""PyTorch: the exported program (``.pt2``) under ``torch.inference_mode``.

Modes: ``eager`` (default), ``compile`` (``torch.compile``, inductor), ``mps``
(Apple GPU, macOS only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from harness.backends.base import Artifact, Backend


class PyTorchBackend(Backend):
    name = "pytorch"
    artifact_format = "pytorch"
    layout = "NCHW"
    module = "torch"
    distribution = "torch"
    modes = ("eager", "compile", "mps")
    macos_modes: ClassVar[dict[str, str]] = {"mps": "the mps device"}

    @classmethod
    def runtime_has(cls, mode: str) -> tuple[bool, str]:
        import torch

        if not torch.backends.mps.is_available():
            return False, "torch reports no usable mps device"
        return True, ""

    def load(self, artifact: Artifact, threads: int, options: dict[str, Any] | None = None) -> None:
        import torch

        self._torch = torch
        self._device = torch.device("mps" if self.mode == "mps" else "cpu")
        module = torch.export.load(str(artifact.path)).module().to(self._device)
        if self.mode == "compile":
            module = torch.compile(module)
        self._module = module

    def prepare(self, batch: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(batch)).to(self._device)

    def run(self, prepared: Any) -> np.ndarray:
        with self._torch.inference_mode():
            out = self._module(prepared)
        # .cpu() waits for the device, so an mps call is timed to completion.
        return out.cpu().numpy()
