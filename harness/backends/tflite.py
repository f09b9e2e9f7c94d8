"""TFLite: the ai-edge-litert interpreter with XNNPACK.

The interpreter's input is resized to the batch on first use. Modes: ``xnnpack``
(default delegate) and ``reference`` (built-in kernels, no delegate). Every
precision's file takes a float32 input; :meth:`TFLiteBackend.compute_note` says
what a reduced-precision file really computes in, read from the loaded graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.backends.base import Artifact, Backend
from harness.cpu import native

#: Builtin ops that hold a model's convolutions (input 0: activations, input 1: weights).
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
#: The model metadata that tells XNNPACK which reduced precision a model tolerates.
REDUCED_PRECISION_KEY = "reduced_precision_support"


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
        self._path = artifact.path
        self._precision = artifact.precision
        self._interpreter = Interpreter(
            model_path=str(artifact.path),
            num_threads=self.threads,
            experimental_op_resolver_type=resolver,
        )
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = int(self._interpreter.get_input_details()[0]["shape"][0])

    def compute_note(self) -> str | None:
        """int8: how many convolutions run on int8 tensors, and on which kernels;
        fp16: whether the fp16 weights are computed in fp16 or upcast to fp32."""
        if self._precision == "int8":
            return self._int8_note()
        if self._precision == "fp16":
            return self._fp16_note()
        return None

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

    def _graph(self) -> tuple[list[dict], dict[int, np.dtype]]:
        """The loaded graph's ops and each tensor's dtype by index."""
        dtypes = {t["index"]: t["dtype"] for t in self._interpreter.get_tensor_details()}
        return self._interpreter._get_ops_details(), dtypes

    def _delegated(self, ops: list[dict]) -> bool:
        """Whether XNNPACK took (part of) the graph: it replaces what it runs by a DELEGATE op."""
        return self.mode == "xnnpack" and any(op["op_name"] == "DELEGATE" for op in ops)

    def _int8_note(self) -> str:
        ops, dtypes = self._graph()
        convs = [op for op in ops if op["op_name"] in CONV_OPS]
        int8 = sum(dtypes[op["inputs"][0]] == np.int8 for op in convs)
        kernels = (
            "XNNPACK's QS8 kernels"
            if self._delegated(ops)
            else "TFLite's built-in int8 kernels (no XNNPACK)"
        )
        return (
            f"{int8} of {len(convs)} convolutions compute in int8 on {kernels}; "
            "the float32 input is quantized and the output dequantized at the edges"
        )

    def _fp16_note(self) -> str:
        # The float16 weights are upcast to float32 before the first inference on CPU
        # (https://ai.google.dev/edge/lite/models/post_training_float16_quant). XNNPACK
        # computes in fp16 only on hardware with native fp16 arithmetic (the doc names
        # ARMv8.2 FP16) and when the model's reduced_precision_support metadata allows
        # fp16 inference with fp16 accumulation; otherwise "XNNPACK will perform model
        # inference with FP32 calculations" ("Floating-Point (IEEE FP16) Operators" in
        # https://github.com/tensorflow/tensorflow/blob/master/tensorflow/lite/delegates/xnnpack/README.md).
        ops, dtypes = self._graph()
        fp16_weights = {
            op["outputs"][0]
            for op in ops
            if op["op_name"] == "DEQUANTIZE" and dtypes[op["inputs"][0]] == np.float16
        }
        convs = [op for op in ops if op["op_name"] in CONV_OPS]
        stored = sum(op["inputs"][1] in fp16_weights for op in convs)
        upcast = (
            f"{stored} of {len(convs)} conv weights stored fp16, "
            "upcast to fp32 before the first inference"
        )
        if not self._delegated(ops):
            return f"{upcast}; TFLite's built-in kernels compute in fp32"
        device = native("fp16")
        allowed = reduced_precision(self._path) or "absent"
        if not device.available:
            return f"{upcast}; XNNPACK computes in fp32: {device.describe()}"
        if not allows_fp16_accumulation(allowed):
            return (
                f"{upcast}; XNNPACK computes in fp32: its fp16 path needs the model's "
                f"{REDUCED_PRECISION_KEY} to allow fp16 accumulation (this one: {allowed})"
            )
        return f"XNNPACK computes in fp16 ({device.describe()}, {REDUCED_PRECISION_KEY} {allowed})"


def allows_fp16_accumulation(value: str) -> bool:
    """Whether a reduced_precision_support value (``fp16accfp16``, ``fp16bf16accfp32``, ...)
    allows fp16 inference with fp16 accumulation, which XNNPACK's fp16 path requires."""
    inference, sep, accumulation = value.partition("acc")
    return bool(sep) and "fp16" in inference and accumulation == "fp16"


def reduced_precision(path) -> str | None:
    """A .tflite file's reduced_precision_support metadata (``fp16accfp32``...), None if absent."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytearray(path.read_bytes()), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == REDUCED_PRECISION_KEY:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
    return None
