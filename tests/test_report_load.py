"""harness.report.load and pytest_bench: run folders and pytest-benchmark JSON to tidy frames."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from runfolders import LAPTOP, MACS, PI5, make_run, peak_gmacs

from harness.report.load import (
    PEAK_FRAME_COLUMNS,
    RUN_FRAME_COLUMNS,
    gemm_peaks,
    key_tuple,
    load_frames,
    load_runs,
    write_merged,
)
from harness.report.pytest_bench import SOURCE
from harness.results import ALL_COLUMNS

FIXTURE = Path(__file__).parent / "fixtures" / "pytest_benchmark.json"
N = 40  # samples per cell


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """Two devices at different versions, plus an older run with a shorter column set."""
    root = tmp_path / "results"
    make_run(root, LAPTOP, "20260301T101500", n=N)
    make_run(root, PI5, "20260301T120000", seed=1, n=N, repeats=2)
    make_run(root, LAPTOP, "20250101T090000", old_columns=True)
    return root


def test_loads_devices_versions_and_old_columns(results_dir: Path) -> None:
    results, samples, envs, problems = load_runs([results_dir])
    assert problems == []
    assert sorted(envs) == [
        "pi-0c41d7e2/20260301T120000",
        "x86-5f3a9c21/20250101T090000",
        "x86-5f3a9c21/20260301T101500",
    ]
    assert set(ALL_COLUMNS) <= set(results.columns)
    # 6 measured + 4 not-run cells per run; the Pi repeats its measured cells twice.
    assert results.groupby("run_key").size().to_dict() == {
        "pi-0c41d7e2/20260301T120000": 16,
        "x86-5f3a9c21/20250101T090000": 10,
        "x86-5f3a9c21/20260301T101500": 10,
    }
    by_device = results.groupby("device_id")["version_torch"].unique().to_dict()
    assert by_device == {"pi-0c41d7e2": ["2.12.1"], "x86-5f3a9c21": ["2.13.0"]}
    assert set(results["cpu_model"]) == {LAPTOP.cpu_model, PI5.cpu_model}

    old = results[results["run_id"] == "20250101T090000"]
    assert old["roofline_pct"].isna().all()  # a column the older harness did not write
    assert old["gemm_peak_gmacs"].isna().all()
    assert (old["notes"] == "older harness").all()  # an unknown column is kept
    assert (old["repeat"] == 0).all()
    assert "mobilenet_v2/w1/r224/onnxruntime/cpu/fp32/b1/t1" in set(old["cell_id"])

    new = results[results["run_id"] == "20260301T101500"]
    assert (new["gemm_peak_gmacs"] == LAPTOP.gemm_gmacs).all()
    assert new.loc[new["status"] == "ok", "latency_ms_p50"].gt(0).all()
    assert set(new.loc[new["status"] != "ok", "reason"]) == {
        "coremltools is not installed",
        "RuntimeError: <Graph> node 'block3.dw' & friends: out of memory",
    }
    # Raw samples: 6 cells x N on the laptop, 6 x 2 repeats x N on the Pi, none for the old run.
    assert samples.groupby("run_key").size().to_dict() == {
        "pi-0c41d7e2/20260301T120000": 12 * N,
        "x86-5f3a9c21/20260301T101500": 6 * N,
    }
    assert set(samples.columns) == {"run_key", "device_id", "cell_id", "repeat", "iteration", "ms"}


def test_gemm_peak_follows_each_rows_thread_count(tmp_path: Path) -> None:
    run = make_run(tmp_path, LAPTOP, threads=(1, 2), n=10)
    frames = load_frames([run])
    by_threads = frames.results.groupby("threads")["gemm_peak_gmacs"].unique()
    assert {t: list(v) for t, v in by_threads.items()} == {1: [110.0], 2: [220.0]}
    assert frames.peaks[["threads", "gmacs_per_s", "library", "precision", "size"]].to_dict(
        orient="records"
    ) == [
        {
            "threads": 1,
            "gmacs_per_s": 110.0,
            "library": "torch 2.13.0",
            "precision": "fp32",
            "size": 1024,
        },
        {
            "threads": 2,
            "gmacs_per_s": 220.0,
            "library": "torch 2.13.0",
            "precision": "fp32",
            "size": 1024,
        },
    ]
    assert frames.peaks["candidates"].iloc[0] == (
        "torch 2.13.0 110.0, onnxruntime 1.32.0 104.5, numpy (openblas 0.3.29) 88.0"
    )


def test_old_single_gemm_peak_counts_for_its_own_thread_count(tmp_path: Path) -> None:
    run = make_run(tmp_path, PI5, threads=(2, 4), n=10, old_peak=True)
    frames = load_frames([run])
    assert frames.problems == ()
    results = frames.results
    assert (results.loc[results["threads"] == 2, "gemm_peak_gmacs"] == peak_gmacs(PI5, 2)).all()
    assert results.loc[results["threads"] == 4, "gemm_peak_gmacs"].isna().all()
    assert frames.peaks[["device_id", "threads", "gmacs_per_s", "library", "size"]].to_dict(
        orient="records"
    ) == [
        {
            "device_id": PI5.device_id,
            "threads": 2,
            "gmacs_per_s": 36.0,
            "library": "openblas 0.3.x",
            "size": 2048,
        }
    ]


@pytest.mark.parametrize(
    ("peak", "rates"),
    [
        ({"gmacs_per_s": 91.0, "size": 2048, "threads": 2, "library": "openblas"}, {2: 91.0}),
        ({"1": {"gmacs_per_s": 52.0, "threads": 1}, "2": {"gmacs_per_s": 95}}, {1: 52.0, 2: 95.0}),
        ({"1": {"gmacs_per_s": None}, "2": {"gmacs_per_s": 0}, "x": {"gmacs_per_s": 3}}, {}),
        ({"4": "fast", "8": {"gmacs_per_s": "n/a", "threads": 8}}, {}),
        ({"gmacs_per_s": 91.0}, {}),  # a single peak that does not say its thread count
        (None, {}),
    ],
)
def test_gemm_peaks_reads_both_shapes(peak: object, rates: dict[int, float]) -> None:
    assert {t: p["gmacs_per_s"] for t, p in gemm_peaks({"gemm_peak": peak}).items()} == rates


def test_frames_describe_runs_peaks_and_versions(results_dir: Path) -> None:
    frames = load_frames([results_dir])
    keys = [
        "pi-0c41d7e2/20260301T120000",
        "x86-5f3a9c21/20250101T090000",
        "x86-5f3a9c21/20260301T101500",
    ]
    assert list(frames.runs.columns) == list(RUN_FRAME_COLUMNS)
    assert frames.runs["run_key"].tolist() == keys
    laptop = frames.runs.set_index("run_key").loc["x86-5f3a9c21/20260301T101500"]
    assert laptop[["device_id", "device_name", "cpu_model", "source"]].tolist() == [
        LAPTOP.device_id,
        LAPTOP.device_name,
        LAPTOP.cpu_model,
        "mobilebench",
    ]
    assert laptop["ram_total_mb"] == 15872
    assert laptop["threads"] == "1"
    assert laptop["settings"] == (
        'min_time_s=1.0; max_time_s=10.0; precisions=["fp32"]; compile_variants=true'
    )
    assert laptop["run_dir"] == str(results_dir / LAPTOP.device_id / "20260301T101500")
    # The older run recorded no GEMM peak: it has no row in the peaks frame.
    assert list(frames.peaks.columns) == list(PEAK_FRAME_COLUMNS)
    assert frames.peaks[["run_key", "threads", "gmacs_per_s"]].values.tolist() == [
        [keys[0], 1, PI5.gemm_gmacs],
        [keys[2], 1, LAPTOP.gemm_gmacs],
    ]
    versions = frames.versions.set_index("run_key")
    assert sorted(versions.columns) == sorted(LAPTOP.versions)
    assert versions["torch"].tolist() == ["2.12.1", "2.13.0", "2.13.0"]


def test_accepts_a_run_folder_or_any_parent(results_dir: Path) -> None:
    run = results_dir / LAPTOP.device_id / "20260301T101500"
    for path in (run, results_dir / LAPTOP.device_id):
        results, _, envs, problems = load_runs([path])
        assert problems == []
        assert "x86-5f3a9c21/20260301T101500" in envs
        assert set(results["device_id"]) == {LAPTOP.device_id}


def _truncate_results(run: Path) -> None:
    text = (run / "results.csv").read_text()
    (run / "results.csv").write_text(text[: len(text) - 200])


def _garble_results(run: Path) -> None:
    (run / "results.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff\xfe")


def _bad_header(run: Path) -> None:
    (run / "results.csv").write_text("a,b,c\n1,2,3\n")


def _bad_env(run: Path) -> None:
    (run / "env.json").write_text('{"device_id": "x86-5f3a9c21", "versions": {')


def _truncate_samples(run: Path) -> None:
    text = (run / "samples.csv").read_text()
    (run / "samples.csv").write_text(text[: text.rindex(",")])


def _not_a_run(run: Path) -> None:
    for child in run.iterdir():
        child.unlink()
    (run / "notes.txt").write_text("not a run\n")


@pytest.mark.parametrize(
    ("damage", "keeps_rows", "keeps_samples"),
    [
        (_truncate_results, False, False),
        (_garble_results, False, False),
        (_bad_header, False, False),
        (_not_a_run, False, False),
        (_bad_env, True, True),
        (_truncate_samples, True, False),
    ],
)
def test_one_bad_input_is_one_problem(
    results_dir: Path, damage: Callable[[Path], None], keeps_rows: bool, keeps_samples: bool
) -> None:
    run = results_dir / LAPTOP.device_id / "20260301T101500"
    damage(run)
    results, samples, _, problems = load_runs([results_dir])
    assert len(problems) == 1, problems
    assert str(run) in problems[0]
    assert (results["run_id"] == "20260301T101500").any() == keeps_rows
    assert (samples["run_key"] == "x86-5f3a9c21/20260301T101500").any() == keeps_samples
    # The other runs load as if nothing happened.
    assert (results["run_id"] == "20260301T120000").sum() == 16
    assert (results["run_id"] == "20250101T090000").sum() == 10


def test_bad_paths_and_bad_json_are_problems(tmp_path: Path) -> None:
    bad_json = tmp_path / "bench.json"
    bad_json.write_text("{not json")
    not_bench = tmp_path / "other.json"
    not_bench.write_text(json.dumps({"hello": 1}))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hi")
    results, samples, envs, problems = load_runs(
        [bad_json, not_bench, text_file, tmp_path / "missing"]
    )
    assert len(problems) == 4
    assert results.empty
    assert samples.empty
    assert envs == {}
    assert set(ALL_COLUMNS) <= set(results.columns)


def test_write_merged_round_trips(results_dir: Path, tmp_path: Path) -> None:
    results, *_ = load_runs([results_dir])
    csv_path, json_path = write_merged(results, tmp_path / "merged")
    back = pd.read_csv(csv_path)
    assert list(back.columns) == list(results.columns)
    assert len(back) == len(results)
    pd.testing.assert_series_equal(
        back["latency_ms_p50"], results["latency_ms_p50"], check_dtype=False
    )
    rows = json.loads(json_path.read_text())
    assert len(rows) == len(results)
    assert rows[0]["version_torch"] in {"2.12.1", "2.13.0"}
    assert any(row["latency_ms_p50"] is None for row in rows)  # NaN -> null
    # Merged files written inside results/ are not read back as a run.
    write_merged(results, results_dir)
    again, _, envs, problems = load_runs([results_dir])
    assert problems == []
    assert len(envs) == 3
    assert len(again) == len(results)


def test_pytest_benchmark_json_becomes_labelled_rows(results_dir: Path) -> None:
    results, samples, envs, problems = load_runs([results_dir, FIXTURE])
    assert problems == []
    bench = results[results["source"] == SOURCE].set_index("backend")
    assert len(bench) == 4
    ort = results[(results["source"] == SOURCE) & (results["model"] == "standard_conv")].iloc[0]
    assert ort["backend"] == "onnxruntime"
    assert ort["latency_ms_p50"] == pytest.approx(67.540)  # seconds -> ms
    assert ort["latency_ms_std"] == pytest.approx(2.790)
    assert ort["n_iter"] == 30
    assert ort["macs"] == MACS["standard_conv"]
    assert ort["gmacs_per_s"] == pytest.approx(MACS["standard_conv"] / 0.06754 / 1e9)
    assert ort["cell_id"] == "standard_conv/w1/r224/onnxruntime/cpu/fp32/b1/t1"
    # From params only, then from the test id's tokens.
    assert bench.loc["pytorch", "model"] == "mobilenet_v2"
    assert bench.loc["tflite", ["model", "batch", "threads", "mode"]].tolist() == [
        "mobilenet_v2",
        1,
        1,
        "xnnpack",
    ]
    assert set(results["source"]) == {"mobilebench", SOURCE}
    env = envs[ort["run_key"]]
    assert env["source"] == SOURCE
    assert env["versions"]["pytest-benchmark"] == "5.1.0"
    assert ort["cpu_model"] == "11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz"
    # --benchmark-save-data timings become samples, in ms.
    raw = samples[samples["run_key"] == ort["run_key"]]["ms"].tolist()
    assert raw == pytest.approx([10.212, 10.403, 10.593, 11.043, 10.301, 10.712])


def test_key_tuple_matches_numbers_written_differently() -> None:
    a = {"model": "m", "width": 1, "resolution": "224", "backend": "b", "batch": 1.0}
    b = {"model": "m", "width": 1.0, "resolution": 224, "backend": "b", "batch": "1"}
    assert key_tuple(a) == key_tuple(b)


def test_report_imports_no_ml_framework() -> None:
    code = (
        "import sys, harness.report.load, harness.report.html, harness.report.compare\n"
        "banned = {'torch', 'tensorflow', 'keras', 'onnx', 'onnxruntime', 'coremltools',"
        " 'ai_edge_litert'}\n"
        "print(sorted(banned & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
