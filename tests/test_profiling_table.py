"""Profile rows from attributed layer times (pure), and which backends have a profiler."""

from __future__ import annotations

import importlib.util

import pytest

from harness.profiling.layers import UNATTRIBUTED, LayerTimes, SpecLayer
from harness.profiling.support import PROFILED_BACKENDS, profile_skip_reason
from harness.profiling.table import PROFILE_COLUMNS, ROW_COLUMNS, profile_rows, role_shares

LAYERS = (
    SpecLayer("stem", "stem", 1_000_000),
    SpecLayer("block0.dw", "depthwise 3x3", 300_000),
    SpecLayer("block0.project", "project 1x1", 2_000_000),
    SpecLayer("pool", "pool", 0),
    SpecLayer("classifier", "classifier", 500_000),
)


def times(**extra) -> LayerTimes:
    """Three iterations; ``block0.project`` is missing from the second (0 ms there)."""
    return LayerTimes(
        iterations=[
            {"stem": 1.0, "block0.dw": 2.0, "block0.project": 4.0, "pool": 0.5, UNATTRIBUTED: 0.5},
            {"stem": 3.0, "block0.dw": 2.5, "pool": 0.5, UNATTRIBUTED: 1.0},
            {"stem": 2.0, "block0.dw": 1.0, "block0.project": 5.0, "pool": 0.5, UNATTRIBUTED: 0.7},
        ],
        events=20,
        mapped_events=17,
        unattributed_events=3,
        unattributed_names=["aten::add", "aten::flatten"],
        source="test",
        **extra,
    )


@pytest.fixture
def rows():
    return profile_rows(times(), LAYERS, unprofiled_p50_ms=8.0, peak_gmacs_per_s=None, batch=2)


def by_layer(rows):
    return {row["layer"]: row for row in rows}


def test_one_row_per_layer_in_model_order_then_unattributed(rows):
    assert [row["layer"] for row in rows] == [*(layer.name for layer in LAYERS), UNATTRIBUTED]
    assert all(tuple(row) == ROW_COLUMNS for row in rows)


def test_medians_count_a_missing_iteration_as_zero(rows):
    ms = {name: row["ms_p50"] for name, row in by_layer(rows).items()}
    assert ms == {
        "stem": 2.0,
        "block0.dw": 2.0,
        "block0.project": 4.0,  # median of 4, 0, 5
        "pool": 0.5,
        "classifier": 0.0,
        UNATTRIBUTED: 0.7,
    }


def test_a_layer_without_events_keeps_its_row_with_a_note(rows):
    classifier = by_layer(rows)["classifier"]
    assert classifier["ms_p50"] == 0.0
    assert classifier["gmacs_per_s"] is None
    assert classifier["time_share"] == 0.0
    assert "no profiled event" in classifier["note"]
    assert by_layer(rows)["stem"]["note"] is None


def test_shares_sum_to_one(rows):
    assert sum(row["time_share"] for row in rows) == pytest.approx(1.0)
    assert by_layer(rows)["block0.project"]["time_share"] == pytest.approx(4.0 / 9.2)


def test_macs_scale_with_batch_and_give_throughput(rows):
    stem = by_layer(rows)["stem"]
    assert stem["macs"] == 2_000_000
    assert stem["gmacs_per_s"] == pytest.approx(2_000_000 / 2e-3 / 1e9)
    assert by_layer(rows)["pool"]["gmacs_per_s"] is None  # 0 MACs


def test_profiled_total_and_overhead_ratio(rows):
    # iteration totals 8.0, 7.0, 9.2 -> median 8.0; unprofiled median 8.0
    assert {row["profiled_ms"] for row in rows} == {8.0}
    assert {row["overhead_ratio"] for row in rows} == {1.0}
    halved = profile_rows(times(), LAYERS, 4.0, None, 1)
    assert halved[0]["overhead_ratio"] == 2.0


def test_unattributed_row(rows):
    row = by_layer(rows)[UNATTRIBUTED]
    assert (row["role"], row["macs"], row["gmacs_per_s"]) == ("unattributed", 0, None)
    assert row["note"] == "events: aten::add, aten::flatten"
    assert (row["events"], row["mapped_events"], row["unattributed_events"]) == (20, 17, 3)
    assert row["iterations"] == 3


def test_peak_pct_only_with_a_peak(rows):
    assert all(row["peak_pct"] is None for row in rows)
    with_peak = by_layer(profile_rows(times(), LAYERS, 8.0, 10.0, 2))
    assert with_peak["stem"]["peak_pct"] == pytest.approx(100 * 1.0 / 10.0)
    assert with_peak["pool"]["peak_pct"] is None


def test_role_shares_add_up_and_follow_model_order(rows):
    shares = role_shares(rows)
    assert list(shares) == [
        "stem",
        "depthwise 3x3",
        "project 1x1",
        "pool",
        "classifier",
        "unattributed",
    ]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["unattributed"] == pytest.approx(0.7 / 9.2)


def test_unknown_names_and_empty_profiles_are_refused():
    stray = LayerTimes(iterations=[{"stem": 1.0, "block9.dw": 1.0}])
    with pytest.raises(ValueError, match=r"block9\.dw"):
        profile_rows(stray, LAYERS, 1.0, None, 1)
    with pytest.raises(ValueError, match="iteration"):
        profile_rows(LayerTimes(), LAYERS, 1.0, None, 1)


def test_profile_columns_start_with_the_cell_identity():
    assert PROFILE_COLUMNS[:2] == ("run_id", "device_id")
    assert PROFILE_COLUMNS[-2:] == ("status", "reason")
    assert set(ROW_COLUMNS) <= set(PROFILE_COLUMNS)


# -- which backends have a profiler ------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_onnxruntime_cpu_is_profiled_at_every_precision(precision):
    assert "onnxruntime" in PROFILED_BACKENDS
    assert profile_skip_reason("onnxruntime", "cpu", precision) is None
    assert "CoreML execution provider" in profile_skip_reason("onnxruntime", "coreml", precision)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_pytorch_eager_is_profiled(precision):
    assert "pytorch" in PROFILED_BACKENDS
    assert profile_skip_reason("pytorch", "eager", precision) is None


@pytest.mark.parametrize(
    ("mode", "precision", "named"),
    [
        ("compile", "fp32", "torch.compile"),
        ("eager", "int8", "inductor"),
        ("mps", "fp32", "torch.mps.profiler"),
    ],
)
def test_pytorch_compiled_and_mps_paths_are_skipped(mode, precision, named):
    assert named in profile_skip_reason("pytorch", mode, precision)


def test_tflite_interpreter_has_no_profiling_api():
    reason = profile_skip_reason("tflite", "xnnpack", "fp32")
    assert "ai_edge_litert.interpreter.Interpreter" in reason
    if importlib.util.find_spec("ai_edge_litert") is None:
        pytest.skip("ai_edge_litert is not installed")
    from ai_edge_litert.interpreter import Interpreter

    assert not [name for name in dir(Interpreter) if "profil" in name.lower()]


def test_coreml_offers_estimates_and_whole_predict_time_only():
    reason = profile_skip_reason("coreml", "all", "fp32")
    assert "MLComputePlan" in reason
    assert "last_predict_duration_in_nano_seconds" in reason
    if importlib.util.find_spec("coremltools") is None:
        pytest.skip("coremltools is not installed")
    from coremltools.models import MLModel
    from coremltools.models.compute_plan import MLComputePlan

    assert hasattr(MLComputePlan, "get_estimated_cost_for_mlprogram_operation")
    assert hasattr(MLModel, "last_predict_duration_in_nano_seconds")
    assert not [name for name in dir(MLModel) if "profil" in name.lower()]


def test_keras_names_the_trace_only_profiler():
    reason = profile_skip_reason("keras", "graph", "fp32")
    assert "tf.profiler.experimental" in reason
    assert "XSpace" in reason


def test_an_unknown_backend_has_no_profiler():
    assert "nope" in profile_skip_reason("nope", "default", "fp32")
