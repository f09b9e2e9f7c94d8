"""The precision dimension in the report and in compare: peaks per precision, the precision
section's numbers (recomputed here from the raw samples), no cross-precision pairing,
the Pareto plot, old run folders, and compare matching each precision with itself."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from runfolders import (
    LAPTOP,
    NO_FP16,
    PI5,
    edit_rows,
    html_rows,
    make_run,
    peak_gmacs,
    scale_samples,
)

from harness.cli import main
from harness.report import tables
from harness.report.compare import compare_rows, compare_runs, exit_code
from harness.report.html import PRECISION_SECTION, SECTIONS, render_report, sections
from harness.report.load import Frames, gemm_peaks, load_frames, peak_entries

ALL = ("fp32", "fp16", "bf16", "int8")
MODELS = ("mobilenet_v2", "standard_conv")
KERAS_REASON = "Keras has no int8/fp16/bf16 inference runtime of its own"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Frames]:
    """A laptop run with every precision at 1 and 2 threads, a Pi run with fp32 and int8."""
    root = tmp_path_factory.mktemp("precision") / "results"
    make_run(root, LAPTOP, "20260301T101500", n=40, threads=(1, 2), precisions=ALL)
    make_run(root, PI5, "20260301T120000", seed=1, n=40, precisions=("int8",))
    frames = load_frames([root])
    assert frames.problems == ()
    page = render_report(frames, root.parent / "report.html").read_text()
    return page, frames


def _section(page: str, section_id: str) -> str:
    start = page.index(f'<section id="{section_id}">')
    return page[start : page.index("</section>", start)]


def _medians(frames: Frames) -> pd.Series:
    return frames.samples.groupby(["run_key", "cell_id"])["ms"].median()


def _fp32_id(row: dict) -> str:
    return row["cell_id"].replace(f"/{row['precision']}/", "/fp32/")


def _ok(frames: Frames) -> list[dict]:
    return frames.results[frames.results["status"] == "ok"].to_dict(orient="records")


def test_peaks_are_read_per_precision_and_thread_count(report: tuple[str, Frames]) -> None:
    page, frames = report
    laptop = frames.peaks[frames.peaks["device_id"] == LAPTOP.device_id]
    assert list(zip(laptop["precision"], laptop["threads"], strict=True)) == [
        (p, t) for p in ALL for t in (1, 2)
    ]
    rates = laptop.set_index(["precision", "threads"])["gmacs_per_s"]
    assert rates[("fp32", 2)] == peak_gmacs(LAPTOP, 2)
    assert rates[("int8", 2)] == 4 * peak_gmacs(LAPTOP, 2)
    assert rates[("fp16", 1)] != rates[("fp16", 1)]  # NaN: not measured ...
    fp16 = laptop[laptop["precision"] == "fp16"]
    assert (fp16["reason"] == NO_FP16).all()  # ... and why
    # Each row's peak is the one of its own precision and thread count.
    for row in _ok(frames):
        device = LAPTOP if row["device_id"] == LAPTOP.device_id else PI5
        scale = {"fp32": 1, "bf16": 2, "int8": 4}.get(row["precision"])
        expected = None if scale is None else scale * peak_gmacs(device, int(row["threads"]))
        if expected is None:
            assert pd.isna(row["gemm_peak_gmacs"]), row["cell_id"]
        else:
            assert row["gemm_peak_gmacs"] == expected, row["cell_id"]
    fingerprint = f"<dt>GEMM peak (fp16)</dt><dd>none at 1 thread ({NO_FP16}); none at 2 threads"
    assert fingerprint in page
    assert "<dt>GEMM peak (int8)</dt><dd>440.0 GMAC/s at 1 thread (torch 2.13.0)" in page


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # env.json before precisions: only the fp32 peak, by thread count or a single one.
        ({"gemm_peak": {"2": {"gmacs_per_s": 95.0}}}, {"fp32": {2: 95.0}}),
        ({"gemm_peak": {"gmacs_per_s": 91.0, "threads": 2}}, {"fp32": {2: 91.0}}),
        (
            {
                "gemm_peak": {"1": {"gmacs_per_s": 50.0}},
                "gemm_peaks": {
                    "int8": {"1": {"gmacs_per_s": 210.0}},
                    "fp16": {"1": {"gmacs_per_s": None, "reason": "no fp16 units"}},
                    "bf16": {"1": {"gmacs_per_s": None, "failed": {"torch": "failed: boom"}}},
                },
            },
            {"fp32": {1: 50.0}, "fp16": {1: None}, "bf16": {1: None}, "int8": {1: 210.0}},
        ),
        ({"gemm_peaks": {"fp32": {"1": {"gmacs_per_s": 52.0}}}}, {"fp32": {1: 52.0}}),
        ({}, {}),
    ],
)
def test_peak_entries_read_every_env_shape(env: dict, expected: dict) -> None:
    entries = peak_entries(env)
    assert {p: {t: e["gmacs_per_s"] for t, e in by.items()} for p, by in entries.items()} == (
        expected
    )
    assert list(entries) == list(expected)  # fp32, fp16, bf16, int8 order
    if "bf16" in entries:
        assert entries["fp16"][1]["reason"] == "no fp16 units"
        assert entries["bf16"][1]["reason"] == "torch: failed: boom"
        assert gemm_peaks(env, "int8") == {1: entries["int8"][1]}
        assert gemm_peaks(env, "fp16") == {}


def test_precision_table_numbers_come_from_the_samples(report: tuple[str, Frames]) -> None:
    page, frames = report
    medians = _medians(frames)
    rows = {
        (r["run"], r["model"], r["backend/mode"], float(r["threads"]), r["precision"]): r
        for r in html_rows(page, "precision-table")
    }
    ok = _ok(frames)
    assert len(rows) == len(ok)
    by_id = {(r["run_key"], r["cell_id"]): r for r in ok}
    for row in ok:
        key = (row["run_id"], row["model"], f"{row['backend']}/{row['mode']}", row["threads"])
        shown = rows[(*key, row["precision"])]
        fp32 = by_id[(row["run_key"], _fp32_id(row))]
        speed_up = (
            medians[(row["run_key"], fp32["cell_id"])] / medians[(row["run_key"], row["cell_id"])]
        )
        assert float(shown["speed-up vs fp32"]) == pytest.approx(speed_up, rel=1e-12)
        assert float(shown["p50 (ms)"]) == pytest.approx(medians[(row["run_key"], row["cell_id"])])
        assert float(shown["size vs fp32"]) == pytest.approx(row["size_mb"] / fp32["size_mb"])
        for column, header in [
            ("size_mb", "size (MiB)"),
            ("top1_agree", "top-1 agree"),
            ("top5_agree", "top-5 agree"),
            ("rel_l2_err", "rel L2 err"),
            ("psnr_db", "PSNR (dB)"),
        ]:
            assert float(shown[header]) == pytest.approx(row[column]), (header, row["cell_id"])
        assert shown["note"] == (row["reason"] or "")
    # The synthetic data is realistic: int8 files are about a quarter of fp32, and the
    # compute note of TFLite's fp16 file is shown beside its (unchanged) speed.
    int8 = [r for r in rows.values() if r["precision"] == "int8"]
    assert all(0.24 < float(r["size vs fp32"]) < 0.27 for r in int8)
    fp16 = [r for r in rows.values() if r["precision"] == "fp16" and "tflite" in r["backend/mode"]]
    assert len(fp16) == 4
    assert all("dequantized to fp32 at load" in r["note"] for r in fp16)
    assert all(0.8 < float(r["speed-up vs fp32"]) < 1.2 for r in fp16)


def test_precisions_are_never_paired_with_each_other(
    report: tuple[str, Frames], tmp_path: Path
) -> None:
    page, frames = report
    medians = _medians(frames)
    ok = {(r["run_key"], r["cell_id"]): r for r in _ok(frames)}
    run_key = {r["run_key"].rpartition("/")[2]: r["run_key"] for r in ok.values()}
    # The depthwise table pairs each precision with itself.
    rows = html_rows(page, "depthwise-table")
    assert {r["precision"] for r in rows} == set(ALL)
    for row in rows:
        backend, mode = row["backend/mode"].split("/")
        cell = f"w1/r224/{backend}/{mode}/{row['precision']}/b1/t{row['threads'][0]}"
        key = run_key[row["run"]]
        dw, std = medians[(key, f"mobilenet_v2/{cell}")], medians[(key, f"standard_conv/{cell}")]
        assert float(row["latency ratio"]) == pytest.approx(std / dw, rel=1e-12)
    # The fastest-backend summary has one row per precision, never an int8 cell beating fp32.
    best = tables.fastest(tables.cells(frames.results, frames.samples))
    found = best.groupby(["device_id", "model"])["precision"].apply(sorted).to_dict()
    assert found == {
        **{(LAPTOP.device_id, m): sorted(ALL) for m in MODELS},
        **{(PI5.device_id, m): ["fp32", "int8"] for m in MODELS},
    }
    # Without its own fp32 cell a variant has no speed-up: it never borrows another's.
    root = tmp_path / "results"
    run = make_run(root, PI5, n=20, precisions=("int8",))
    for broken in (
        "standard_conv/w1/r224/tflite/xnnpack/fp32",
        "mobilenet_v2/w1/r224/onnxruntime/cpu/int8",
    ):
        edit_rows(run, lambda r, b=broken: r["cell_id"].startswith(b), status="failed", reason="x")
    partial = render_report(load_frames([root]), tmp_path / "partial.html").read_text()
    prec = html_rows(partial, "precision-table")
    prec = {(r["model"], r["backend/mode"], r["precision"]): r for r in prec}
    assert prec[("standard_conv", "tflite/xnnpack", "int8")]["speed-up vs fp32"] == ""
    assert ("standard_conv", "tflite/xnnpack", "fp32") not in prec
    twins = html_rows(partial, "precision-depthwise-table")
    twins = {(r["backend/mode"], r["precision"]) for r in twins}
    assert twins == {("pytorch/eager", "int8")}
    pairs = {(r["backend/mode"], r["precision"]) for r in html_rows(partial, "depthwise-table")}
    assert pairs == {
        ("onnxruntime/cpu", "fp32"),
        ("pytorch/eager", "fp32"),
        ("pytorch/eager", "int8"),
        ("tflite/xnnpack", "int8"),
    }


def test_depthwise_and_standard_speed_ups_side_by_side(report: tuple[str, Frames]) -> None:
    page, frames = report
    medians = _medians(frames)
    section = _section(page, "precision")
    rows = html_rows(page, "precision-depthwise-table")
    assert {r["precision"] for r in rows} == {"fp16", "bf16", "int8"}
    for row in rows:
        key = next(k for k in medians.index.get_level_values(0) if k.endswith(row["run"]))
        backend, mode = row["backend/mode"].split("/")
        tail = f"w1/r224/{backend}/{mode}/{{}}/b1/t{row['threads'][0]}"
        for model, header in (("mobilenet_v2", "mobilenet_v2"), ("standard_conv", "standard_conv")):
            fp32 = medians[(key, f"{model}/" + tail.format("fp32"))]
            variant = medians[(key, f"{model}/" + tail.format(row["precision"]))]
            assert float(row[f"{header} speed-up"]) == pytest.approx(fp32 / variant, rel=1e-12)
        # One plain sentence per row; the laptop ran two thread counts, so it names them.
        dw, std = float(row["mobilenet_v2 speed-up"]), float(row["standard_conv speed-up"])
        if row["precision"] == "int8":
            setting = f" (t{row['threads'][0]})" if key.startswith(LAPTOP.device_id) else ""
            sentence = (
                f"{backend} int8{setting}: {dw:.1f}× faster for the depthwise network, "
                f"{std:.1f}× for the standard twin"
            )
            assert f"<li>{sentence}</li>" in section
            assert std > dw  # the synthetic data: int8 pays off more for dense convolutions
    assert "<li>tflite fp16 (t1): about as fast (" in section


def test_not_measured_cells_are_listed_with_their_reason(report: tuple[str, Frames]) -> None:
    page, _ = report
    section = _section(page, "precision")
    lists = re.findall(r'<ul class="not-measured">(.*?)</ul>', section)
    assert len(lists) == 2  # one per device
    assert f"<li>keras int8: {KERAS_REASON}" in lists[0]
    assert (
        "<li>onnxruntime bf16: ONNX Runtime&#x27;s CPU execution provider has no bf16" in (lists[0])
    )
    assert "<li>pytorch fp16: PyTorch deploys reduced precision on CPUs as bf16" in lists[0]
    assert "keras fp16" not in lists[1]  # the Pi ran fp32 and int8 only
    assert f"<li>keras int8: {KERAS_REASON}" in lists[1]


def test_pareto_plot_per_device(report: tuple[str, Frames]) -> None:
    page, frames = report
    section = _section(page, "precision")
    start = section.index("<h3>Latency vs top-1 agreement</h3>")
    svgs = re.findall(r"<svg .*?</svg>", section[start:], flags=re.DOTALL)
    assert len(svgs) == 2
    for svg, device in zip(svgs, (LAPTOP, PI5), strict=True):
        assert f"<!-- Latency vs top-1 agreement — {device.device_name} -->" in svg
        assert "<!-- p50 latency (ms, log scale) -->" in svg
        assert "<!-- Pareto front -->" in svg
    points = tables.pareto_points(tables.cells(frames.results, frames.samples))
    # Backends x the precisions each has (fp32 and two others on the laptop) x models.
    assert len(points) == 3 * 3 * 2 + 3 * 2 * 2
    # The fastest point of each device and model is always on the front.
    fastest = points.loc[points.groupby(["device_id", "model"])["latency_ms_p50"].idxmin()]
    assert fastest["pareto"].all()


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = pd.DataFrame(
        {
            "device_id": "d",
            "model": "m",
            "backend": ["a", "b", "c", "d", "e", "f"],
            "mode": "x",
            "precision": "fp32",
            "batch": 1,
            "latency_ms_p50": [1.0, 2.0, 3.0, 4.0, 2.0, 4.0],
            "top1_agree": [0.5, 0.9, 0.8, 1.0, 0.4, 0.9],
        }
    )
    front = tables.pareto_points(points).set_index("backend")["pareto"]
    assert front.to_dict() == {"a": True, "b": True, "e": False, "c": False, "d": True, "f": False}


def test_old_runs_render_without_a_precision_section(tmp_path: Path) -> None:
    root = tmp_path / "results"
    make_run(root, LAPTOP, "20250101T090000", old_columns=True)
    make_run(root, PI5, "20250201T090000", n=20, old_peak=True)
    make_run(root, LAPTOP, "20250301T090000", n=20, fp32_peak_only=True)
    frames = load_frames([root])
    assert frames.problems == ()
    assert sections(frames) == SECTIONS
    old = frames.results[frames.results["run_id"] == "20250101T090000"]
    for column in ("top5_agree", "psnr_db", "size_mb"):
        assert old[column].isna().all()
    assert set(frames.peaks["precision"]) == {"fp32"}
    page = render_report(frames, tmp_path / "report.html").read_text()
    assert '<section id="precision">' not in page
    assert 'href="#precision"' not in page
    assert "<dt>GEMM peak (fp32)</dt>" in page


def test_env_with_only_the_fp32_peak_still_gives_a_precision_section(tmp_path: Path) -> None:
    run = make_run(tmp_path, LAPTOP, n=20, precisions=("int8",), fp32_peak_only=True)
    frames = load_frames([run])
    results = frames.results[frames.results["status"] == "ok"]
    assert (results.loc[results["precision"] == "fp32", "gemm_peak_gmacs"] == 110.0).all()
    assert results.loc[results["precision"] == "int8", "gemm_peak_gmacs"].isna().all()
    assert sections(frames)[3] == PRECISION_SECTION
    page = render_report(frames, tmp_path / "report.html").read_text()
    assert page.index('<section id="depthwise">') < page.index('<section id="precision">')
    assert len(html_rows(page, "precision-table")) == 12


def test_compare_matches_each_precision_with_itself(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", n=60, noise=0.10, precisions=("int8",))
    new = tmp_path / "new"
    shutil.copytree(base, new)
    assert scale_samples(new, lambda cell: "/pytorch/eager/int8/" in cell, 1.5) == 2 * 60
    result = compare_runs(base, new)
    assert exit_code(result) == 1
    assert {(c.cell, c.precision) for c in result.regressed} == {
        (f"{m}/w1/r224/pytorch/eager/int8/b1/t1", "int8") for m in ("mobilenet_v2", "standard_conv")
    }
    fp32 = [c for c in result.cells if c.cell.startswith("mobilenet_v2/w1/r224/pytorch/eager/fp32")]
    assert [(c.verdict, c.ratio) for c in fp32] == [("unchanged", pytest.approx(1.0))]
    # A base without int8 cells: the new int8 cells are new, never compared with fp32 ones.
    fp32_only = make_run(tmp_path / "fp32", n=60, noise=0.10)
    one_sided = compare_runs(fp32_only, base)
    assert one_sided.only_base == ()
    assert {c.rpartition("/int8/")[1] for c in one_sided.only_new} == {"/int8/"}
    assert {c.precision for c in one_sided.cells} == {"fp32"}
    only = [r for r in compare_rows(one_sided) if r["verdict"] == "only in new"]
    assert len(only) == 10  # two models x five backends (coreml and keras skipped)
    assert {r["precision"] for r in only} == {"int8"}


def test_compare_shows_accuracy_and_flags_an_agreement_drop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make_run(tmp_path / "base", n=60, noise=0.10, precisions=("int8",))
    new = tmp_path / "new"
    shutil.copytree(base, new)
    dropped = "mobilenet_v2/w1/r224/onnxruntime/cpu/int8/b1/t1"
    slight = "mobilenet_v2/w1/r224/tflite/xnnpack/int8/b1/t1"
    edit_rows(new, lambda row: row["cell_id"] == dropped, top1_agree=0.453125, rel_l2_err=0.52)
    edit_rows(new, lambda row: row["cell_id"] == slight, top1_agree=0.59375)
    result = compare_runs(base, new)
    assert exit_code(result) == 0  # an accuracy drop is flagged, not a latency regression
    assert [c.cell for c in result.accuracy_dropped] == [dropped]
    assert result.counts()["top-1 agreement drop"] == 1
    rows = {r["cell"]: r for r in compare_rows(result)}
    assert rows[dropped]["precision"] == "int8"
    assert (rows[dropped]["base_top1_agree"], rows[dropped]["new_top1_agree"]) == (0.5625, 0.453125)
    assert rows[dropped]["top1_change"] == pytest.approx(-0.1094, abs=1e-4)
    assert (rows[dropped]["base_rel_l2_err"], rows[dropped]["new_rel_l2_err"]) == (0.41, 0.52)
    assert rows[dropped]["flags"] == "top1_agree 0.562 → 0.453 (drop > 0.05)"
    assert rows[slight]["top1_change"] == pytest.approx(-0.03125, abs=1e-4)
    assert rows[slight]["flags"] == ""  # within 0.05: shown, not flagged
    # The int8 tolerance (rel_l2_err < 0.8) is the one a crossing is judged against.
    edit_rows(new, lambda row: row["cell_id"] == dropped, rel_l2_err=0.85)
    crossed = {c.cell: c for c in compare_runs(base, new).cells}[dropped]
    assert "rel_l2_err 4.1e-01 → 8.5e-01 (crosses 0.8)" in crossed.flags

    capsys.readouterr()
    assert main(["compare", str(base), str(new)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "┃ cell" in line)
    names = [c.strip() for c in header.split("┃")[1:-1]]
    assert names[:3] == ["cell", "precision", "verdict"]
    cells = [c.strip() for c in next(line for line in lines if dropped in line).split("│")[1:-1]]
    shown = dict(zip(names, cells, strict=True))
    assert shown["precision"] == "int8"
    assert shown["top-1 agree"] == "0.562 → 0.453"
    assert shown["rel L2 err"] == "4.1e-01 → 8.5e-01"
    assert shown["flags"].startswith("top1_agree 0.562 → 0.453 (drop > 0.05)")
    same = next(line for line in lines if "pytorch/eager/int8" in line).split("│")[1:-1]
    assert dict(zip(names, map(str.strip, same), strict=True))["top-1 agree"] == "0.500"
