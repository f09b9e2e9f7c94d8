"""harness.report.compare: cell matching, the bootstrap-CI regression gate, flags, exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from runfolders import LAPTOP, edit_rows, make_run

from harness.cli import main
from harness.report.compare import compare_rows, compare_runs, exit_code

PYTORCH_CELLS = {
    "mobilenet_v2/w1/r224/pytorch/eager/fp32/b1/t1",
    "standard_conv/w1/r224/pytorch/eager/fp32/b1/t1",
}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return make_run(tmp_path / "base", noise=0.10, n=60)


def test_a_run_against_itself_passes(base: Path) -> None:
    result = compare_runs(base, base)
    assert exit_code(result) == 0
    assert result.regressed == ()
    assert result.counts() == {"unchanged": 6, "not measured": 4}
    assert all(c.ratio == pytest.approx(1.0) for c in result.cells if c.verdict == "unchanged")
    assert result.only_base == result.only_new == ()


def test_one_slower_backend_fails_and_is_named(base: Path, tmp_path: Path) -> None:
    new = make_run(tmp_path / "new", noise=0.10, n=60, slower={"pytorch": 1.5})
    result = compare_runs(base, new)
    assert exit_code(result) == 1
    assert {c.cell for c in result.regressed} == PYTORCH_CELLS
    for cell in result.regressed:
        assert cell.ratio == pytest.approx(1.5)
        assert cell.ci_low > 1.05
    rows = compare_rows(result)
    assert [r["verdict"] for r in rows[:2]] == ["regressed", "regressed"]
    assert {r["cell"] for r in rows[:2]} == PYTORCH_CELLS
    assert rows[0]["change_pct"] == pytest.approx(50.0, abs=0.01)
    # The same change the other way round is an improvement, not a failure.
    back = compare_runs(new, base)
    assert exit_code(back) == 0
    assert {c.cell for c in back.cells if c.verdict == "improved"} == PYTORCH_CELLS


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_alone_is_not_flagged(base: Path, tmp_path: Path, seed: int) -> None:
    new = make_run(tmp_path / "new", seed=seed, noise=0.10, n=60)
    result = compare_runs(base, new)
    assert exit_code(result) == 0
    assert {c.verdict for c in result.cells} == {"unchanged", "not measured"}
    # The samples did differ: the ratios are not exactly 1.
    assert any(abs(c.ratio - 1.0) > 1e-3 for c in result.cells if c.ratio is not None)


def test_cells_on_one_side_are_listed(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", backends=("onnxruntime", "pytorch"), n=30)
    new = make_run(tmp_path / "new", backends=("onnxruntime", "tflite"), n=30)
    result = compare_runs(base, new)
    assert set(result.only_base) == PYTORCH_CELLS
    assert set(result.only_new) == {
        c.replace("pytorch/eager", "tflite/xnnpack") for c in PYTORCH_CELLS
    }
    rows = compare_rows(result)
    assert sum(r["verdict"] == "only in base" for r in rows) == 2
    assert sum(r["verdict"] == "only in new" for r in rows) == 2
    assert exit_code(result) == 0


def test_repeats_are_pooled(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", repeats=3, n=30)
    new = make_run(tmp_path / "new", seed=5, repeats=2, n=30)
    result = compare_runs(base, new)
    assert result.only_base == result.only_new == ()
    assert len(result.cells) == 10
    assert exit_code(result) == 0


def test_macs_params_parity_and_memory_changes_are_flagged(base: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    shutil.copytree(base, new)
    onnx_mv2 = "mobilenet_v2/w1/r224/onnxruntime/cpu/fp32/b1/t1"
    edit_rows(
        new,
        lambda row: row["cell_id"] == onnx_mv2,
        macs=310_000_000,
        params=3_600_000,
        top1_agree=0.5,
        rel_l2_err=3e-3,
        peak_rss_mb=150.0,
    )
    result = compare_runs(base, new)
    cell = next(c for c in result.cells if c.cell == onnx_mv2)
    assert cell.verdict == "unchanged"  # samples untouched
    text = " | ".join(cell.flags)
    assert "macs 300,774,272 → 310,000,000" in text
    assert "params 3,504,872 → 3,600,000" in text
    assert "top1_agree 1.000 → 0.500 (drop > 0.05)" in text
    assert "rel_l2_err 3.4e-07 → 3.0e-03 (crosses 0.0001)" in text
    assert "peak_rss_mb 110.0 → 150.0 (+36.4%)" in text
    others = [c for c in result.cells if c.cell != onnx_mv2]
    assert all(c.flags == () for c in others)
    assert exit_code(result) == 0


def test_other_weights_or_images_are_flagged(base: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    shutil.copytree(base, new)
    onnx_std = "standard_conv/w1/r224/onnxruntime/cpu/fp32/b1/t1"
    edit_rows(new, lambda row: row["cell_id"] == onnx_std, weights="own.h5 (sha256 feedfacecafe)")
    edit_rows(new, lambda row: row["model"] == "mobilenet_v2", inputs="photos: /other (8, 8)")
    result = compare_runs(base, new)
    flags = {c.cell: c.flags for c in result.cells}
    assert flags[onnx_std] == ("weights generated (seed 0) → own.h5 (sha256 feedfacecafe)",)
    for cell, cell_flags in flags.items():
        if cell.startswith("mobilenet_v2/"):
            assert cell_flags[0].startswith("inputs photos: /data/<val> (64 evaluation")
            assert cell_flags[0].endswith("→ photos: /other (8, 8)")
        elif cell != onnx_std:
            assert cell_flags == ()
    assert exit_code(result) == 0


def test_a_cell_that_stops_working_fails_the_gate(base: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    shutil.copytree(base, new)
    cell_id = "standard_conv/w1/r224/tflite/xnnpack/fp32/b1/t1"
    edit_rows(new, lambda row: row["cell_id"] == cell_id, status="timeout", reason="hung")
    result = compare_runs(base, new)
    assert [(c.cell, c.verdict) for c in result.regressed] == [(cell_id, "broken")]
    assert result.regressed[0].flags[0] == "status ok → timeout: hung"
    assert exit_code(result) == 1


def test_a_folder_with_two_runs_is_refused(tmp_path: Path) -> None:
    make_run(tmp_path / "results", LAPTOP, "20260301T101500", n=10)
    make_run(tmp_path / "results", LAPTOP, "20260302T101500", n=10)
    with pytest.raises(ValueError, match="expected one run, found 2 runs"):
        compare_runs(tmp_path / "results", tmp_path / "results")
    with pytest.raises(ValueError, match="expected one run, found no run"):
        compare_runs(tmp_path / "missing", tmp_path / "results")


def test_the_cli_prints_each_flag_as_a_phrase(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new"
    shutil.copytree(base, new)
    changes = {
        "mobilenet_v2/w1/r224/onnxruntime/cpu/fp32/b1/t1": {"macs": 310_000_000},
        "standard_conv/w1/r224/onnxruntime/cpu/fp32/b1/t1": {"top1_agree": 0.5},
        "mobilenet_v2/w1/r224/pytorch/eager/fp32/b1/t1": {"peak_rss_mb": 400.0},
    }
    for cell, change in changes.items():
        edit_rows(new, lambda row, cell=cell: row["cell_id"] == cell, **change)
    capsys.readouterr()
    assert main(["compare", str(base), str(new)]) == 0
    lines = capsys.readouterr().out.splitlines()
    flags = {
        cell: next(line for line in lines if cell in line).split("│")[-2].strip()
        for cell in changes
    }
    assert flags == {
        "mobilenet_v2/w1/r224/onnxruntime/cpu/fp32/b1/t1": "macs 300,774,272 → 310,000,000",
        "standard_conv/w1/r224/onnxruntime/cpu/fp32/b1/t1": (
            "top1_agree 1.000 → 0.500 (drop > 0.05)"
        ),
        "mobilenet_v2/w1/r224/pytorch/eager/fp32/b1/t1": "peak_rss_mb 260.0 → 400.0 (+53.8%)",
    }
