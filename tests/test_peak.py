import contextlib
import sys
from types import SimpleNamespace

import pytest

from harness.measure.peak import gemm_peak_gmacs

KEYS = {"gmacs_per_s", "size", "threads", "library"}


def test_returns_a_positive_rate_and_the_right_keys():
    result = gemm_peak_gmacs(threads=1, size=32, min_time_s=0.0)

    assert set(result) == KEYS
    assert result["gmacs_per_s"] > 0
    assert result["size"] == 32
    assert isinstance(result["threads"], int)
    assert result["threads"] >= 1
    assert isinstance(result["library"], str)
    assert result["library"]


def test_without_threadpoolctl_reports_the_requested_threads(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)

    result = gemm_peak_gmacs(threads=2, size=16, min_time_s=0.0)

    assert result["threads"] == 2
    assert result["library"]  # numpy's BLAS name, or "numpy"


def test_with_threadpoolctl_limits_and_reports_the_blas_pool(monkeypatch):
    calls = []

    @contextlib.contextmanager
    def threadpool_limits(limits=None, user_api=None):
        calls.append((limits, user_api))
        yield

    info = [
        {"user_api": "openmp", "internal_api": "openmp", "num_threads": 8, "version": None},
        {"user_api": "blas", "internal_api": "openblas", "num_threads": 1, "version": "0.3.27"},
    ]
    fake = SimpleNamespace(threadpool_limits=threadpool_limits, threadpool_info=lambda: info)
    monkeypatch.setitem(sys.modules, "threadpoolctl", fake)

    result = gemm_peak_gmacs(threads=1, size=16, min_time_s=0.0)

    assert calls == [(1, "blas")]
    assert result["threads"] == 1
    assert result["library"] == "openblas 0.3.27"


def test_rejects_an_empty_matrix():
    with pytest.raises(ValueError, match="size"):
        gemm_peak_gmacs(size=0)
