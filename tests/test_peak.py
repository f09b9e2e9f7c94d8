import contextlib
import math
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from harness.backends.base import module_available
from harness.measure import peak
from harness.measure.peak import device_peaks, probe_gemm

KEYS = {"library", "gmacs_per_s", "threads", "size"}


@pytest.mark.parametrize("library", ["numpy", "torch", "onnxruntime"])
def test_each_installed_probe_returns_a_positive_finite_rate(library):
    ok, reason = module_available(peak.PROBES[library][0])
    if not ok:
        pytest.skip(reason)

    result = probe_gemm(library, threads=1, size=64, min_time_s=0.0)

    assert set(result) == KEYS
    assert result["gmacs_per_s"] > 0
    assert math.isfinite(result["gmacs_per_s"])
    assert (result["threads"], result["size"]) == (1, 64)
    assert result["library"].startswith(library + " ")


def test_numpy_probe_names_the_blas():
    assert "(" in probe_gemm("numpy", threads=1, size=8, min_time_s=0.0)["library"]


def test_numpy_probe_is_silent_when_the_blas_raises_fp_flags(monkeypatch):
    tiny = np.full((32, 32), 1e-30, dtype=np.float32)  # the products underflow
    monkeypatch.setattr(peak, "_operands", lambda size: (tiny, tiny))

    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="underflow"):
            np.matmul(tiny, tiny)  # the flags are really raised here
        result = probe_gemm("numpy", threads=1, size=32, min_time_s=0.0)

    assert result["gmacs_per_s"] > 0


@pytest.mark.parametrize("library", ["numpy", "torch", "onnxruntime"])
def test_a_non_finite_product_raises(monkeypatch, library):
    ok, reason = module_available(peak.PROBES[library][0])
    if not ok:
        pytest.skip(reason)
    huge = np.full((16, 16), 1e30, dtype=np.float32)  # the products overflow to inf
    monkeypatch.setattr(peak, "_operands", lambda size: (huge, huge))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FloatingPointError, match="non-finite"):
            probe_gemm(library, threads=1, size=16, min_time_s=0.0)


def test_numpy_probe_limits_the_blas_pool_with_threadpoolctl(monkeypatch):
    calls = []

    @contextlib.contextmanager
    def threadpool_limits(limits=None, user_api=None):
        calls.append((limits, user_api))
        yield

    info = [{"user_api": "blas", "internal_api": "openblas", "version": "0.3.29"}]
    fake = SimpleNamespace(threadpool_limits=threadpool_limits, threadpool_info=lambda: info)
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)

    result = probe_gemm("numpy", threads=2, size=8, min_time_s=0.0)

    assert calls == [(2, "blas")]
    assert result["library"].endswith("(openblas 0.3.29)")


def test_probe_rejects_unknown_libraries_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown GEMM probe"):
        probe_gemm("nope", threads=1, size=8, min_time_s=0.0)
    with pytest.raises(ValueError, match="size"):
        probe_gemm("numpy", threads=1, size=0, min_time_s=0.0)


def test_device_peaks_keeps_the_best_runtime_per_thread_count(monkeypatch, tmp_path):
    # Known in this process, unknown in the spawned child: its probe raises there.
    monkeypatch.setitem(peak.PROBES, "broken", ("numpy", peak.PROBES["numpy"][1]))
    installed = [name for name in peak.available_probes() if name != "broken"]

    peaks = device_peaks([2, 1, 2], tmp_path / "cells.log", sizes=(64,), min_time_s=0.0)

    assert list(peaks) == ["1", "2"]
    for key, entry in peaks.items():
        candidates = entry["candidates"]
        assert len(candidates) == len(installed)  # the failure took down no other probe
        assert entry["gmacs_per_s"] == max(candidates.values())
        assert entry["library"] == max(candidates, key=candidates.get)
        assert (entry["threads"], entry["size"], entry["precision"]) == (int(key), 64, "fp32")
        assert list(entry["failed"]) == ["broken"]
        assert "unknown GEMM probe 'broken'" in entry["failed"]["broken"]


def test_device_peaks_without_a_working_probe_has_no_peak(monkeypatch, tmp_path):
    outcomes = iter([{"status": "timeout", "reason": "no result within 1 s"}])
    monkeypatch.setattr(peak, "available_probes", lambda: ["numpy"])
    monkeypatch.setattr(peak, "in_child", lambda *args, **kwargs: next(outcomes))

    peaks = device_peaks([1], tmp_path / "cells.log", sizes=(8,), min_time_s=0.0)

    assert peaks["1"]["gmacs_per_s"] is None
    assert peaks["1"]["library"] is None
    assert peaks["1"]["size"] is None
    assert peaks["1"]["candidates"] == {}
    assert peaks["1"]["failed"] == {"numpy": "timeout: no result within 1 s"}


def test_best_gemm_keeps_the_fastest_size(monkeypatch):
    rates = {16: 3.0, 32: 5.0, 64: 4.0}
    monkeypatch.setattr(
        peak,
        "probe_gemm",
        lambda library, threads, size, min_time_s: {
            "library": library,
            "gmacs_per_s": rates[size],
            "threads": threads,
            "size": size,
        },
    )
    best = peak.best_gemm("numpy", 2, (16, 32, 64), 0.0)
    assert (best["size"], best["gmacs_per_s"], best["threads"]) == (32, 5.0, 2)
