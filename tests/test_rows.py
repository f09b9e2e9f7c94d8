"""Row arithmetic: derived numbers, flags and skip reasons, from plain values."""

import pytest

from harness.parity import NO_REFERENCE
from harness.rows import derive, flags, memory_shortfall, size_mb, skip_reason

OK = {"max_abs_err": 0.0, "rel_l2_err": 0.0, "top1_agree": 1.0, "cpu_util": 1.0, "threads": 1}
STEADY = [10.0] * 20


def test_derive():
    row = {"macs": 1_000_000_000, "batch": 2, "peak_rss_mb": 150.0, "rss_baseline_mb": 100.0}
    derived = derive(row, STEADY, peak_gmacs=400.0)
    assert derived["latency_ms_p50"] == 10.0
    assert derived["throughput_ips"] == pytest.approx(200.0)
    assert derived["gmacs_per_s"] == pytest.approx(200.0)
    assert derived["roofline_pct"] == pytest.approx(50.0)
    assert derived["rss_delta_mb"] == 50.0
    assert derive(row, STEADY, peak_gmacs=None)["roofline_pct"] is None


def test_flags():
    assert flags(OK, STEADY, 2.5) == []
    assert flags({**OK, "cpu_util": 3.9}, STEADY, 2.5) == ["used 3.9 cores with --threads 1"]
    assert flags({**OK, "rel_l2_err": None, "top1_agree": None}, STEADY, 2.5) == [NO_REFERENCE]
    assert "parity out of tolerance" in flags({**OK, "top1_agree": 0.5}, STEADY, 2.5)[0]
    above = flags({**OK, "gmacs_per_s": 120.0, "roofline_pct": 110.0}, STEADY, 2.5)
    assert above[0].startswith("above the device's measured GEMM peak")
    no_peak = flags({**OK, "gmacs_per_s": 120.0, "roofline_pct": None}, STEADY, 2.5)
    assert no_peak[0].startswith("no roofline")


def test_noisy_is_judged_against_the_runs_target_ci():
    # median 10, CI about ±5%: noisy for a 2.5% target, fine for a 10% one, unchecked when off
    samples = [9.5, 10.0, 10.5] * 10
    assert flags(OK, samples, 2.5) == ["noisy: 95% CI of the median wider than ±2.5%"]
    assert flags(OK, samples, 10.0) == []
    assert flags(OK, samples, None) == []


def test_memory_shortfall():
    assert memory_shortfall(14 * 2**20, 700.0) is None  # MobileNetV2: fits
    reason = memory_shortfall(176 * 2**20, 700.0)  # the standard-conv twin: does not
    assert reason == "needs about 928 MiB, only 700 MiB available"
    assert memory_shortfall(176 * 2**20, None) is None


def test_skip_reason_names_the_mode_or_the_missing_framework():
    from harness.backends import REGISTRY

    assert skip_reason(REGISTRY["onnxruntime"], "cpu") in (
        None,
        REGISTRY["onnxruntime"].available()[1],
    )
    ok, reason = REGISTRY["coreml"].mode_available("cpu_only")
    if not ok:
        assert skip_reason(REGISTRY["coreml"], "cpu_only") == reason


def test_a_batch_above_the_files_bound_is_skipped_with_the_bound():
    from harness.backends import REGISTRY

    cls = REGISTRY["onnxruntime"]
    if not cls.available()[0]:
        pytest.skip(cls.available()[1])
    assert skip_reason(cls, "cpu", 1025) == "batch 1025 is above the 1024 the onnx file accepts"
    assert skip_reason(cls, "cpu", 1024) is None


def test_each_precision_is_held_to_its_own_tolerance():
    int8 = {**OK, "precision": "int8", "rel_l2_err": 0.3, "top1_agree": 0.6}
    assert flags(int8, STEADY, None) == []
    assert flags({**int8, "precision": "fp32"}, STEADY, None)[0].startswith(
        "parity out of tolerance"
    )
    low = flags({**int8, "top1_agree": 0.1}, STEADY, None)
    assert low == [
        "accuracy out of tolerance (rel_l2_err 0.3, top1_agree 0.10; int8 needs "
        "rel_l2_err < 0.8 and top1_agree >= 0.15)"
    ]


def test_what_actually_ran_and_a_missing_peak_are_said():
    row = {**OK, "precision": "fp16", "compute_note": "computed in fp32", "gmacs_per_s": 5.0}
    found = flags({**row, "roofline_pct": None}, STEADY, None, "no fp16 GEMM peak (no fp16)")
    assert found == ["computed in fp32", "no roofline: no fp16 GEMM peak (no fp16)"]


def test_size_mb():
    assert size_mb(3 * 2**20) == 3.0
    assert size_mb(None) is None


def test_precision_skips_name_the_format_the_device_or_the_compile_step(monkeypatch):
    from harness.backends import REGISTRY
    from harness.formats import get_format

    keras = REGISTRY["keras"]
    if keras.available()[0]:
        assert "deploys through TFLite" in skip_reason(keras, "default", 1, "int8")
    torch_cls = REGISTRY["pytorch"]
    monkeypatch.setattr(torch_cls, "precision_available", classmethod(lambda cls, p: (True, "")))
    monkeypatch.setattr(torch_cls, "mode_available", classmethod(lambda cls, m: (True, "")))
    missing = get_format("pytorch").missing("int8")  # None where torchao is installed
    assert skip_reason(torch_cls, "eager", 1, "int8", compile_ok=True) == missing
    excluded = skip_reason(torch_cls, "eager", 1, "int8", compile_ok=False)
    assert excluded.startswith("the int8 pytorch file runs through torch.compile")
    assert excluded.endswith("(--no-compile)")
    assert "bf16, not fp16" in skip_reason(torch_cls, "eager", 1, "fp16")  # no fp16 torch file
    monkeypatch.setattr(
        torch_cls, "precision_available", classmethod(lambda cls, p: (False, "no native bf16"))
    )
    assert skip_reason(torch_cls, "eager", 1, "bf16") == "no native bf16"
