"""PyTorch: the exported program (``.pt2``) under ``torch.inference_mode``.

Modes: ``eager`` (default), ``compile`` (``torch.compile``, inductor), ``mps``
(Apple GPU, macOS only).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from harness.backends.base import Artifact, Backend

log = logging.getLogger(__name__)


class PyTorchBackend(Backend):
    name = "pytorch"
    artifact_format = "pytorch"
    layout = "NCHW"
    modes = ("eager", "compile", "mps")
    macos_modes: ClassVar[dict[str, str]] = {"mps": "the mps device"}

    @classmethod
    def runtime_has(cls, mode: str) -> tuple[bool, str]:
        import torch

        if not torch.backends.mps.is_available():
            return False, "torch reports no usable mps device"
        return True, ""

    def pin_threads(self) -> None:
        """torch's intra-op pool to ``threads``, inter-op to 1 (process-wide)."""
        import torch

        torch.set_num_threads(self.threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError as exc:  # settable only before the first parallel work
            log.debug("torch inter-op threads already fixed: %s", exc)

    def load(self, artifact: Artifact) -> None:
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
