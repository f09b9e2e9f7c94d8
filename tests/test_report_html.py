"""harness.report.html: one self-contained page, every section, values from the data, escaped."""

from __future__ import annotations

import re
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

import pandas as pd
import pytest
from runfolders import LAPTOP, MACS, PI5, HtmlTables, html_rows, make_run, peak_gmacs

from harness.report.html import SECTIONS, render_report
from harness.report.load import load_frames, load_runs
from harness.report.write import write_report

FIXTURE = Path(__file__).parent / "fixtures" / "pytest_benchmark.json"
HOSTILE = replace(
    LAPTOP,
    device_id="x86-hostile",
    device_name="<script>alert('pwned')</script> & \"Co\" $x$",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    root = tmp_path_factory.mktemp("runs") / "results"
    make_run(root, LAPTOP, "20260301T101500", n=60)
    make_run(root, PI5, "20260301T120000", seed=1, n=60, repeats=3, drift=0.02)
    make_run(root, HOSTILE, "20260302T080000", seed=2, n=30, backends=("onnxruntime",))
    frames = load_frames([root, FIXTURE])
    assert frames.problems == ()
    frames = replace(frames, problems=("bad/<folder>: not a run folder",))
    out = render_report(frames, root.parent / "report.html")
    return out.read_text(), frames.results, frames.samples


def test_every_section_is_present(report: tuple[str, pd.DataFrame, pd.DataFrame]) -> None:
    page, _, _ = report
    for section_id, _ in SECTIONS:
        assert f'<section id="{section_id}">' in page
    assert page.count("<svg ") >= 7  # 4 box plots, depthwise, MACs, memory, repeats


def test_nothing_points_off_page(report: tuple[str, pd.DataFrame, pd.DataFrame]) -> None:
    page, _, _ = report
    refs = re.findall(r"""\b(?:src|href|xlink:href|action|poster)\s*=\s*["']?([^"'\s>]*)""", page)
    assert refs
    assert all(ref.startswith("#") for ref in refs), {r for r in refs if not r.startswith("#")}
    assert not re.search(r"url\(\s*['\"]?(?!#)", page)
    assert "@import" not in page
    assert "<link" not in page
    assert "<script src" not in page
    assert "<iframe" not in page


def test_every_plot_has_title_labels_and_units(
    report: tuple[str, pd.DataFrame, pd.DataFrame],
) -> None:
    page, _, _ = report
    for svg in re.findall(r"<svg .*?</svg>", page, flags=re.DOTALL):
        # Glyphs are paths; matplotlib keeps each text as a comment beside them.
        texts = re.findall(r"<!-- (.*?) -->", svg)
        labels = [t for t in texts if re.search(r"\((ms|MB|%|×|GMAC)", t)]
        assert labels, texts
        assert 'aria-label="' in svg
    for title in (
        "Latency spread per cell — Raspberry Pi 5 Model B Rev 1.0",
        "standard_conv ÷ mobilenet_v2: MACs vs wall time",
        "Latency vs work per call",
        "Peak memory vs latency",
        "Drift across repeats",
    ):
        assert f"<!-- {title} -->" in page


def test_depthwise_table_holds_ratios_computed_from_samples(
    report: tuple[str, pd.DataFrame, pd.DataFrame],
) -> None:
    page, results, samples = report
    parser = HtmlTables()
    parser.feed(page)
    header = parser.headers["depthwise-table"]
    rows = [dict(zip(header, r, strict=True)) for r in parser.tables["depthwise-table"][1:]]
    ok = results[(results["status"] == "ok") & (results["source"] == "mobilebench")]
    medians = samples.groupby(["run_key", "cell_id"])["ms"].median()
    expected = {}
    for (run_key, backend), cells in ok.groupby(["run_key", "backend"]):
        p50 = {
            m: medians[(run_key, cells.loc[cells["model"] == m, "cell_id"].iloc[0])]
            for m in ("mobilenet_v2", "standard_conv")
            if (cells["model"] == m).any()
        }
        if len(p50) == 2:
            run_id = run_key.rpartition("/")[2]
            expected[(run_id, backend)] = p50["standard_conv"] / p50["mobilenet_v2"]
    runner_rows = [r for r in rows if r["source"] == "mobilebench"]
    assert {(r["run"], r["backend/mode"].split("/")[0]) for r in runner_rows} == set(expected)
    for row in runner_rows:
        ratio = expected[(row["run"], row["backend/mode"].split("/")[0])]
        assert float(row["latency ratio"]) == pytest.approx(ratio, rel=1e-9)
        assert float(row["MAC ratio"]) == pytest.approx(
            MACS["standard_conv"] / MACS["mobilenet_v2"]
        )
        assert float(row["realised"]) == pytest.approx(100 * ratio / float(row["MAC ratio"]))
        assert 3 < ratio < 12  # depthwise saves far less time than the 18.4x MACs
    # The pytest-benchmark pair sits beside the runner's, labelled.
    bench = [r for r in rows if r["source"] == "pytest-benchmark"]
    assert len(bench) == 1
    assert float(bench[0]["latency ratio"]) == pytest.approx(67.540 / 9.102)


def test_text_from_data_is_escaped(report: tuple[str, pd.DataFrame, pd.DataFrame]) -> None:
    page, _, _ = report
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; &quot;Co&quot;" in page
    assert "<Graph>" not in page
    assert "RuntimeError: &lt;Graph&gt; node &#x27;block3.dw&#x27; &amp; friends" in page
    assert "bad/&lt;folder&gt;: not a run folder" in page
    assert page.count("<script>") == 1  # the page's own sorting script, nothing else


def test_summary_says_which_weights_and_images_produced_the_rows(
    report: tuple[str, pd.DataFrame, pd.DataFrame],
) -> None:
    page, results, _ = report
    ours = results[results["source"] == "mobilebench"]
    for device_id, rows in ours.groupby("device_id"):
        shown = html_rows(page, f"origins-{device_id}")
        expected = set(zip(rows["model"], rows["weights"], rows["inputs"], strict=True))
        assert {
            (r["model"], r["weights"], r["evaluation and calibration images"]) for r in shown
        } == expected
        assert len(shown) == len(expected)
    assert "photos: /data/&lt;val&gt;" in page


def test_results_table_is_sortable_and_shows_reasons(
    report: tuple[str, pd.DataFrame, pd.DataFrame],
) -> None:
    page, results, _ = report
    parser = HtmlTables()
    parser.feed(page)
    assert '<table id="results-table" class="sortable">' in page
    body = parser.tables["results-table"][1:]
    assert len(body) == len(results)
    assert page.count('class="status-skipped"') == (results["status"] == "skipped").sum()
    assert page.count('class="status-failed"') == (results["status"] == "failed").sum()
    assert "coremltools is not installed" in page


def test_repeats_section_shows_per_repeat_p50(
    report: tuple[str, pd.DataFrame, pd.DataFrame],
) -> None:
    page, _, _ = report
    repeats = page[page.index('<section id="repeats">') : page.index('<section id="results">')]
    for n in range(3):
        assert f"repeat {n} p50 (ms)" in repeats
    assert "Drift across repeats" in repeats


def test_empty_and_partial_data_give_sentences(tmp_path: Path) -> None:
    page = render_report(load_frames([]), tmp_path / "empty.html").read_text()
    for section_id, _ in SECTIONS:
        assert f'<section id="{section_id}">' in page
    assert "<svg" not in page
    assert page.count('class="note"') >= 8

    make_run(tmp_path / "one", models=("mobilenet_v2",), n=20)
    page = render_report(load_frames([tmp_path / "one"]), tmp_path / "one.html").read_text()
    depthwise = page[page.index('<section id="depthwise">') : page.index('<section id="latency-vs')]
    assert "No run holds both mobilenet_v2 and standard_conv" in depthwise
    assert "Every cell was measured once" in page


def test_styles_and_script_are_inlined(report: tuple[str, pd.DataFrame, pd.DataFrame]) -> None:
    page, _, _ = report
    static = files("harness.report")
    assert f"<style>\n{(static / 'report.css').read_text()}</style>" in page
    assert f"<script>\n{(static / 'report.js').read_text()}</script>" in page
    assert "@media print" in page
    assert 'querySelectorAll("table.sortable")' in page


def test_gemm_peaks_are_shown_per_thread_count(tmp_path: Path) -> None:
    root = tmp_path / "results"
    make_run(root, LAPTOP, threads=(1, 2), n=20)
    make_run(root, PI5, threads=2, n=20, old_peak=True)
    page = render_report(load_frames([root]), tmp_path / "report.html").read_text()
    # The fingerprint of each device: every thread count and the library that set it.
    assert (
        "<dt>GEMM peak (fp32)</dt><dd>110.0 GMAC/s at 1 thread (torch 2.13.0); "
        "220.0 GMAC/s at 2 threads (torch 2.13.0)</dd>"
    ) in page
    assert "<dt>GEMM peak (fp32)</dt><dd>36.0 GMAC/s at 2 threads (openblas 0.3.x)</dd>" in page
    parser = HtmlTables()
    parser.feed(page)
    header = parser.headers["peak-table"]
    rows = [dict(zip(header, r, strict=True)) for r in parser.tables["peak-table"][1:]]
    assert [(r["device"], r["threads"], r["GEMM peak (GMAC/s)"], r["set by"]) for r in rows] == [
        (PI5.device_name, "2", str(peak_gmacs(PI5, 2)), "openblas 0.3.x"),
        (LAPTOP.device_name, "1", "110.0", "torch 2.13.0"),
        (LAPTOP.device_name, "2", "220.0", "torch 2.13.0"),
    ]
    assert rows[1]["libraries tried (GMAC/s)"] == (
        "torch 2.13.0 110.0, onnxruntime 1.32.0 104.5, numpy (openblas 0.3.29) 88.0"
    )
    # One roofline per device and thread count, named in the legend.
    plot = page[page.index('<section id="latency-vs-macs">') : page.index('<section id="memory">')]
    roofs = re.findall(r"<!-- (GEMM peak .*?) -->", plot)
    assert roofs == [
        f"GEMM peak 110 GMAC/s · {LAPTOP.device_name} · 1 thread (torch 2.13.0)",
        f"GEMM peak 220 GMAC/s · {LAPTOP.device_name} · 2 threads (torch 2.13.0)",
        f"GEMM peak 36 GMAC/s · {PI5.device_name} · 2 threads (openblas 0.3.x)",
    ]


def test_write_report_loads_renders_and_merges(tmp_path: Path) -> None:
    root = tmp_path / "results"
    run = make_run(root, LAPTOP, n=20)
    stray = tmp_path / "notes.txt"
    stray.write_text("not a run")
    written = write_report([root, stray], root / "report.html", merged=True)
    assert written.page == root / "report.html"
    assert "<h1>mobilebench report</h1>" in written.page.read_text()
    assert written.merged == (root / "results.csv", root / "results.json")
    assert (written.rows, written.runs) == (10, 1)
    assert written.problems == (f"{stray}: not a run folder or a pytest-benchmark JSON file",)
    # Into the run folder itself: the page only, the run's own files untouched.
    before = (run / "results.csv").read_bytes()
    inside = write_report([run], run / "report.html", title="run <1>")
    assert inside.merged == ()
    assert "<title>run &lt;1&gt;</title>" in (run / "report.html").read_text()
    assert (run / "results.csv").read_bytes() == before
    assert load_runs([run])[3] == []
    # Nothing loaded: nothing written.
    empty = write_report([stray], tmp_path / "empty.html")
    assert (empty.page, empty.rows, len(empty.problems)) == (None, 0, 1)
    assert not (tmp_path / "empty.html").exists()
