"""ONNX Runtime: CPU execution provider with full graph optimisation.

Modes: ``cpu`` (default) and ``coreml`` (the CoreML execution provider, macOS).
Every precision's file loads the same way. For a reduced-precision file,
:meth:`~OnnxRuntimeBackend.compute_note` reads in the graph ORT optimises it into
which kernels really run (int8 convolutions fused into integer kernels or left in
float behind DequantizeLinear; fp16 convolutions computed in fp32 behind Casts).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harness.backends.base import Artifact, Backend
from harness.formats import FP32

_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "coreml": ["CoreMLExecutionProvider", "CPUExecutionProvider"],
}
#: Convolutions that compute on integers; every other ``*Conv`` op computes in float.
INTEGER_CONVS = ("QLinearConv", "ConvInteger")


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
        self._artifact = artifact
        self._note: str | None = None

    def run(self, prepared: Any) -> np.ndarray:
        return self._session.run(None, {self._input: prepared})[0]

    def compute_note(self) -> str | None:
        """What the convolutions of a reduced-precision file run as; None for fp32.

        Read from the graph ORT optimises the file into, saved by a second CPU session
        with the same options (made once, then freed): saving it from the measured
        session would add the write to ``load_ms``. Call it after the memory readings.
        """
        precision = self._artifact.precision
        if precision == FP32:
            return None
        if self._note is None:
            if self.mode != "cpu":
                self._note = (
                    f"{precision} file: the CoreML execution provider compiles the graph "
                    "itself; its compute precision is not inspected"
                )
            else:
                graph = optimized_graph(self._artifact.path, self.threads)
                self._note = describe(precision, conv_kernels(graph), casts(graph))
        return self._note


def session_options(threads: int):
    """Full graph optimisation, ``threads`` intra-op threads, sequential execution."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return so


def optimized_graph(path: Path, threads: int):
    """The graph a CPU session with :func:`session_options` runs the file at ``path`` as."""
    return session_with_graph(str(path), threads)[1]


def session_with_graph(model: str | bytes, threads: int, **settings: Any) -> tuple[Any, Any]:
    """A CPU session with :func:`session_options` (plus ``settings``, e.g.
    ``enable_profiling=True``) for ``model`` (a path or serialized bytes), and the
    optimised graph it really runs."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="mobilebench-ort-") as folder:
        options = session_options(threads)
        for name, value in settings.items():
            setattr(options, name, value)
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        options.log_severity_level = 3  # not the warning that an NCHWc graph is CPU-specific
        session = ort.InferenceSession(model, sess_options=options, providers=_PROVIDERS["cpu"])
        return session, onnx.load(options.optimized_model_filepath).graph


def conv_kernels(graph) -> list[tuple[str, str]]:
    """(precision, op type) of each convolution in an (optimised) ONNX graph.

    Integer kernels (QLinearConv, ConvInteger, in any domain) are int8; a float
    convolution (Conv, FusedConv, NCHWc Conv...) is fp16 or fp32 by its weight's
    element type, followed through DequantizeLinear (its scale's type) and Cast.
    """
    from onnx import TensorProto

    types = _element_types(graph)
    producers = {out: node for node in graph.node for out in node.output}
    found = []
    for node in graph.node:
        if node.op_type in INTEGER_CONVS:
            found.append(("int8", node.op_type))
        elif node.op_type.endswith("Conv"):
            weight = _element_type(node.input[1], types, producers)
            found.append(("fp16" if weight == TensorProto.FLOAT16 else "fp32", node.op_type))
    return found


def casts(graph) -> int:
    """The Cast nodes left in a graph."""
    return sum(node.op_type == "Cast" for node in graph.node)


def describe(precision: str, kernels: list[tuple[str, str]], cast_nodes: int) -> str:
    """One sentence on what a ``precision`` file's convolutions run as."""
    total = len(kernels)
    native = sum(p == precision for p, _ in kernels)
    fp32 = sum(p == "fp32" for p, _ in kernels)
    if precision == "int8":
        ops = ", ".join(sorted({op for p, op in kernels if p == "int8"})) or "none"
        note = f"int8: {native} of {total} convs run as integer kernels ({ops})"
        return f"{note}; the other {fp32} run in fp32 on dequantized inputs" if fp32 else note
    if not fp32:
        return f"{precision}: {native} of {total} convs run in {precision}"
    note = (
        f"{precision} file: ORT's CPU provider runs {fp32} of {total} convs in fp32 (it "
        f"inserted Casts and upcast the {precision} weights at load; {cast_nodes} Casts remain)"
    )
    return f"{note}; the other {native} run in {precision}" if native else note


def _element_types(graph) -> dict[str, int]:
    types = {t.name: t.data_type for t in graph.initializer}
    for info in (*graph.value_info, *graph.input, *graph.output):
        if info.type.tensor_type.elem_type:
            types.setdefault(info.name, info.type.tensor_type.elem_type)
    return types


def _element_type(name: str, types: dict[str, int], producers: dict[str, Any]) -> int:
    """A tensor's element type, followed back through DequantizeLinear and Cast."""
    from onnx import TensorProto

    if name in types:
        return types[name]
    node = producers.get(name)
    if node is not None and node.op_type == "DequantizeLinear":
        return _element_type(node.input[1], types, producers)
    if node is not None and node.op_type == "Cast":
        return next(a.i for a in node.attribute if a.name == "to")
    return TensorProto.FLOAT
