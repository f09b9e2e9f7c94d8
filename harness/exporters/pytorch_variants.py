"""PyTorch precision variants: PT2E int8 (torchao, x86 inductor) and bf16, as ``.pt2`` files.

Both are ``torch.export`` programs with the fp32 file's dynamic batch dimension
and float32 input and output, so every precision is fed the same way. The int8
program holds quantize/dequantize ops around int8 weights; it only runs in int8
once inductor lowers it (:class:`harness.backends.pytorch.PyTorchBackend` does).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from harness.exporters.base import Artifact
from harness.exporters.native import export_program, save_program
from harness.spec import ModelSpec

log = logging.getLogger(__name__)

#: Calibration images per forward pass. The observers accumulate over passes, and a
#: HistogramObserver update costs about the same for 8 images as for 32.
CALIBRATION_BATCH = 32
#: Loggers that warn while torchao imports on a CPU-only torch: its CUDA kernels
#: (``_C_mxfp8``, ``_C_cutlass_*``) fail to load, and torch's pytree deprecates how
#: torchao registers an enum. Neither concerns the PT2E flow.
_TORCHAO_IMPORT_LOGGERS = ("torchao", "torch.utils._pytree")


def export_int8(model, spec: ModelSpec, out_dir: Path, calibration: np.ndarray) -> Artifact:
    """PT2E static int8 (torchao X86InductorQuantizer, default config), as ``model.int8.pt2``."""
    pt2e = import_torchao("torchao.quantization.pt2e.quantize_pt2e")
    x86 = import_torchao("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")
    quantizer = x86.X86InductorQuantizer().set_global(
        x86.get_default_x86_inductor_quantization_config()
    )
    prepared = pt2e.prepare_pt2e(export_program(model, spec).module(), quantizer)
    with torch.no_grad():
        for start in range(0, len(calibration), CALIBRATION_BATCH):
            prepared(torch.from_numpy(calibration[start : start + CALIBRATION_BATCH]))
    program = export_program(_without_unused_tensors(pt2e.convert_pt2e(prepared)), spec)
    convs = conv_weights(program)
    return save_program(
        program,
        spec,
        out_dir,
        "int8",
        {
            "convs": len(convs),
            "int8_weight_convs": sum(w == torch.int8 for w in convs),
            "calibration_images": len(calibration),
        },
    )


def export_bf16(model, spec: ModelSpec, out_dir: Path, calibration: np.ndarray) -> Artifact:
    """bfloat16 weights and compute behind float32 input/output, as ``model.bf16.pt2``."""
    return save_program(export_program(Bf16(model), spec), spec, out_dir, "bf16", {})


class Bf16(torch.nn.Module):
    """A bfloat16 copy of ``model`` (the original is left float32) with float32 edges."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(torch.bfloat16)).to(torch.float32)


def _without_unused_tensors(module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Drop the parameters and buffers no graph node reads.

    ``convert_pt2e`` folds batch norm into new weights and quantizes them into
    int8 constants, but the float32 originals stay attributes of the module;
    ``torch.export`` would save them, unused, in the int8 file.
    """
    read = {node.target for node in module.graph.nodes if node.op == "get_attr"}
    tensors = [*module.named_parameters(), *module.named_buffers()]
    for name in [name for name, _ in tensors if name not in read]:
        owner, _, attr = name.rpartition(".")
        delattr(module.get_submodule(owner), attr)
    return module


def conv_weights(program) -> list[torch.dtype | None]:
    """The dtype of the tensor each convolution's weight is computed from.

    An int8 weight reaches its conv through ``dequantize_per_channel``; the dtype
    is that of the stored tensor, found through the graph's placeholders.
    """
    tensors = {**program.state_dict, **program.constants}
    names = {spec.arg.name: spec.target for spec in program.graph_signature.input_specs}
    dtypes = []
    for node in program.graph.nodes:
        if node.op == "call_function" and node.target == torch.ops.aten.conv2d.default:
            weight = node.args[1]
            while weight.op == "call_function":  # through dequantize (and casts)
                weight = weight.args[0]
            stored = tensors.get(names.get(weight.name))
            dtypes.append(None if stored is None else stored.dtype)
    return dtypes


def import_torchao(module: str):
    """Import a torchao module, its CPU-only-build import warnings logged at debug level.

    Only WARNING records of the named loggers, during the import, are demoted;
    errors pass unchanged.
    """
    with _demoted_warnings(_TORCHAO_IMPORT_LOGGERS):
        return importlib.import_module(module)


@contextlib.contextmanager
def _demoted_warnings(names: tuple[str, ...]) -> Iterator[None]:
    demote = _Demote()
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(demote)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(demote)


class _Demote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        log.debug("%s (import): %s", record.name, record.getMessage())
        return False
