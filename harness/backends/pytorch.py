"""PyTorch: the exported program (``.pt2``) under ``torch.inference_mode``.

Modes: ``eager`` (default), ``compile`` (``torch.compile``, inductor), ``mps``
(Apple GPU, macOS only). The int8 file is a PT2E program of quantize/dequantize
ops around int8 weights: it computes in int8 only once inductor (with freezing)
lowers it to oneDNN kernels, so it is compiled in every mode, inside ``load``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import re
import shutil
import sys
import warnings
from typing import Any, ClassVar
from unittest import mock

import numpy as np

from harness.backends.base import Artifact, Backend
from harness.cpu import Native, native

log = logging.getLogger(__name__)

#: ``platform.machine()`` names of x86-64 CPUs, where oneDNN has its int8 x86 kernels.
X86_MACHINES = ("x86_64", "amd64", "x64")
#: Importing it registers the ``quantized_decomposed`` ops the int8 program is made of
#: and torchao's inductor passes that lower them (torchao's documented x86 flow).
X86_QUANTIZER = "torchao.quantization.pt2e.quantizer.x86_inductor_quantizer"
#: A call site of a oneDNN int8 convolution in inductor's generated wrapper code.
_QCONV_CALL = re.compile(r"torch\.ops\.onednn\.qconv\w*\.\w+\(")


def precision_support(
    precision: str, machine: str, has_torchao: bool, compiler: str | None, arithmetic: Native
) -> tuple[bool, str]:
    """Whether the ``precision`` file runs here, given this machine's facts (pure).

    int8 needs what lowers the PT2E program: an x86-64 CPU, torchao and a C++
    compiler for inductor; bf16 needs native bf16 arithmetic (``arithmetic``).
    """
    if precision == "int8":
        if machine.lower() not in X86_MACHINES:
            return False, (
                "X86InductorQuantizer's int8 program lowers to oneDNN x86 kernels; "
                f"this CPU is {machine}"
            )
        if not has_torchao:
            return False, "the int8 lowering needs torchao (pip install 'mobilebench[pytorch]')"
        if compiler is None:
            return False, (
                "inductor finds no C++ compiler to build the int8 program (install g++ or set CXX)"
            )
    if precision == "bf16" and not arithmetic.available:
        return False, arithmetic.describe()
    return True, ""


def mode_support(mode: str, precision: str, macos: str) -> tuple[bool, str]:
    """Whether ``mode`` runs the ``precision`` file, on macOS version ``macos`` (pure)."""
    if mode == "compile" and precision == "int8":
        return False, "the int8 file is always lowered by torch.compile: the eager row measures it"
    if mode != "mps":
        return True, ""
    if precision == "int8":
        return False, "the int8 program lowers to oneDNN CPU kernels only; mps has no int8 path"
    if precision == "bf16" and _major(macos) < 14:
        return False, f"torch runs bf16 on mps from macOS 14 (this is macOS {macos or '?'})"
    return True, ""


def inductor_compiler() -> str | None:
    """The C++ compiler inductor would use (its ``cpp.cxx`` default), if it is on PATH.

    Mirrors ``torch._inductor.config.cpp.cxx`` without importing torch: the
    runner asks before it starts a cell.
    """
    default = {"darwin": "clang++", "win32": "cl"}.get(sys.platform, "g++")
    return shutil.which(os.environ.get("CXX") or default)


def int8_note(qconvs: int, convs: int) -> str:
    """What the compiled int8 program computes its ``convs`` convolutions in."""
    if convs and qconvs >= convs:
        return "int8 convs lowered by inductor to oneDNN (qconv)"
    if qconvs:
        return (
            f"{qconvs} of {convs} convs lowered to oneDNN int8 (qconv); the rest dequantize to fp32"
        )
    return "no conv lowered to oneDNN int8 (qconv): weights dequantized, computed in fp32"


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

    @classmethod
    def precision_available(cls, precision: str) -> tuple[bool, str]:
        ok, reason = super().precision_available(precision)
        if not ok:
            return ok, reason
        return precision_support(
            precision,
            platform.machine(),
            importlib.util.find_spec("torchao") is not None,
            inductor_compiler(),
            native(precision),
        )

    @classmethod
    def mode_precision_available(cls, mode: str, precision: str) -> tuple[bool, str]:
        """Whether ``mode`` can run the ``precision`` file (see :func:`mode_support`)."""
        return mode_support(mode, precision, platform.mac_ver()[0])

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

        ok, reason = self.mode_precision_available(self.mode, artifact.precision)
        if not ok:
            raise RuntimeError(reason)
        self._torch = torch
        self._device = torch.device("mps" if self.mode == "mps" else "cpu")
        self._note = None
        if artifact.precision == "int8":
            self._module = self._lower_int8(artifact)
            return
        module = torch.export.load(str(artifact.path)).module().to(self._device)
        if self.mode == "compile":
            module = torch.compile(module)
        self._module = module

    @property
    def program(self) -> Any:
        """The loaded module the backend calls (a GraphModule in eager mode); for profilers."""
        return self._module

    def _lower_int8(self, artifact: Artifact) -> Any:
        """The PT2E program compiled by inductor with freezing, now, at batch 1.

        Freezing (process-wide, as torchao documents; a cell is one process) lets
        inductor fold the int8 weights and fuse dequantize-conv-quantize into oneDNN
        int8 convolutions. ``dynamic=False``: one static graph per batch size, so a
        cell at another batch compiles again on its first call (a dynamic batch
        compiled 4x slower here and still recompiled at batch 1).
        """
        import torch
        import torch._inductor.config

        from harness.exporters.pytorch_variants import conv_weights, import_torchao

        import_torchao(X86_QUANTIZER)
        torch._inductor.config.freezing = True
        program = torch.export.load(str(artifact.path))
        module = torch.compile(program.module(), dynamic=False)
        code = _generated_code(module, torch.zeros(1, *artifact.input_shape[1:]))
        qconvs = sum(len(_QCONV_CALL.findall(text)) for text in code)
        self._note = int8_note(qconvs, len(conv_weights(program)))
        return module

    def compute_note(self) -> str | None:
        return self._note

    def prepare(self, batch: np.ndarray) -> Any:
        return self._torch.from_numpy(np.ascontiguousarray(batch)).to(self._device)

    def run(self, prepared: Any) -> np.ndarray:
        with self._torch.inference_mode():
            out = self._module(prepared)
        # .cpu() waits for the device, so an mps call is timed to completion.
        return out.cpu().numpy()


def _generated_code(module: Any, example: Any) -> list[str]:
    """Call a compiled module once (it compiles) and return inductor's generated code."""
    import torch
    from torch._inductor.graph import GraphLowering

    code: list[str] = []
    with (
        mock.patch.object(GraphLowering, "save_output_code", code.append),
        torch.inference_mode(),
        warnings.catch_warnings(),
    ):
        # inductor's int8 weight lowering warns about its own torch.tensor(tensor) call.
        warnings.filterwarnings("ignore", "To copy construct from a tensor", UserWarning)
        module(example)
    return code


def _major(version: str) -> int:
    head = version.split(".")[0]
    return int(head) if head.isdigit() else 0
