"""The device's dense fp32 GEMM peak through numpy's BLAS: the roofline's ceiling."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from types import ModuleType

import numpy as np

log = logging.getLogger(__name__)

_MIN_REPEATS = 3


def _threadpoolctl() -> ModuleType | None:
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


def _numpy_blas_name() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # older numpy without mode="dicts"
        return "numpy"
    name = blas.get("name") or "numpy"
    version = blas.get("version")
    return f"{name} {version}" if version else name


@contextlib.contextmanager
def _blas_threads(threads: int | None) -> Iterator[tuple[int, str]]:
    """Limit BLAS to ``threads`` (threadpoolctl) and yield (threads in effect, library)."""
    tpc = _threadpoolctl()
    if tpc is None and threads is not None:
        log.info("threadpoolctl missing: BLAS threads follow the environment")
    limits = tpc.threadpool_limits(limits=threads, user_api="blas") if tpc else None
    with limits or contextlib.nullcontext():
        pools = [p for p in tpc.threadpool_info() if p.get("user_api") == "blas"] if tpc else []
        if pools:
            library = f"{pools[0]['internal_api']} {pools[0].get('version') or ''}".strip()
            yield int(pools[0]["num_threads"]), library
        else:
            yield threads or os.cpu_count() or 1, _numpy_blas_name()


def gemm_peak_gmacs(threads: int | None = None, size: int = 1024, min_time_s: float = 0.5) -> dict:
    """Best fp32 ``size``×``size`` @ ``size``×``size`` rate over repeats, in GMAC/s.

    One GEMM is ``size**3`` MACs. Repeats run for at least ``min_time_s`` (and at
    least 3 times) after one untimed warm-up call; the fastest repeat counts.
    Returns ``{"gmacs_per_s", "size", "threads", "library"}``; without
    threadpoolctl, ``threads`` is the requested count (or the CPU count) and the
    BLAS pool follows the environment (see ``threads.apply_env``).
    """
    if size < 1:
        raise ValueError("size must be >= 1")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    with _blas_threads(threads) as (used_threads, library):
        np.matmul(a, b, out=out)
        best_ns = None
        repeats = 0
        start = time.perf_counter()
        while repeats < _MIN_REPEATS or time.perf_counter() - start < min_time_s:
            t0 = time.perf_counter_ns()
            np.matmul(a, b, out=out)
            elapsed_ns = max(time.perf_counter_ns() - t0, 1)
            best_ns = elapsed_ns if best_ns is None else min(best_ns, elapsed_ns)
            repeats += 1
    return {
        "gmacs_per_s": size**3 / best_ns,
        "size": size,
        "threads": used_threads,
        "library": library,
    }
