"""The runner: isolation, failures that cost one row, interruption, row contents."""

import csv
import json
import sys

import pytest

from harness.measure.timing import TimingConfig
from harness.results import COLUMNS, SAMPLES_CSV
from harness.runner import RunConfig, run

FAST = TimingConfig(warmup_time_s=0.05, warmup_iters=2, min_iters=5, min_time_s=0.1, max_time_s=1)


@pytest.fixture
def config(exported, tmp_path):
    exported("mobilenet_v2")  # artifacts come from the session's cache

    def make(**kw):
        base = {
            "models": ["mobilenet_v2"],
            "backends": ["onnxruntime"],
            "threads": [1],
            "timing": FAST,
            "cell_timeout_s": 60,
            "out": tmp_path / "results",
        }
        return RunConfig(**{**base, **kw})

    return make


def read_csv(path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_failure_costs_one_row(config):
    backends = [
        "fake_backends:RaisingBackend",
        "fake_backends:AbortingBackend",
        "fake_backends:HangingBackend",
        "onnxruntime",
        "coreml",
    ]
    state = run(config(backends=backends, cell_timeout_s=15))
    rows = {row["backend"].split(":")[-1]: row for row in state.rows}
    assert rows["RaisingBackend"]["status"] == "failed"
    assert "boom" in rows["RaisingBackend"]["reason"]
    assert rows["AbortingBackend"]["status"] == "failed"
    assert "SIGABRT" in rows["AbortingBackend"]["reason"]
    assert rows["HangingBackend"]["status"] == "timeout"
    assert rows["onnxruntime"]["status"] == "ok"
    if sys.platform != "darwin":
        assert rows["coreml"]["status"] == "skipped"
        assert "macOS" in rows["coreml"]["reason"]

    on_disk = read_csv(state.folder / "results.csv")
    assert [r["backend"] for r in on_disk] == backends
    assert list(on_disk[0])[: len(COLUMNS)] == list(COLUMNS)
    assert len(json.loads((state.folder / "results.json").read_text())) == len(backends)
    samples = read_csv(state.folder / SAMPLES_CSV)
    ok = rows["onnxruntime"]
    assert {s["cell_id"] for s in samples} == {ok["cell_id"]}
    assert len(samples) == ok["n_iter"]


def test_ok_row_is_complete_and_consistent(config):
    state = run(config(threads=[1]))
    (row,) = state.rows
    assert row["status"] == "ok"
    for column in COLUMNS:
        assert column in row, column
    for column in ("import_ms", "load_ms", "first_inference_ms", "rss_baseline_mb", "peak_rss_mb"):
        assert row[column] > 0, column
    assert row["latency_ms_min"] <= row["latency_ms_p50"] <= row["latency_ms_p90"]
    assert row["latency_ms_ci95_low"] <= row["latency_ms_p50"] <= row["latency_ms_ci95_high"]
    assert row["rss_load_mb"] >= row["rss_baseline_mb"] * 0.9
    assert row["peak_rss_mb"] >= row["rss_load_mb"]
    assert row["rss_delta_mb"] == pytest.approx(row["peak_rss_mb"] - row["rss_baseline_mb"])
    assert row["throughput_ips"] == pytest.approx(1000 / row["latency_ms_p50"])
    assert row["gmacs_per_s"] == pytest.approx(row["macs"] / row["latency_ms_p50"] / 1e6)
    assert row["macs"] == 300_774_272
    assert row["rel_l2_err"] < 1e-4
    assert row["top1_agree"] == 1.0
    assert 0 < row["cpu_util"] <= 1.25  # one thread asked, about one used
    env = json.loads((state.folder / "env.json").read_text())
    assert env["gemm_peak"]["1"]["gmacs_per_s"] > 0
    assert row["roofline_pct"] == pytest.approx(
        100 * row["gmacs_per_s"] / env["gemm_peak"]["1"]["gmacs_per_s"]
    )
    assert env["run"]["threads"] == [1]
    assert env["cell_thread_env"]["1"]["OMP_NUM_THREADS"] == "1"
    assert state.folder.parent.name == env["device_id"]


def test_batches_and_parity_flag(config):
    state = run(config(backends=["fake_backends:ZerosBackend", "onnxruntime"], batches=[3]))
    zeros, ort = state.rows
    assert zeros["status"] == "ok"
    assert "parity out of tolerance" in zeros["reason"]
    assert ort["batch"] == 3
    assert ort["rel_l2_err"] < 1e-4


def test_interrupted_run_keeps_finished_rows(config):
    seen = []

    def interrupt_on_second_cell(event, info):
        if event == "cell":
            seen.append(info["cell"])
            if len(seen) == 2:
                raise KeyboardInterrupt

    state = run(config(threads=[1, 2]), interrupt_on_second_cell)
    assert state.interrupted
    assert len(state.rows) == 1
    assert len(read_csv(state.folder / "results.csv")) == 1
    assert len(json.loads((state.folder / "results.json").read_text())) == 1


def test_repeats_interleave(config):
    from harness.runner import plan
    from harness.spec import load_spec

    cfg = config(backends=["onnxruntime", "tflite"], repeat=2)
    cells = plan(cfg, {"mobilenet_v2": load_spec("mobilenet_v2")})
    assert [(c.backend, c.repeat) for c in cells] == [
        ("onnxruntime", 0),
        ("tflite", 0),
        ("onnxruntime", 1),
        ("tflite", 1),
    ]


def test_roofline_uses_the_peak_of_each_rows_thread_count(config):
    state = run(config(threads=[1, 2]))
    env = json.loads((state.folder / "env.json").read_text())
    assert set(env["gemm_peak"]) == {"1", "2"}
    for threads, peak in env["gemm_peak"].items():
        assert peak["threads"] == int(threads)
        assert peak["gmacs_per_s"] == max(peak["candidates"].values())
        assert peak["candidates"][peak["library"]] == peak["gmacs_per_s"]
    for row in read_csv(state.folder / "results.csv"):
        assert row["status"] == "ok", row["reason"]
        peak = env["gemm_peak"][row["threads"]]["gmacs_per_s"]
        expected = 100 * float(row["gmacs_per_s"]) / peak
        assert float(row["roofline_pct"]) == pytest.approx(expected, rel=1e-4)


def test_a_spec_given_as_a_path_is_named_by_the_spec(config, tmp_path):
    from harness.spec import models_dir

    path = tmp_path / "my_copy.toml"
    path.write_text((models_dir() / "mobilenet_v2.toml").read_text())
    state = run(config(models=[str(path)]))
    (row,) = state.rows
    assert row["model"] == "mobilenet_v2"
    assert row["cell_id"].startswith("mobilenet_v2/")
    assert row["status"] == "ok"


def test_two_specs_with_one_name_are_refused(tmp_path):
    from harness.runner import load_specs
    from harness.spec import models_dir

    path = tmp_path / "again.toml"
    path.write_text((models_dir() / "mobilenet_v2.toml").read_text())
    with pytest.raises(ValueError, match="two specs are named 'mobilenet_v2'"):
        load_specs(["mobilenet_v2", str(path)])


def test_noisy_flag_follows_the_target_ci(config):
    from dataclasses import replace

    strict = run(config(timing=replace(FAST, target_ci_pct=0.001)))
    (row,) = strict.rows
    assert "noisy: 95% CI of the median wider than ±0.001%" in row["reason"]
    off = run(config(timing=replace(FAST, target_ci_pct=None)))
    assert "noisy" not in (off.rows[0]["reason"] or "")


def test_ctrl_c_ends_the_run_and_keeps_finished_rows(exported, tmp_path):
    """A real SIGINT to `mobilebench run`: exit 130, finished rows on disk, no traceback."""
    import signal
    import subprocess
    import time

    exported("mobilenet_v2")
    out = tmp_path / "results"
    argv = [sys.executable, "-m", "harness", "run", "--models", "mobilenet_v2",
            "--backends", "onnxruntime", "--threads", "1,2", "--batch", "1,2,4",
            "--min-time", "1", "--target-ci", "0", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    results = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(out.glob("*/*/results.csv"))
        if found and len(read_csv(found[0])) >= 1:
            results = found[0]
            break
        time.sleep(0.2)
    assert results is not None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    rows = read_csv(results)
    assert 1 <= len(rows) < 6
    assert all(r["status"] == "ok" for r in rows)
    assert len(json.loads((results.parent / "results.json").read_text())) == len(rows)


def test_precision_is_a_dimension_with_its_own_peak_accuracy_and_skips(config):
    """fp32 and int8 cells side by side: the int8 file, its accuracy, an int8 roofline."""
    state = run(config(backends=["onnxruntime", "keras"], precisions=["fp32", "int8"]))
    rows = {(r["backend"], r["precision"]): r for r in state.rows}
    assert list(rows) == [
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8"),
        ("keras", "fp32"),
        ("keras", "int8"),
    ]
    assert rows["keras", "int8"]["status"] == "skipped"
    assert "deploys through TFLite" in rows["keras", "int8"]["reason"]
    fp32, int8 = rows["onnxruntime", "fp32"], rows["onnxruntime", "int8"]
    assert fp32["status"] == int8["status"] == "ok", (fp32["reason"], int8["reason"])
    assert int8["size_mb"] < fp32["size_mb"] / 2  # int8 weights: about a quarter
    for row in (fp32, int8):
        for column in ("top1_agree", "top5_agree", "rel_l2_err", "psnr_db", "max_abs_err"):
            assert row[column] is not None, column
        assert row["top5_agree"] >= row["top1_agree"]
    assert fp32["psnr_db"] > int8["psnr_db"]
    assert fp32["rel_l2_err"] < 1e-4 < int8["rel_l2_err"]
    env = json.loads((state.folder / "env.json").read_text())
    assert env["gemm_peak"] == env["gemm_peaks"]["fp32"]
    int8_peak = env["gemm_peaks"]["int8"]["1"]
    if int8_peak["gmacs_per_s"]:
        expected = 100 * int8["gmacs_per_s"] / int8_peak["gmacs_per_s"]
        assert int8["roofline_pct"] == pytest.approx(expected)
    else:
        assert int8["roofline_pct"] is None
        assert "no roofline: no int8 GEMM peak" in int8["reason"]
