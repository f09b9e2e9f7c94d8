"""The device's dense fp32 GEMM peak per thread count: the roofline's ceiling.

A row's ``roofline_pct`` is its GMAC/s over this peak, so the peak is taken under
the row's conditions: at each thread count (a one-thread cell is not compared with
every core), as the best of the installed runtimes (numpy's BLAS, torch, ONNX
Runtime: one library's kernels can beat another's, and a ceiling set by one
library lets rows exceed 100 %), each runtime in its own fresh process sized by
:func:`thread_env` (one runtime's crash or thread pool cannot touch another's).
The entry records which library set the peak and every candidate's rate.

BLAS kernels may raise floating-point flags that numpy reports as spurious
RuntimeWarnings (aarch64, Accelerate): they are silenced, and the product must
be finite instead.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.base import module_available
from harness.isolation import in_child
from harness.measure.threads import thread_env
from harness.versions import distribution_version

log = logging.getLogger(__name__)

#: Square sizes tried per runtime (the best counts: a kernel's sweet spot depends on the
#: caches). A 2048³ GEMM is 8.6 GMAC: ~0.1-0.3 s on a laptop-class core, ~2 s on a Pi 4 core.
GEMM_SIZES = (1024, 2048)
#: Seconds of repeats per size (at least 3 repeats); the fastest repeat counts.
GEMM_TIME_S = 0.5
GEMM_TIMEOUT_S = 180.0


def _operands(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal((2, size, size), dtype=np.float32))


def _label(distribution: str, module: Any = None) -> str:
    version = distribution_version(distribution) or getattr(module, "__version__", "?")
    return f"{distribution} {version}"


def _numpy_blas(tpc: Any) -> str | None:
    if tpc is not None:
        for pool in tpc.threadpool_info():
            if pool.get("user_api") == "blas":
                return f"{pool['internal_api']} {pool.get('version') or ''}".strip()
    with contextlib.suppress(Exception):  # older numpy: no mode="dicts"
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version') or ''}".strip()
    return None


@contextlib.contextmanager
def _numpy_probe(threads: int, size: int) -> Iterator[tuple[str, Callable, Callable]]:
    try:
        import threadpoolctl as tpc
    except ImportError:  # the BLAS pool follows thread_env, set before numpy loaded
        tpc = None
    limits = tpc.threadpool_limits(threads, user_api="blas") if tpc else contextlib.nullcontext()
    with limits:
        blas = _numpy_blas(tpc)
        label = _label("numpy", np) + (f" ({blas})" if blas else "")
        a, b = _operands(size)
        out = np.empty_like(a)
        with np.errstate(all="ignore"):  # BLAS FP flags are not errors; finiteness is checked
            yield label, lambda: np.matmul(a, b, out=out), lambda: out


@contextlib.contextmanager
def _torch_probe(threads: int, size: int) -> Iterator[tuple[str, Callable, Callable]]:
    import torch

    from harness.backends.pytorch import PyTorchBackend

    PyTorchBackend(threads=threads)  # pins torch's pools, as for every cell
    a, b = (torch.from_numpy(m) for m in _operands(size))
    out = torch.empty(size, size, dtype=torch.float32)
    with torch.inference_mode():
        yield _label("torch", torch), lambda: torch.mm(a, b, out=out), out.numpy


@contextlib.contextmanager
def _onnxruntime_probe(threads: int, size: int) -> Iterator[tuple[str, Callable, Callable]]:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from harness.backends.onnxruntime import session_options

    a, b = _operands(size)
    io = [helper.make_tensor_value_info(x, TensorProto.FLOAT, [size, size]) for x in "AC"]
    node = helper.make_node("MatMul", ["A", "B"], ["C"])
    # B is a weight (initializer), as in a model: ORT prepacks it, its fastest path.
    graph = helper.make_graph([node], "gemm", io[:1], io[1:], [numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # old enough for any supported onnxruntime
    session = ort.InferenceSession(
        model.SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"]
    )
    out = ort.OrtValue.ortvalue_from_numpy(np.empty_like(a))
    binding = session.io_binding()
    binding.bind_cpu_input("A", a)
    binding.bind_ortvalue_output("C", out)
    yield _label("onnxruntime", ort), lambda: session.run_with_iobinding(binding), out.numpy


#: name -> (module that must be installed, probe). A probe(threads, size) is a context
#: manager yielding (library label, one-GEMM callable, product getter). Tests may add some.
PROBES: dict[str, tuple[str, Callable[[int, int], Any]]] = {
    "numpy": ("numpy", _numpy_probe),
    "torch": ("torch", _torch_probe),
    "onnxruntime": ("onnxruntime", _onnxruntime_probe),
}


def available_probes() -> list[str]:
    """Probes whose runtime is installed (checked without importing it)."""
    return [name for name, (module, _) in PROBES.items() if module_available(module)[0]]


def probe_gemm(library: str, threads: int, size: int, min_time_s: float) -> dict[str, Any]:
    """Time one runtime's fp32 ``size``³ GEMM in this process; GMAC/s of the fastest repeat.

    One untimed warm-up, then at least 3 repeats lasting at least ``min_time_s``.
    Returns ``{"library": "<name> <version>", "gmacs_per_s", "threads", "size"}``;
    raises FloatingPointError when the product is not finite (a broken kernel).
    """
    if library not in PROBES:
        raise ValueError(f"unknown GEMM probe {library!r} (known: {', '.join(PROBES)})")
    if size < 1 or threads < 1:
        raise ValueError(f"size and threads must be >= 1, got {size} and {threads}")
    with PROBES[library][1](threads, size) as (label, gemm, product):
        gemm()
        best_ns, repeats, start = float("inf"), 0, time.perf_counter()
        while repeats < 3 or time.perf_counter() - start < min_time_s:
            t0 = time.perf_counter_ns()
            gemm()
            best_ns = min(best_ns, max(time.perf_counter_ns() - t0, 1))
            repeats += 1
        if not np.isfinite(product()).all():
            raise FloatingPointError(f"{label}: the fp32 GEMM produced non-finite values")
    return {"library": label, "gmacs_per_s": size**3 / best_ns, "threads": threads, "size": size}


def best_gemm(
    library: str, threads: int, sizes: Sequence[int], min_time_s: float
) -> dict[str, Any]:
    """:func:`probe_gemm` at each of ``sizes`` in this process; the fastest result."""
    results = [probe_gemm(library, threads, size, min_time_s) for size in sizes]
    return max(results, key=lambda r: r["gmacs_per_s"])


def device_peaks(
    threads: Sequence[int],
    log_path: Path,
    sizes: Sequence[int] = GEMM_SIZES,
    min_time_s: float = GEMM_TIME_S,
    timeout_s: float = GEMM_TIMEOUT_S,
) -> dict[str, dict[str, Any]]:
    """The best GEMM rate per thread count, keyed by ``str(threads)``; never raises for a probe.

    Each entry: ``{"gmacs_per_s", "library", "threads", "precision": "fp32", "size"
    (of the best), "candidates": {library: gmacs_per_s}}`` plus ``"failed": {probe:
    reason}`` when a probe failed; ``gmacs_per_s``, ``library`` and ``size`` are
    None when all failed.
    """
    peaks: dict[str, dict[str, Any]] = {}
    for t in sorted(set(threads)):
        candidates: dict[str, float] = {}
        best_sizes: dict[str, int] = {}
        failed: dict[str, str] = {}
        for name in available_probes():
            args = (name, t, tuple(sizes), min_time_s)
            outcome = in_child(best_gemm, args, timeout_s, env=thread_env(t), log_path=log_path)
            if outcome["status"] == "ok":
                library, rate = outcome["result"]["library"], outcome["result"]["gmacs_per_s"]
                candidates[library] = rate
                best_sizes[library] = outcome["result"]["size"]
                log.info("GEMM %s, %d threads: %.1f GMAC/s", library, t, rate)
            else:
                failed[name] = f"{outcome['status']}: {outcome['reason']}"
                log.warning("GEMM probe %s, %d threads failed: %s", name, t, failed[name])
        best = max(candidates, key=candidates.__getitem__, default=None)
        entry = {"gmacs_per_s": candidates.get(best), "library": best, "threads": t}
        entry |= {"precision": "fp32", "size": best_sizes.get(best), "candidates": candidates}
        peaks[str(t)] = entry | ({"failed": failed} if failed else {})
    return peaks
