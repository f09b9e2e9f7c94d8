"""harness.report.load and pytest_bench: run folders and pytest-benchmark JSON to tidy frames."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from runfolders import LAPTOP, MACS, PI5, make_run

from harness.report.load import key_tuple, load_runs, write_merged
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
