"""The device's dense GEMM peak per precision and thread count: the roofline's ceiling.

A row's ``roofline_pct`` is its GMAC/s over the peak of its own precision, so the
peak is taken under the row's conditions: per precision (an int8 row is not
compared with an fp32 ceiling), at each thread count (a one-thread cell is not
compared with every core), as the best of the installed runtimes' real kernels
(one library's kernels can beat another's, and a ceiling set by one library lets
rows exceed 100 %). The entry records which library set the peak and every
candidate's rate.

Probes: fp32 through numpy's BLAS, torch and ONNX Runtime; int8 through torch's
``_int_mm`` and ONNX Runtime's ``MatMulInteger`` (int8 A and B, and uint8 A x
int8 B, the x86 fast path: the best counts, its label says which); bf16 and fp16
through ``torch.mm``, fp16 also through ONNX Runtime's MatMul (refused when the
session wraps it in Casts: that is an fp32 run). bf16 and fp16 are measured only
where the CPU has native arithmetic for them (:func:`harness.cpu.native`). A GEMM
counts ``size³`` MACs whatever its precision.

Each runtime runs in one fresh process per thread count, sized by :func:`thread_env`
(one runtime's crash or thread pool cannot touch another's), measuring every
requested precision it offers (a framework is imported once); a probe that raises
costs only its own candidate, and a child that crashes is rerun one probe per child.

BLAS kernels may raise floating-point flags that numpy reports as spurious
RuntimeWarnings (aarch64, Accelerate): they are silenced, and the product must
be finite instead (exact, on a corner, for integer products).
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
from harness.cpu import NATIVE, native
from harness.formats import ORT_ACTIVATIONS
from harness.isolation import in_child
from harness.measure.threads import thread_env
from harness.versions import distribution_version

log = logging.getLogger(__name__)

#: Square sizes tried per runtime (the best counts: a kernel's sweet spot depends on the
#: caches). A 2048³ GEMM is 8.6 GMAC: ~0.1-0.3 s on a laptop-class core, ~2 s on a Pi 4 core.
GEMM_SIZES = (1024, 2048)
#: Seconds of repeats per size (at least 3 repeats); the fastest repeat counts.
GEMM_TIME_S = 0.5
#: Seconds allowed per probe; a child running n probes gets n times this.
GEMM_TIMEOUT_S = 180.0
#: Precisions measured whatever the CPU's flags (int8 GEMMs run fast on any SIMD ISA).
ALWAYS_MEASURED = ("fp32", "int8")
#: Side of the top-left corner of an integer product checked exactly against numpy.
_CHECKED = 16

#: What a probe yields: (library label, one-GEMM callable, product getter -> numpy array,
#: operands (A, B) as numpy arrays, used to check an integer product exactly).
Probe = Callable[[int, int], Any]


def _operands(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal((2, size, size), dtype=np.float32))


def _int_operands(size: int, a_dtype: type = np.int8) -> tuple[np.ndarray, np.ndarray]:
    """Full-range A; B in [-64, 64), so that no u8 x s8 kernel's int16 pair sums saturate."""
    rng = np.random.default_rng(0)
    info = np.iinfo(a_dtype)
    a = rng.integers(info.min, info.max, (size, size), dtype=a_dtype, endpoint=True)
    return a, rng.integers(-64, 64, (size, size), dtype=np.int8)


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
def _numpy_probe(threads: int, size: int) -> Iterator[tuple]:
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
            yield label, lambda: np.matmul(a, b, out=out), lambda: out, (a, b)


def _torch_mm(dtype_name: str) -> Probe:
    """A probe timing ``torch.mm`` on ``dtype_name`` tensors (float32, bfloat16, float16)."""

    @contextlib.contextmanager
    def probe(threads: int, size: int) -> Iterator[tuple]:
        import torch

        from harness.backends.pytorch import PyTorchBackend

        PyTorchBackend(threads=threads)  # pins torch's pools, as for every cell
        dtype = getattr(torch, dtype_name)
        operands = _operands(size)
        a, b = (torch.from_numpy(m).to(dtype) for m in operands)
        out = torch.empty(size, size, dtype=dtype)
        with torch.inference_mode():
            gemm = lambda: torch.mm(a, b, out=out)  # noqa: E731
            yield _label("torch", torch), gemm, lambda: out.float().numpy(), operands

    return probe


@contextlib.contextmanager
def _torch_int8_probe(threads: int, size: int) -> Iterator[tuple]:
    import torch

    from harness.backends.pytorch import PyTorchBackend

    PyTorchBackend(threads=threads)
    a, b = _int_operands(size)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = torch.empty(size, size, dtype=torch.int32)
    with torch.inference_mode():
        gemm = lambda: torch._int_mm(ta, tb, out=out)  # noqa: E731  int8 x int8 -> int32
        yield _label("torch", torch) + " (_int_mm)", gemm, out.numpy, (a, b)


def _ort_session(op: str, a: np.ndarray, b: np.ndarray, out_dtype: type, threads: int):
    """A one-node ``op(A, B)`` session, B an initializer as in a model (ORT prepacks it),
    and the optimised graph it runs."""
    from onnx import helper, numpy_helper

    from harness.backends.onnxruntime import session_with_graph

    inputs = [helper.make_tensor_value_info("A", helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)]
    out_type = helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype))
    outputs = [helper.make_tensor_value_info("C", out_type, a.shape)]
    node = helper.make_node(op, ["A", "B"], ["C"])
    graph = helper.make_graph([node], "gemm", inputs, outputs, [numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # old enough for any supported onnxruntime
    return session_with_graph(model.SerializeToString(), threads)


@contextlib.contextmanager
def _run_ort(
    op: str, a: np.ndarray, b: np.ndarray, out_dtype: type, threads: int, suffix: str = ""
) -> Iterator[tuple]:
    import onnxruntime as ort

    session, graph = _ort_session(op, a, b, out_dtype, threads)
    ops = [node.op_type for node in graph.node]
    if ops != [op]:
        raise RuntimeError(f"onnxruntime rewrote {op} into {ops}: not a {a.dtype} kernel")
    out = ort.OrtValue.ortvalue_from_numpy(np.empty(a.shape, dtype=out_dtype))
    binding = session.io_binding()
    binding.bind_cpu_input("A", a)
    binding.bind_ortvalue_output("C", out)
    label = _label("onnxruntime", ort) + suffix
    yield label, lambda: session.run_with_iobinding(binding), out.numpy, (a, b)


@contextlib.contextmanager
def _onnxruntime_probe(threads: int, size: int) -> Iterator[tuple]:
    with _run_ort("MatMul", *_operands(size), np.float32, threads) as probe:
        yield probe


@contextlib.contextmanager
def _onnxruntime_fp16_probe(threads: int, size: int) -> Iterator[tuple]:
    """Raises when the CPU provider has no fp16 MatMul (it would insert Casts to fp32)."""
    a, b = (m.astype(np.float16) for m in _operands(size))
    with _run_ort("MatMul", a, b, np.float16, threads) as probe:
        yield probe


def _onnxruntime_int8_probe(a_dtype: type, suffix: str) -> Probe:
    """A probe timing ``MatMulInteger`` with ``a_dtype`` A and int8 B (an initializer)."""

    @contextlib.contextmanager
    def probe(threads: int, size: int) -> Iterator[tuple]:
        a, b = _int_operands(size, a_dtype)
        with _run_ort("MatMulInteger", a, b, np.int32, threads, suffix) as yielded:
            yield yielded

    return probe


#: (probe name, precision) -> (module that must be installed, probe). A probe(threads,
#: size) is a context manager yielding (library label, one-GEMM callable, product getter,
#: (A, B) operands). The probes of one module run in one child. Tests may add some.
PROBES: dict[tuple[str, str], tuple[str, Probe]] = {
    ("numpy", "fp32"): ("numpy", _numpy_probe),
    ("torch", "fp32"): ("torch", _torch_mm("float32")),
    ("torch", "int8"): ("torch", _torch_int8_probe),
    ("torch", "bf16"): ("torch", _torch_mm("bfloat16")),
    ("torch", "fp16"): ("torch", _torch_mm("float16")),
    ("onnxruntime", "fp32"): ("onnxruntime", _onnxruntime_probe),
    # The activation type ONNX Runtime's int8 files use on this CPU (U8S8 on x86-64, S8S8 on
    # ARM): the other form has no fast kernels there (s8s8 is ~30x slower on x86-64).
    ("onnxruntime", "int8"): (
        "onnxruntime",
        _onnxruntime_int8_probe(
            np.uint8 if ORT_ACTIVATIONS == "uint8" else np.int8,
            " (MatMulInteger u8s8)" if ORT_ACTIVATIONS == "uint8" else " (MatMulInteger s8s8)",
        ),
    ),
    ("onnxruntime", "fp16"): ("onnxruntime", _onnxruntime_fp16_probe),
}
PRECISIONS = ("fp32", *NATIVE)


def available_probes() -> list[tuple[str, str]]:
    """(name, precision) of the probes whose runtime is installed (checked without importing)."""
    return [key for key, (module, _) in PROBES.items() if module_available(module)[0]]


def skip_reason(precision: str) -> str | None:
    """Why ``precision`` gets no peak on this CPU (no native arithmetic), or None."""
    if precision in ALWAYS_MEASURED:
        return None
    found = native(precision)
    return None if found.available else found.describe()


def _check(label: str, precision: str, product: np.ndarray, operands: tuple) -> None:
    if np.issubdtype(product.dtype, np.integer):
        a, b = (np.asarray(m).astype(np.int64) for m in operands)
        expected = a[:_CHECKED] @ b[:, :_CHECKED]
        if not np.array_equal(product[:_CHECKED, :_CHECKED], expected):
            raise ArithmeticError(f"{label}: the {precision} GEMM's product is wrong")
    elif not np.isfinite(product).all():
        raise FloatingPointError(f"{label}: the {precision} GEMM produced non-finite values")


def probe_gemm(
    library: str, threads: int, size: int, min_time_s: float, precision: str = "fp32"
) -> dict[str, Any]:
    """Time one runtime's ``precision`` ``size``³ GEMM in this process; GMAC/s of the fastest.

    One untimed warm-up, then at least 3 repeats lasting at least ``min_time_s``.
    Returns ``{"library": "<name> <version>[ (kernel)]", "gmacs_per_s", "threads", "size",
    "precision"}``; raises FloatingPointError when a float product is not finite and
    ArithmeticError when an integer one is not exact (a broken kernel).
    """
    if (library, precision) not in PROBES:
        known = ", ".join(f"{n}/{p}" for n, p in PROBES)
        raise ValueError(f"unknown GEMM probe {library!r} for {precision} (known: {known})")
    if size < 1 or threads < 1:
        raise ValueError(f"size and threads must be >= 1, got {size} and {threads}")
    with PROBES[library, precision][1](threads, size) as (label, gemm, product, operands):
        gemm()
        best_ns, repeats, start = float("inf"), 0, time.perf_counter()
        while repeats < 3 or time.perf_counter() - start < min_time_s:
            t0 = time.perf_counter_ns()
            gemm()
            best_ns = min(best_ns, max(time.perf_counter_ns() - t0, 1))
            repeats += 1
        _check(label, precision, product(), operands)
    rate = size**3 / best_ns
    result = {"library": label, "gmacs_per_s": rate, "threads": threads, "size": size}
    return result | {"precision": precision}


def best_gemm(
    library: str, threads: int, sizes: Sequence[int], min_time_s: float, precision: str = "fp32"
) -> dict[str, Any]:
    """:func:`probe_gemm` at each of ``sizes`` in this process; the fastest result."""
    results = [probe_gemm(library, threads, size, min_time_s, precision) for size in sizes]
    return max(results, key=lambda r: r["gmacs_per_s"])


def measure_runtime(
    jobs: Sequence[tuple[str, str]], threads: int, sizes: Sequence[int], min_time_s: float
) -> list[dict[str, Any]]:
    """:func:`best_gemm` for each (probe, precision) of ``jobs``; a raise fails only its own.

    One item per job: ``{"probe", "precision", "status": "ok", "result"}`` or
    ``{..., "status": "failed", "reason"}``. Run in a child, one per runtime.
    """
    outcomes = []
    for name, precision in jobs:
        outcome: dict[str, Any] = {"probe": name, "precision": precision}
        try:
            result = best_gemm(name, threads, sizes, min_time_s, precision)
            outcomes.append(outcome | {"status": "ok", "result": result})
        except Exception as exc:  # any probe fault is data
            log.exception("GEMM probe %s/%s failed", name, precision)
            reason = f"{type(exc).__name__}: {exc}"[:500]
            outcomes.append(outcome | {"status": "failed", "reason": reason})
    return outcomes


def _in_runtime_child(jobs, threads, sizes, min_time_s, timeout_s, log_path) -> list[dict]:
    """:func:`measure_runtime` in a child; a crashed child is rerun one job per child."""
    args = (list(jobs), threads, tuple(sizes), min_time_s)
    env = thread_env(threads)
    outcome = in_child(measure_runtime, args, timeout_s * len(jobs), env=env, log_path=log_path)
    if outcome["status"] == "ok":
        return outcome["result"]
    if outcome["status"] == "failed" and len(jobs) > 1:
        log.warning("GEMM child for %s crashed (%s); one probe per child", jobs, outcome["reason"])
        return [
            item
            for job in jobs
            for item in _in_runtime_child([job], threads, sizes, min_time_s, timeout_s, log_path)
        ]
    reason = f"{outcome['status']}: {outcome['reason']}"
    return [{"probe": n, "precision": p, "status": "failed", "reason": reason} for n, p in jobs]


def _entry(threads: int, precision: str, outcomes: list[dict]) -> dict[str, Any]:
    candidates: dict[str, float] = {}
    best_sizes: dict[str, int] = {}
    failed: dict[str, str] = {}
    for outcome in outcomes:
        if outcome["status"] == "ok":
            library, rate = outcome["result"]["library"], outcome["result"]["gmacs_per_s"]
            candidates[library] = rate
            best_sizes[library] = outcome["result"]["size"]
            log.info("GEMM %s %s, %d threads: %.1f GMAC/s", precision, library, threads, rate)
        else:
            failed[outcome["probe"]] = outcome["reason"]
            log.warning(
                "GEMM %s probe %s, %d threads failed: %s",
                precision,
                outcome["probe"],
                threads,
                outcome["reason"],
            )
    best = max(candidates, key=candidates.__getitem__, default=None)
    entry = {"gmacs_per_s": candidates.get(best), "library": best, "threads": threads}
    entry |= {"precision": precision, "size": best_sizes.get(best), "candidates": candidates}
    return entry | ({"failed": failed} if failed else {})


def device_peaks(
    threads: Sequence[int],
    log_path: Path,
    precisions: Sequence[str] = ("fp32",),
    sizes: Sequence[int] = GEMM_SIZES,
    min_time_s: float = GEMM_TIME_S,
    timeout_s: float = GEMM_TIMEOUT_S,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The best GEMM rate per precision and thread count: ``{precision: {str(threads):
    entry}}``; never raises for a probe.

    Each entry: ``{"gmacs_per_s", "library", "threads", "precision", "size" (of the best),
    "candidates": {library: gmacs_per_s}}`` plus ``"failed": {probe: reason}`` when a probe
    failed; ``gmacs_per_s``, ``library`` and ``size`` are None when none succeeded, and
    then ``"reason"`` says why when nothing was tried (no native arithmetic, no probe).
    """
    wanted = list(dict.fromkeys(precisions))
    if unknown := [p for p in wanted if p not in PRECISIONS]:
        raise ValueError(f"unknown precisions {unknown} (known: {', '.join(PRECISIONS)})")
    skipped = {p: reason for p in wanted if (reason := skip_reason(p))}
    installed = [key for key in available_probes() if key[1] in wanted and key[1] not in skipped]
    for p in wanted:
        if p not in skipped and all(key[1] != p for key in installed):
            skipped[p] = f"no {p} GEMM probe installed (known: {_probe_names(p)})"
    modules = dict.fromkeys(PROBES[key][0] for key in installed)
    peaks: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in wanted}
    for t in sorted(set(threads)):
        outcomes: list[dict] = []
        for module in modules:
            jobs = [key for key in installed if PROBES[key][0] == module]
            outcomes += _in_runtime_child(jobs, t, sizes, min_time_s, timeout_s, log_path)
        for p in wanted:
            entry = _entry(t, p, [o for o in outcomes if o["precision"] == p])
            peaks[p][str(t)] = entry | ({"reason": skipped[p]} if p in skipped else {})
    return peaks


def _probe_names(precision: str) -> str:
    return ", ".join(n for n, p in PROBES if p == precision) or "none"
