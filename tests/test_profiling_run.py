"""``mobilebench profile`` end to end: per-layer rows per cell, skips, failures, the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.macs import count
from harness.profiling import run as profile_run_module
from harness.profiling.layers import UNATTRIBUTED, spec_layers
from harness.spec import load_spec

ARGS = ["profile", "--threads", "1", "--iterations", "2"]


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "profile.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _cells(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    cells: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        cells.setdefault(row["cell_id"], []).append(row)
    return cells


@pytest.fixture(scope="module")
def profiled(exported, tmp_path_factory) -> tuple[int, Path]:
    """One profile run over both models on onnxruntime, pytorch and tflite (1 thread)."""
    pytest.importorskip("ai_edge_litert")
    exported("mobilenet_v2")
    exported("standard_conv")
    out = tmp_path_factory.mktemp("profile")
    code = main([*ARGS, "--backends", "onnxruntime,pytorch,tflite", "--out", str(out)])
    (folder,) = out.glob("*/*/")
    return code, folder


def test_every_profiled_cell_has_every_spec_layer_once_and_drops_no_event(profiled):
    code, folder = profiled
    assert code == 0
    cells = _cells(_rows(folder))
    assert len(cells) == 6  # 2 models x 3 backends
    ok = {cid: rows for cid, rows in cells.items() if rows[0]["status"] == "ok"}
    assert {rows[0]["backend"] for rows in ok.values()} == {"onnxruntime", "pytorch"}
    for rows in ok.values():
        spec = load_spec(rows[0]["model"])
        layers = [layer.name for layer in spec_layers(spec)]
        assert [r["layer"] for r in rows] == [*layers, UNATTRIBUTED]
        assert sum(int(float(r["macs"])) for r in rows) == count(spec).macs
        first = rows[0]
        assert int(first["mapped_events"]) + int(first["unattributed_events"]) == int(
            first["events"]
        )
        assert sum(float(r["time_share"]) for r in rows) == pytest.approx(1.0)
        assert float(first["overhead_ratio"]) == pytest.approx(
            float(first["profiled_ms"]) / float(first["unprofiled_p50_ms"])
        )
        assert all(float(r["ms_p50"]) > 0 for r in rows if float(r["macs"]) > 0)
        assert first["weights"] == "generated (seed 0)"


def test_roles_follow_the_model(profiled):
    _, folder = profiled
    for rows in _cells(_rows(folder)).values():
        if rows[0]["status"] != "ok":
            continue
        roles = {r["role"] for r in rows if r["layer"].endswith((".dw", ".conv"))}
        expected = "depthwise 3x3" if rows[0]["model"] == "mobilenet_v2" else "standard 3x3"
        assert roles == {expected}


def test_a_runtime_without_a_profiler_is_skipped_with_the_missing_api(profiled):
    _, folder = profiled
    tflite = [r for r in _rows(folder) if r["backend"] == "tflite"]
    assert len(tflite) == 2
    for row in tflite:
        assert row["status"] == "skipped"
        assert "Interpreter has no per-op profiling API" in row["reason"]


def test_the_run_folder_has_env_json_and_the_report_section(profiled):
    _, folder = profiled
    env = json.loads((folder / "env.json").read_text())
    assert env["run"]["profile_iterations"] == 2
    assert env["gemm_peaks"]["fp32"]["1"]
    rows = _rows(folder)
    as_json = json.loads((folder / "profile.json").read_text())
    assert [(r["cell_id"], r["layer"]) for r in as_json] == [
        (r["cell_id"], r["layer"] or None) for r in rows
    ]
    page = (folder / "report.html").read_text()
    assert "Where the time goes" in page
    assert "0 row(s); profiles of 4 cell(s) from 1 profile run(s)" in page
    assert "Interpreter has no per-op profiling API" in page


def test_a_failing_profiler_costs_only_its_own_cell(exported, tmp_path, monkeypatch):
    """A profile child that fails (here: reported failed for pytorch) is one failed row."""
    exported("mobilenet_v2")
    real = profile_run_module.in_child

    def failing_pytorch(fn, args, **kwargs):
        if args[0].backend == "pytorch":
            return {"status": "failed", "reason": "ProfileError: block3.dw has no event"}
        return real(fn, args, **kwargs)

    monkeypatch.setattr(profile_run_module, "in_child", failing_pytorch)
    args = [*ARGS, "--models", "mobilenet_v2", "--backends", "pytorch,onnxruntime"]
    assert main([*args, "--out", str(tmp_path)]) == 1
    (folder,) = tmp_path.glob("*/*/")
    cells = _cells(_rows(folder))
    statuses = {rows[0]["backend"]: rows[0]["status"] for rows in cells.values()}
    assert statuses == {"pytorch": "failed", "onnxruntime": "ok"}
    failed = next(rows for rows in cells.values() if rows[0]["backend"] == "pytorch")
    assert len(failed) == 1
    assert failed[0]["reason"] == "ProfileError: block3.dw has no event"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--precision", "fp8"], "unknown precision 'fp8'"),
        (["--backends", "caffe"], "caffe"),
        (["--iterations", "0"], "--iterations must be >= 1"),
        (["--models", "resnet50"], "unknown model 'resnet50'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, needle):
    assert main(["profile", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1
    assert not list(tmp_path.iterdir())
