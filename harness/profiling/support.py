"""Which backend cells have a per-layer profiler, and why the others have none.

A profile row needs measured time per op from an API mobilebench can call.
Where a runtime offers only a whole-inference time, estimated costs or a trace
for an external viewer, the cell is skipped with the reason below: a profile
is never approximated.
"""

from __future__ import annotations

#: Backends with a profiler in :mod:`harness.profiling` (some modes may still skip).
PROFILED_BACKENDS = ("onnxruntime", "pytorch")

#: Why a backend has no profiler at all, naming the API that is missing (one line each).
_NO_PROFILER = {
    "tflite": (
        "ai_edge_litert.interpreter.Interpreter has no per-op profiling API (invoke only); "
        "TFLite's op profiler is C++ (tflite::profiling, benchmark_model --enable_op_profiling)"
    ),
    "keras": (
        "tf.profiler.experimental only writes an XSpace trace for TensorBoard's profile plugin; "
        "no TensorFlow Python API returns per-op times"
    ),
    "coreml": (
        "coremltools has no measured per-layer time: MLComputePlan gives estimated costs and "
        "device placement, MLModel only last_predict_duration_in_nano_seconds"
    ),
}

#: Why ONNX Runtime's CoreML execution provider cannot be profiled per layer.
_ORT_COREML = (
    "the CoreML execution provider runs its partitions as compiled Core ML models: "
    "ORT's profiler times each partition as one node, with no per-layer event"
)
#: Why a PyTorch call path cannot be profiled per layer.
_PYTORCH_COMPILED = (
    "torch.compile (inductor) fuses ops across spec layers into generated kernels: "
    "torch.profiler sees no per-module span to name a layer by"
)
_PYTORCH_INT8 = (
    "the int8 program only runs inductor-compiled (fused oneDNN qconv kernels): "
    "torch.profiler sees no per-module span to name a layer by"
)
_PYTORCH_MPS = (
    "torch.profiler has no MPS activity (CPU-side dispatch only); torch.mps.profiler writes "
    "OS signposts for Instruments, with no Python API returning per-op GPU times"
)


def profile_skip_reason(backend: str, mode: str, precision: str) -> str | None:
    """None when ``backend`` in ``mode`` at ``precision`` has a per-layer profiler, else why not."""
    if backend == "onnxruntime":
        return _ORT_COREML if mode == "coreml" else None
    if backend == "pytorch":
        return _pytorch_reason(mode, precision)
    return _NO_PROFILER.get(backend, f"mobilebench has no per-layer profiler for {backend!r}")


def _pytorch_reason(mode: str, precision: str) -> str | None:
    """Only the eager exported program keeps one op call per graph node, in model order."""
    if precision == "int8":
        return _PYTORCH_INT8
    if mode == "compile":
        return _PYTORCH_COMPILED
    if mode == "mps":
        return _PYTORCH_MPS
    return None
