import contextlib
import math
import platform
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from harness.backends.base import module_available
from harness.cpu import Native
from harness.formats import ORT_ACTIVATIONS
from harness.measure import peak
from harness.measure.peak import device_peaks, probe_gemm

ORT_INT8_FORM = "u8s8" if ORT_ACTIVATIONS == "uint8" else "s8s8"

KEYS = {"library", "gmacs_per_s", "threads", "size", "precision"}
FLOAT_PROBES = [("numpy", "fp32"), ("torch", "fp32"), ("onnxruntime", "fp32")]
INT8_PROBES = [
    ("torch", "int8", " (_int_mm)"),
    ("onnxruntime", "int8", f" (MatMulInteger {ORT_INT8_FORM})"),
]


def _require(name, precision):
    ok, reason = module_available(peak.PROBES[name, precision][0])
    if not ok:
        pytest.skip(reason)


def _in_process(calls):
    """An in_child stand-in that runs ``fn`` here and records its arguments."""

    def run(fn, args, timeout_s, env, log_path):
        calls.append((fn.__name__, args, timeout_s, env))
        return {"status": "ok", "result": fn(*args)}

    return run


def fake_probe(label):
    """A probe timing a numpy fp32 GEMM under ``label``."""

    @contextlib.contextmanager
    def probe(threads, size):
        a, b = peak._operands(size)
        out = np.empty_like(a)
        yield label, lambda: np.matmul(a, b, out=out), lambda: out, (a, b)

    return probe


@pytest.mark.parametrize(("library", "precision"), FLOAT_PROBES)
def test_each_installed_fp32_probe_returns_a_positive_finite_rate(library, precision):
    _require(library, precision)

    result = probe_gemm(library, threads=1, size=64, min_time_s=0.0)

    assert set(result) == KEYS
    assert result["gmacs_per_s"] > 0
    assert math.isfinite(result["gmacs_per_s"])
    assert (result["threads"], result["size"], result["precision"]) == (1, 64, "fp32")
    assert result["library"].startswith(library + " ")


@pytest.mark.parametrize(("library", "precision", "kernel"), INT8_PROBES)
def test_each_installed_int8_probe_returns_a_positive_finite_rate(library, precision, kernel):
    _require(library, precision)

    result = probe_gemm(library, threads=1, size=64, min_time_s=0.0, precision="int8")

    assert set(result) == KEYS
    assert result["gmacs_per_s"] > 0
    assert math.isfinite(result["gmacs_per_s"])
    assert (result["threads"], result["size"], result["precision"]) == (1, 64, "int8")
    assert result["library"].startswith(library.split("-")[0] + " ")
    assert result["library"].endswith(kernel)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_torch_reduced_float_probes_compute_in_their_precision(precision):
    _require("torch", precision)

    result = probe_gemm("torch", threads=1, size=16, min_time_s=0.0, precision=precision)

    assert result["precision"] == precision
    assert result["gmacs_per_s"] > 0


@pytest.mark.parametrize(("library", "kernel"), [(n, k) for n, _, k in INT8_PROBES])
def test_a_wrong_integer_product_raises(monkeypatch, library, kernel):
    _require(library, "int8")
    real = peak._check

    def corrupt(label, precision, product, operands):
        return real(label, precision, product + 1, operands)  # off by one everywhere

    monkeypatch.setattr(peak, "_check", corrupt)
    with pytest.raises(ArithmeticError, match=f"{kernel.strip()[1:-1]}.*int8 GEMM's product"):
        probe_gemm(library, threads=1, size=32, min_time_s=0.0, precision="int8")


def test_onnxruntime_fp16_refuses_a_cast_wrapped_fp32_matmul():
    _require("onnxruntime", "fp16")
    if platform.machine().lower() in ("arm64", "aarch64"):
        pytest.skip("onnxruntime's CPU provider may have a real fp16 MatMul on ARM")

    with pytest.raises(RuntimeError, match=r"rewrote MatMul into \['Cast', 'MatMul', 'Cast'\]"):
        probe_gemm("onnxruntime", threads=1, size=16, min_time_s=0.0, precision="fp16")


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


@pytest.mark.parametrize(
    ("library", "precision"), [*FLOAT_PROBES, ("torch", "bf16"), ("torch", "fp16")]
)
def test_a_non_finite_product_raises(monkeypatch, library, precision):
    _require(library, precision)
    huge = np.full((16, 16), 1e30, dtype=np.float32)  # the products overflow to inf
    monkeypatch.setattr(peak, "_operands", lambda size: (huge, huge))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FloatingPointError, match=f"the {precision} GEMM produced non-finite"):
            probe_gemm(library, threads=1, size=16, min_time_s=0.0, precision=precision)


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


def test_probe_rejects_unknown_libraries_precisions_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown GEMM probe"):
        probe_gemm("nope", threads=1, size=8, min_time_s=0.0)
    with pytest.raises(ValueError, match="unknown GEMM probe 'numpy' for int8"):
        probe_gemm("numpy", threads=1, size=8, min_time_s=0.0, precision="int8")
    with pytest.raises(ValueError, match="size"):
        probe_gemm("numpy", threads=1, size=0, min_time_s=0.0)


def test_device_peaks_keeps_the_best_runtime_per_thread_count(monkeypatch, tmp_path):
    # Known in this process, unknown in the spawned child: its probe raises there.
    monkeypatch.setitem(peak.PROBES, ("broken", "fp32"), ("numpy", peak._numpy_probe))
    installed = [n for n, p in peak.available_probes() if p == "fp32" and n != "broken"]

    peaks = device_peaks([2, 1, 2], tmp_path / "cells.log", sizes=(64,), min_time_s=0.0)

    assert list(peaks) == ["fp32"]
    assert list(peaks["fp32"]) == ["1", "2"]
    for key, entry in peaks["fp32"].items():
        candidates = entry["candidates"]
        assert len(candidates) == len(installed)  # the failure took down no other probe
        assert entry["gmacs_per_s"] == max(candidates.values())
        assert entry["library"] == max(candidates, key=candidates.get)
        assert (entry["threads"], entry["size"], entry["precision"]) == (int(key), 64, "fp32")
        assert list(entry["failed"]) == ["broken"]
        assert "unknown GEMM probe 'broken'" in entry["failed"]["broken"]
        assert "reason" not in entry


def test_a_failing_int8_probe_leaves_the_fp32_peak(monkeypatch, tmp_path):
    # Runs in the numpy child beside numpy's fp32 probe; unknown there, so it raises.
    monkeypatch.setattr(peak, "available_probes", lambda: [("numpy", "fp32"), ("broken", "int8")])
    monkeypatch.setitem(peak.PROBES, ("broken", "int8"), ("numpy", peak._numpy_probe))

    peaks = device_peaks([1], tmp_path / "cells.log", ("fp32", "int8"), (32,), 0.0)

    fp32, int8 = peaks["fp32"]["1"], peaks["int8"]["1"]
    assert fp32["gmacs_per_s"] > 0
    assert fp32["library"].startswith("numpy ")
    assert "failed" not in fp32
    assert (int8["gmacs_per_s"], int8["library"], int8["candidates"]) == (None, None, {})
    assert "unknown GEMM probe 'broken' for int8" in int8["failed"]["broken"]


def test_one_child_per_runtime_measures_all_its_precisions(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(peak, "in_child", _in_process(calls))
    monkeypatch.setattr(peak, "native", lambda precision: Native(precision, ("test",)))
    probes = {
        ("numpy", "fp32"): ("numpy", fake_probe("numpy")),
        ("torch", "fp32"): ("math", fake_probe("torch")),
        ("torch", "int8"): ("math", fake_probe("torch (_int_mm)")),
        ("torch", "bf16"): ("math", fake_probe("torch")),
        ("ort", "int8"): ("json", fake_probe("ort (s8s8)")),
        ("ort-u8s8", "int8"): ("json", fake_probe("ort (u8s8)")),
    }
    monkeypatch.setattr(peak, "PROBES", probes)

    precisions = ("fp32", "int8", "bf16")
    peaks = device_peaks([1, 2], tmp_path / "cells.log", precisions, (16,), 0.0, timeout_s=7.0)

    per_runtime = [
        [("numpy", "fp32")],
        [("torch", "fp32"), ("torch", "int8"), ("torch", "bf16")],
        [("ort", "int8"), ("ort-u8s8", "int8")],
    ]
    assert [(fn, args[0], args[1]) for fn, args, *_ in calls] == [
        ("measure_runtime", jobs, t) for t in (1, 2) for jobs in per_runtime
    ]
    assert [timeout for _, _, timeout, _ in calls] == [7.0, 21.0, 14.0] * 2
    assert [env["OMP_NUM_THREADS"] for *_, env in calls] == ["1"] * 3 + ["2"] * 3
    assert set(peaks) == set(precisions)
    assert set(peaks["int8"]["2"]["candidates"]) == {"torch (_int_mm)", "ort (s8s8)", "ort (u8s8)"}
    assert set(peaks["bf16"]["1"]["candidates"]) == {"torch"}
    assert all(e["precision"] == p for p, by_t in peaks.items() for e in by_t.values())


def test_a_precision_without_native_arithmetic_gets_a_reason_and_no_probe(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(peak, "in_child", _in_process(calls))
    monkeypatch.setattr(peak, "native", lambda precision: Native(precision, ()))
    probes = {key: ("numpy", fake_probe("fake")) for key in [("a", "fp32"), ("a", "int8")]}
    probes |= {("a", "bf16"): ("numpy", fake_probe("fake")), ("a", "fp16"): probes["a", "fp32"]}
    monkeypatch.setattr(peak, "PROBES", probes)

    peaks = device_peaks([1], tmp_path / "cells.log", ("fp16", "int8", "bf16"), (8,), 0.0)

    assert [args[0] for _, args, *_ in calls] == [[("a", "int8")]]  # int8 runs without VNNI
    assert peaks["int8"]["1"]["gmacs_per_s"] > 0
    assert "reason" not in peaks["int8"]["1"]
    for precision in ("fp16", "bf16"):
        entry = peaks[precision]["1"]
        assert (entry["gmacs_per_s"], entry["library"], entry["candidates"]) == (None, None, {})
        assert entry["reason"] == Native(precision, ()).describe()
        assert entry["reason"].startswith(f"this CPU has no native {precision} arithmetic")


def test_skip_reason_follows_the_cpus_native_arithmetic(monkeypatch):
    monkeypatch.setattr(peak, "native", lambda p: Native(p, ("x86 AVX512-BF16",) * (p == "bf16")))

    assert peak.skip_reason("bf16") is None
    assert peak.skip_reason("fp16") == Native("fp16", ()).describe()
    assert peak.skip_reason("int8") is None  # measured whatever the flags
    assert peak.skip_reason("fp32") is None


def test_a_precision_without_an_installed_probe_gets_a_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(peak, "available_probes", lambda: [("numpy", "fp32")])

    peaks = device_peaks([1], tmp_path / "cells.log", ("int8",), (8,), 0.0)

    entry = peaks["int8"]["1"]
    assert entry["gmacs_per_s"] is None
    assert entry["reason"].startswith("no int8 GEMM probe installed (known: torch, onnxruntime")


def test_device_peaks_rejects_unknown_precisions(tmp_path):
    with pytest.raises(ValueError, match="unknown precisions \\['fp8'\\]"):
        device_peaks([1], tmp_path / "cells.log", ("fp32", "fp8"))


def test_a_crashed_child_is_rerun_one_probe_per_child(monkeypatch, tmp_path):
    calls = []
    run = _in_process(calls)

    def crash_with_int8(fn, args, timeout_s, env, log_path):
        if ("torch", "int8") in args[0]:
            calls.append((fn.__name__, args, timeout_s, env))
            return {"status": "failed", "reason": "child crashed with SIGSEGV"}
        return run(fn, args, timeout_s, env, log_path)

    monkeypatch.setattr(peak, "in_child", crash_with_int8)
    probes = {("torch", p): ("math", fake_probe(f"torch {p}")) for p in ("fp32", "int8")}
    monkeypatch.setattr(peak, "PROBES", probes)

    peaks = device_peaks([1], tmp_path / "cells.log", ("fp32", "int8"), (8,), 0.0)

    assert [args[0] for _, args, *_ in calls] == [
        [("torch", "fp32"), ("torch", "int8")],
        [("torch", "fp32")],
        [("torch", "int8")],
    ]
    assert list(peaks["fp32"]["1"]["candidates"]) == ["torch fp32"]
    assert peaks["int8"]["1"]["failed"] == {"torch": "failed: child crashed with SIGSEGV"}


def test_device_peaks_without_a_working_probe_has_no_peak(monkeypatch, tmp_path):
    outcomes = iter([{"status": "timeout", "reason": "no result within 1 s"}])
    monkeypatch.setattr(peak, "available_probes", lambda: [("numpy", "fp32")])
    monkeypatch.setattr(peak, "in_child", lambda *args, **kwargs: next(outcomes))

    peaks = device_peaks([1], tmp_path / "cells.log", sizes=(8,), min_time_s=0.0)

    entry = peaks["fp32"]["1"]
    assert (entry["gmacs_per_s"], entry["library"], entry["size"]) == (None, None, None)
    assert entry["candidates"] == {}
    assert entry["failed"] == {"numpy": "timeout: no result within 1 s"}
    assert "reason" not in entry


def test_best_gemm_keeps_the_fastest_size(monkeypatch):
    rates = {16: 3.0, 32: 5.0, 64: 4.0}
    monkeypatch.setattr(
        peak,
        "probe_gemm",
        lambda library, threads, size, min_time_s, precision: {
            "library": library,
            "gmacs_per_s": rates[size],
            "threads": threads,
            "size": size,
            "precision": precision,
        },
    )
    best = peak.best_gemm("torch", 2, (16, 32, 64), 0.0, "int8")
    assert (best["size"], best["gmacs_per_s"], best["threads"]) == (32, 5.0, 2)
    assert best["precision"] == "int8"
