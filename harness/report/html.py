"""The self-contained HTML report: one file, inline CSS, SVG and JS, no network, printable.

Sections (each an element id): summary, latency, depthwise, precision (only when
the rows hold a precision other than fp32), latency-vs-macs, memory, repeats,
results, environment, inputs. The page reads only the tidy
frames of :func:`harness.report.load.load_frames`; every piece of text that
comes from data is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import plots, profile, tables
from harness.report.html_table import (
    Column,
    esc,
    fmt_int,
    fmt_ms,
    fmt_num1,
    fmt_num2,
    fmt_num3,
    fmt_pct,
    fmt_ratio,
    fmt_sci,
    fmt_si,
    fmt_signed_pct,
    fmt_str,
    formatter,
    note,
    render_table,
)
from harness.report.load import Frames

TITLE = "mobilebench report"
SECTIONS = (
    ("summary", "Summary per device"),
    ("latency", "Latency per backend"),
    ("depthwise", "The depthwise question"),
    ("latency-vs-macs", "Latency vs MACs"),
    ("memory", "Memory vs latency"),
    ("repeats", "Repeats"),
    ("results", "All results"),
    ("environment", "Run environment"),
    ("inputs", "Inputs"),
)
#: Shown after the depthwise section when the rows hold a precision other than fp32.
PRECISION_SECTION = ("precision", "Precision: speed, size and accuracy")
#: The results-table columns that fit a printed page; the others are screen-only.
PRINT_COLUMNS = frozenset(
    (
        *("device_name", "run_id", "source", "model", "backend", "mode", "precision"),
        *("batch", "threads"),
        *("repeat", "status", "reason", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99"),
        *("n_iter", "peak_rss_mb", "roofline_pct"),
    )
)


def render_report(frames: Frames, out: Path, *, title: str = TITLE) -> Path:
    """Write the report for ``frames`` to ``out`` (one HTML file); return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_html(frames, title=title))
    return out


def sections(frames: Frames) -> tuple[tuple[str, str], ...]:
    """(id, title) of the page's sections, in order: :data:`SECTIONS`, plus
    :data:`PRECISION_SECTION` when any row is not fp32 and :data:`profile.SECTION`
    when the runs hold profiles, both after the depthwise one."""
    extra = []
    if tables.has_precisions(frames.results):
        extra.append(PRECISION_SECTION)
    if not frames.profiles.empty:
        extra.append(profile.SECTION)
    at = [sid for sid, _ in SECTIONS].index("depthwise") + 1
    return (*SECTIONS[:at], *extra, *SECTIONS[at:])


def build_html(frames: Frames, *, title: str = TITLE) -> str:
    """The report page as a string."""
    page = _Page(frames)
    shown = sections(frames)
    bodies = {
        "summary": page.summary,
        "latency": page.latency,
        "depthwise": page.depthwise,
        "precision": page.precision,
        "profile": page.profile,
        "latency-vs-macs": page.latency_vs_macs,
        "memory": page.memory,
        "repeats": page.repeats,
        "results": page.results_table,
        "environment": page.environment,
        "inputs": page.inputs,
    }
    nav = "".join(f'<a href="#{sid}">{html.escape(name)}</a>' for sid, name in shown)
    sections_html = "\n".join(
        f'<section id="{sid}"><h2>{html.escape(name)}</h2>\n{bodies[sid]()}</section>'
        for sid, name in shown
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = frames.results
    devices = results["device_id"].dropna().nunique()
    lede = f"{len(frames.runs)} run(s) on {devices} device(s), {len(results)} row(s)"
    if not frames.profiles.empty:
        profiles = frames.profiles
        cells = profiles.loc[profiles["status"] == "ok", "cell_id"].nunique()
        runs = profiles["run_key"].nunique()
        lede += f"; profiles of {cells} cell(s) from {runs} profile run(s)"
    lede += f"; generated {generated}."
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>\n{_asset('report.css')}</style></head>\n"
        f"<body><header><h1>{html.escape(title)}</h1><p>{html.escape(lede)}</p>"
        f"<nav>{nav}</nav></header>\n<main>{sections_html}</main>\n"
        f"<script>\n{_asset('report.js')}</script></body></html>\n"
    )


@cache
def _asset(name: str) -> str:
    """A stylesheet or script shipped beside this module (package data)."""
    return (files("harness.report") / name).read_text(encoding="utf-8")


class _Page:
    """Derived tables computed once, one method per section."""

    def __init__(self, frames: Frames) -> None:
        self.frames = frames
        self.results = frames.results
        self.samples = frames.samples
        self.cells = tables.cells(frames.results, frames.samples)
        self.colors = plots.palette(frames.results["backend"].dropna().astype(str))
        #: Whether labels and tables must name the precision (the rows hold more than one).
        self.multi = tables.multi_precision(frames.results)
        self._figures = 0

    def figure(self, svg: str | None, caption: str) -> str:
        """An inline SVG in a figure, its ids made unique in the page."""
        if svg is None:
            return ""
        self._figures += 1
        prefix = f"fig{self._figures}-"
        svg = re.sub(r'\bid="', f'id="{prefix}', svg)
        svg = re.sub(r'href="#', f'href="#{prefix}', svg)
        svg = svg.replace("url(#", f"url(#{prefix}")
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(caption)}" ', 1)
        return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"

    def devices(self) -> list[tuple[str, str]]:
        """(device_id, device_name) of every device, sorted by name."""
        frame = self.results[["device_id", "device_name"]].dropna(subset=["device_id"])
        pairs = frame.groupby("device_id")["device_name"].first().fillna("").to_dict()
        return sorted(pairs.items(), key=lambda p: (p[1] or p[0], p[0]))

    def summary(self) -> str:
        if self.results.empty:
            return note("No benchmark rows were loaded, so there is nothing to summarise.")
        best = tables.fastest(self.cells)
        parts = []
        for device_id, name in self.devices():
            rows = self.results[self.results["device_id"] == device_id]
            counts = rows["status"].value_counts().to_dict()
            tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            parts.append(f"<h3>{esc(name or device_id)} <small>{esc(device_id)}</small></h3>")
            parts.append(self.fingerprint(device_id))
            parts.append(f"<p>Rows: {esc(tally)}.</p>")
            parts.append(self.origins(rows, f"origins-{device_id}"))
            mine = best[best["device_id"] == device_id] if len(best) else best
            if mine.empty:
                parts.append(note("No cell was measured on this device (all skipped or failed)."))
                continue
            parts.append(
                render_table(
                    mine,
                    [
                        ("model", "model", fmt_str),
                        *([("precision", "precision", fmt_str)] if self.multi else []),
                        ("batch", "batch", fmt_int),
                        ("backend", "fastest backend", fmt_str),
                        ("mode", "mode", fmt_str),
                        ("threads", "threads", fmt_int),
                        ("latency_ms_p50", "p50 (ms)", fmt_ms),
                        ("latency_ms_p90", "p90 (ms)", fmt_ms),
                        ("peak_rss_mb", "peak RSS (MB)", fmt_num1),
                        ("roofline_pct", "roofline (% of GEMM peak)", fmt_pct),
                        ("source", "source", fmt_str),
                        ("run_id", "run", fmt_str),
                    ],
                )
            )
        return "\n".join(parts)

    def profile(self) -> str:
        return profile.section_html(self.frames.profiles, self.frames.peaks, self.figure)

    def origins(self, rows: pd.DataFrame, table_id: str) -> str:
        """Which weights and images produced the rows (generated, or the user's files)."""
        found = tables.origins(rows)
        if found.empty:
            return ""
        return render_table(
            found,
            [
                ("model", "model", fmt_str),
                ("weights", "weights", fmt_str),
                ("inputs", "evaluation and calibration images", fmt_str),
            ],
            table_id=table_id,
        )

    def fingerprint(self, device_id: str) -> str:
        """The device's facts and GEMM peaks, from its latest run."""
        runs = self.frames.runs[self.frames.runs["device_id"] == device_id]
        if runs.empty:
            return note("No env.json for device.")
        run = runs.iloc[-1]
        items = [(label, fmt(run[key])) for key, label, fmt in _FINGERPRINT]
        peaks = self.frames.peaks[self.frames.peaks["run_key"] == run["run_key"]]
        for precision, mine in peaks.groupby("precision", sort=False):
            text = "; ".join(map(_peak_text, mine.to_dict(orient="records")))
            items.append((f"GEMM peak ({precision})", text))
        shown = "".join(
            f"<dt>{html.escape(label)}</dt><dd>{html.escape(text)}</dd>"
            for label, text in items
            if text
        )
        return f'<dl class="fingerprint">{shown}</dl>' if shown else note("No env.json for device.")

    def latency(self) -> str:
        labelled = tables.labelled_samples(self.results, self.samples)
        if labelled.empty:
            return note(
                "No raw latency samples were loaded (samples.csv missing or empty), "
                "so the spread cannot be shown; the tables below give p50/p90."
            )
        parts = [
            "<p>Each box is one cell's raw steady-state samples: the box spans the "
            "inter-quartile range, the line is the median, whiskers reach p5 and p95.</p>"
        ]
        for device_id, name in self.devices():
            mine = labelled[labelled["device_id"] == device_id]
            if mine.empty:
                parts.append(note(f"{name or device_id}: no raw samples."))
                continue
            if mine["run_key"].nunique() > 1:  # one box per run, never pooled across runs
                run_ids = mine["run_key"].str.rpartition("/")[2]
                mine = mine.assign(label=mine["label"] + " · " + run_ids)
            svg = plots.latency_boxes(mine, name or device_id, self.colors)
            parts.append(self.figure(svg, f"Latency spread per cell on {name or device_id}"))
        missing = len(self.cells) - len(labelled[["run_key", "cell_id"]].drop_duplicates())
        if missing:
            parts.append(note(f"{missing} measured cell(s) have no raw samples and are not drawn."))
        return "\n".join(parts)

    def depthwise(self) -> str:
        table = tables.depthwise(self.cells)
        if table.empty:
            return note(
                "No run holds both mobilenet_v2 and standard_conv measured with the same "
                "backend, mode, width, resolution, batch and threads, so there is no ratio to show."
            )
        intro = (
            "<p>standard_conv is mobilenet_v2 with every 3×3 depthwise convolution made a "
            "standard convolution. The MAC ratio says how much work depthwise convolutions "
            "save; the latency ratio says how much time they save on this device and runtime. "
            "<em>Realised</em> is latency ratio ÷ MAC ratio: 100% means wall time scales "
            "with MACs.</p>"
        )
        table["backend_mode"] = _backend_mode(table)
        html_table = render_table(
            table,
            [
                ("device_name", "device", fmt_str),
                ("backend_mode", "backend/mode", fmt_str),
                *([("precision", "precision", fmt_str)] if self.multi else []),
                ("batch", "batch", fmt_int),
                ("threads", "threads", fmt_int),
                ("dw_p50_ms", "mobilenet_v2 p50 (ms)", fmt_ms),
                ("std_p50_ms", "standard_conv p50 (ms)", fmt_ms),
                ("latency_ratio", "latency ratio", fmt_ratio),
                ("mac_ratio", "MAC ratio", fmt_ratio),
                ("realised_pct", "realised", fmt_pct),
                ("source", "source", fmt_str),
                ("run_id", "run", fmt_str),
            ],
            table_id="depthwise-table",
        )
        if self.multi:
            intro += (
                "<p>Each precision is paired with itself (an int8 mobilenet_v2 with an int8 "
                "standard_conv); the precision section compares precisions.</p>"
            )
        svg = plots.depthwise_bars(table, self.colors, self.multi)
        caption = "MAC ratio vs p50 latency ratio, standard_conv ÷ mobilenet_v2"
        return intro + html_table + self.figure(svg, caption)

    def precision(self) -> str:
        """Each precision against the same backend's fp32 cell, what did not run and why,
        the latency/agreement Pareto view and the depthwise-vs-standard speed-ups."""
        table = tables.precision_table(self.cells)
        parts = [
            "<h3>Speed, size and accuracy per precision</h3>",
            "<p>Every measured cell beside the same backend's fp32 cell (same run, mode, "
            "batch and threads). <em>Speed-up</em> = fp32 p50 ÷ this p50 (above 1× is "
            "faster); <em>size</em> is the file against the fp32 file. Accuracy is "
            "measured on the evaluation images against the PyTorch fp32 model, for fp32 "
            "files too: top-1/top-5 = share of images whose top class agrees, rel L2 and "
            "PSNR on the raw outputs (PSNR capped at 200 dB). The note says what really "
            "ran when the file's precision does not, and when accuracy is out of the "
            "precision's tolerance.</p>",
        ]
        if table.empty:
            parts.append(note("No cell was measured, so there is nothing to compare."))
        else:
            table["backend_mode"] = _backend_mode(table)
            parts.append(render_table(table, PRECISION_COLUMNS, table_id="precision-table"))
        parts += [self.not_measured(), self.pareto(), self.precision_depthwise(table)]
        return "\n".join(parts)

    def not_measured(self) -> str:
        """Why cells are missing: one line per backend, precision and reason."""
        missing = tables.not_measured(self.results)
        if missing.empty:
            return "<h3>Cells not measured</h3><p>Every planned cell was measured.</p>"
        parts = [
            "<h3>Cells not measured</h3>",
            "<p>Skipped and failed cells, with the reason the run recorded.</p>",
        ]
        for device_id, name in self.devices():
            mine = missing[missing["device_id"] == device_id]
            if mine.empty:
                continue
            items = "".join(
                f"<li>{esc(row['backend'])} {esc(row['precision'])}: "
                f"{esc(row['reason'] or 'no reason recorded')} <small>({esc(row['status'])}: "
                f"{esc(row['backend'])}/{esc(row['mode'])}, {esc(row['models'])}; "
                f"{row['cells']} cell(s))</small></li>"
                for row in mine.to_dict(orient="records")
            )
            parts.append(f'<h4>{esc(name or device_id)}</h4><ul class="not-measured">{items}</ul>')
        return "\n".join(parts)

    def pareto(self) -> str:
        points = tables.pareto_points(self.cells)
        head = "<h3>Latency vs top-1 agreement</h3>"
        if points.empty:
            return head + note("No measured cell has both a p50 latency and a top-1 agreement.")
        parts = [
            head,
            "<p>One point per backend, mode and precision: its fastest cell at the "
            "device's smallest batch. Ringed points joined by the line are Pareto-optimal: "
            "no other point is both as fast and as accurate.</p>",
        ]
        for device_id, name in self.devices():
            mine = points[points["device_id"] == device_id]
            svg = plots.pareto(mine, name or device_id, self.colors)
            caption = f"p50 latency against top-1 agreement on {name or device_id}"
            parts.append(self.figure(svg, caption))
        return "\n".join(parts)

    def precision_depthwise(self, table: pd.DataFrame) -> str:
        head = (
            "<h3>Does a lower precision save as much time for the depthwise network "
            "as for its standard-convolution twin?</h3>"
        )
        pairs = tables.precision_depthwise(table)
        if pairs.empty:
            return head + note(
                "No reduced-precision cell has both networks and their fp32 cells "
                "measured with the same backend and setting."
            )
        pairs["backend_mode"] = _backend_mode(pairs)
        parts = [
            head,
            "<p>Speed-up over the same backend's fp32 cell (fp32 p50 ÷ p50) for "
            "mobilenet_v2 (depthwise) and standard_conv (standard); <em>twin ÷ "
            "depthwise</em> above 1× means the precision pays off more for standard "
            "convolutions.</p>",
        ]
        for device_id, name in self.devices():
            mine = pairs[pairs["device_id"] == device_id]
            if len(mine):
                parts.append(f"<h4>{esc(name or device_id)}</h4>")
                items = "".join(f"<li>{esc(s)}</li>" for s in _twin_sentences(mine))
                parts.append(f'<ul class="findings">{items}</ul>')
        parts.append(render_table(pairs, TWIN_COLUMNS, table_id="precision-depthwise-table"))
        return "\n".join(parts)

    def latency_vs_macs(self) -> str:
        roofs = tables.roofs(self.cells, self.frames.peaks)
        svg = plots.latency_vs_macs(self.cells, roofs, self.colors, self.multi)
        if svg is None:
            return note("No measured cell has both a p50 latency and a MAC count.")
        text = (
            "<p>Dashed lines: the time a call would take at the device's measured dense "
            "GEMM peak for that precision and thread count (latest run; the legend names "
            "the library that reached it); the gap to a point is the cell's distance from "
            "the roofline.</p>"
        )
        return text + self.figure(svg, "p50 latency against MACs per call")

    def memory(self) -> str:
        svg = plots.memory_vs_latency(self.cells, self.colors, self.multi)
        if svg is None:
            return note("No measured cell has both a p50 latency and a peak RSS.")
        return self.figure(svg, "Peak resident memory against p50 latency")

    def repeats(self) -> str:
        long = tables.repeats(self.results, self.samples)
        if long.empty:
            return note(
                "Every cell was measured once (no repeat column above 0), so drift across "
                "repeats cannot be shown."
            )
        wide = tables.repeat_drift(long)
        repeat_cols = [c for c in wide.columns if c.startswith("repeat ")]
        columns: list[Column] = [("label", "cell", fmt_str), ("run_key", "run", fmt_str)]
        columns += [(c, f"{c} p50 (ms)", fmt_ms) for c in repeat_cols]
        columns += [
            ("drift_pct", "last vs first", fmt_signed_pct),
            ("spread_pct", "spread", fmt_pct),
        ]
        return render_table(wide, columns) + self.figure(
            plots.repeat_lines(long), "Per-repeat p50 relative to repeat 0"
        )

    def results_table(self) -> str:
        if self.results.empty:
            return note("No rows.")
        frame = self.results.copy()
        frame["ci95"] = [
            f"{fmt_ms(lo)}–{fmt_ms(hi)}" if pd.notna(lo) and pd.notna(hi) else ""
            for lo, hi in zip(
                frame["latency_ms_ci95_low"], frame["latency_ms_ci95_high"], strict=True
            )
        ]
        text = (
            "<p>Every row of every run; click a column header to sort. Skipped and failed "
            "cells show their reason. The merged results.csv has every column.</p>"
        )
        return text + render_table(
            frame,
            RESULT_COLUMNS,
            sortable=True,
            table_id="results-table",
            print_columns=PRINT_COLUMNS,
            row_class=lambda row: f"status-{row['status']}",
        )

    def environment(self) -> str:
        runs = self.frames.runs
        if runs.empty:
            return note("No env.json was loaded.")
        pretty = runs["os_pretty"]
        shown = runs.assign(os_pretty=pretty.where(pretty.fillna("") != "", runs["os"]))
        settings = render_table(shown, ENV_COLUMNS, table_id="env-table")
        return settings + self.gemm_peaks() + self.versions()

    def gemm_peaks(self) -> str:
        peaks = self.frames.peaks
        if peaks.empty:
            return "<h3>GEMM peak</h3>" + note("No run recorded a GEMM peak.")
        text = (
            "<p>The device's dense GEMM rate per precision and thread count: the best of "
            "the libraries tried (all listed), the ceiling for the roofline column of the "
            "cells of that precision. A precision the device has no native arithmetic "
            "for has no peak; the reason says why.</p>"
        )
        table = render_table(peaks, PEAK_COLUMNS, table_id="peak-table")
        return "<h3>GEMM peak</h3>" + text + table

    def versions(self) -> str:
        versions = self.frames.versions
        packages = [c for c in versions.columns if c != "run_key"]
        if not packages:
            return note("No framework versions were recorded.")
        differing = {c for c in packages if versions[c].dropna().nunique() > 1}
        columns: list[Column] = [("run_key", "run", fmt_str)]
        columns += [(p, f"{p} ≠" if p in differing else p, fmt_str) for p in packages]
        text = (
            "<p>Packages marked ≠ differ between runs: compare their numbers with care.</p>"
            if differing
            else ""
        )
        return "<h3>Versions</h3>" + text + render_table(versions, columns)

    def inputs(self) -> str:
        runs = "".join(
            f"<li>{esc(run.run_key)} <small>({esc(run.source)}: {esc(run.run_dir)})</small></li>"
            for run in self.frames.runs.itertuples()
        )
        parts = [f"<h3>Runs</h3><ul>{runs}</ul>" if runs else note("No run was loaded.")]
        if self.frames.problems:
            items = "".join(f"<li>{esc(p)}</li>" for p in self.frames.problems)
            parts.append(f'<h3>Skipped inputs</h3><ul class="problems">{items}</ul>')
        else:
            parts.append("<p>Every input loaded without problems.</p>")
        return "\n".join(parts)


def _peak_text(peak: Mapping[str, Any]) -> str:
    """``52.0 GMAC/s at 1 thread (torch 2.13.0)`` from a peaks-frame row, or why not measured."""
    if pd.isna(peak["gmacs_per_s"]):
        threads = int(peak["threads"])
        why = peak.get("reason") or "not measured"
        return f"none at {threads} thread{'' if threads == 1 else 's'} ({why})"
    return f"{peak['gmacs_per_s']:.1f} GMAC/s at {tables.peak_label(peak)}"


def _backend_mode(table: pd.DataFrame) -> list[str]:
    return [f"{b}/{m or '?'}" for b, m in zip(table["backend"], table["mode"], strict=True)]


#: Speed-ups within this factor of 1 read as "about as fast".
_SAME_SPEED = 1.05


def _times(speed_up: float) -> str:
    """``1.9× faster``, ``1.3× slower`` or ``about as fast (0.98×)``."""
    if speed_up >= _SAME_SPEED:
        return f"{speed_up:.1f}× faster"
    if speed_up <= 1 / _SAME_SPEED:
        return f"{1 / speed_up:.1f}× slower"
    return f"about as fast ({speed_up:.2f}×)"


def _twin_sentences(pairs: pd.DataFrame) -> list[str]:
    """One sentence per row of one device's :func:`tables.precision_depthwise`, e.g.
    ``onnxruntime int8: 1.9× faster for the depthwise network, 3.1× for the standard twin``;
    the setting is named when a backend and precision have several."""
    group = pairs.groupby(["backend", "precision"])
    varying = [c for c in ("mode", "batch", "threads", "run_id") if (group[c].nunique() > 1).any()]
    out = []
    for row in pairs.to_dict(orient="records"):
        setting = ", ".join(_setting(c, row[c]) for c in varying)
        who = f"{row['backend']} {row['precision']}" + (f" ({setting})" if setting else "")
        dw, std = _times(row["dw_speed_up"]), _times(row["std_speed_up"])
        if dw.endswith(("faster", "slower")) and dw.split()[-1] == std.split()[-1]:
            std = std.rpartition(" ")[0]
        out.append(f"{who}: {dw} for the depthwise network, {std} for the standard twin")
    return out


def _setting(column: str, value: Any) -> str:
    if column in ("batch", "threads"):
        return f"{column[0]}{float(value):g}"
    return f"run {value}" if column == "run_id" else str(value)


RESULT_COLUMNS: tuple[Column, ...] = (
    ("device_name", "device", fmt_str),
    ("run_id", "run", fmt_str),
    ("source", "source", fmt_str),
    ("model", "model", fmt_str),
    ("backend", "backend", fmt_str),
    ("mode", "mode", fmt_str),
    ("precision", "precision", fmt_str),
    ("batch", "batch", fmt_int),
    ("threads", "threads", fmt_int),
    ("repeat", "repeat", fmt_int),
    ("status", "status", fmt_str),
    ("reason", "reason", fmt_str),
    ("latency_ms_p50", "p50 (ms)", fmt_ms),
    ("latency_ms_p90", "p90 (ms)", fmt_ms),
    ("latency_ms_p99", "p99 (ms)", fmt_ms),
    ("ci95", "median 95% CI (ms)", fmt_str),
    ("n_iter", "n", fmt_int),
    ("throughput_ips", "images/s", fmt_num1),
    ("peak_rss_mb", "peak RSS (MB)", fmt_num1),
    ("cpu_util", "CPU util", fmt_num2),
    ("roofline_pct", "roofline", fmt_pct),
    ("gmacs_per_s", "GMAC/s", fmt_num1),
    ("macs", "MACs", fmt_si),
    ("params", "params", fmt_si),
    ("load_ms", "load (ms)", fmt_num1),
    ("first_inference_ms", "first call (ms)", fmt_ms),
    ("rel_l2_err", "rel L2 err", fmt_sci),
    ("top1_agree", "top-1 agree", fmt_num3),
    ("top5_agree", "top-5 agree", fmt_num3),
    ("psnr_db", "PSNR (dB)", fmt_num1),
    ("size_mb", "size (MiB)", fmt_num2),
    ("width", "width", formatter("{:g}")),
    ("resolution", "res", fmt_int),
    ("backend_version", "version", fmt_str),
    ("governor", "governor", fmt_str),
    ("throttled", "throttled", fmt_str),
)
ENV_COLUMNS: tuple[Column, ...] = (
    ("run_key", "run", fmt_str),
    ("source", "source", fmt_str),
    ("device_name", "device", fmt_str),
    ("os_pretty", "OS", fmt_str),
    ("python", "Python", fmt_str),
    ("threads", "threads", fmt_str),
    ("governor", "governor", fmt_str),
    ("freq_cur_mhz", "freq (MHz)", fmt_int),
    ("temperature_c", "temp (°C)", fmt_num1),
    ("settings", "run settings", fmt_str),
)
PEAK_COLUMNS: tuple[Column, ...] = (
    ("run_key", "run", fmt_str),
    ("device_name", "device", fmt_str),
    ("threads", "threads", fmt_int),
    ("gmacs_per_s", "GEMM peak (GMAC/s)", fmt_num1),
    ("library", "set by", fmt_str),
    ("precision", "precision", fmt_str),
    ("size", "size (n×n)", fmt_int),
    ("candidates", "libraries tried (GMAC/s)", fmt_str),
    ("reason", "not measured because", fmt_str),
)
PRECISION_COLUMNS: tuple[Column, ...] = (
    ("device_name", "device", fmt_str),
    ("model", "model", fmt_str),
    ("backend_mode", "backend/mode", fmt_str),
    ("batch", "batch", fmt_int),
    ("threads", "threads", fmt_int),
    ("precision", "precision", fmt_str),
    ("latency_ms_p50", "p50 (ms)", fmt_ms),
    ("speed_up", "speed-up vs fp32", fmt_ratio),
    ("size_mb", "size (MiB)", fmt_num2),
    ("size_ratio", "size vs fp32", fmt_ratio),
    ("top1_agree", "top-1 agree", fmt_num3),
    ("top5_agree", "top-5 agree", fmt_num3),
    ("rel_l2_err", "rel L2 err", fmt_sci),
    ("psnr_db", "PSNR (dB)", fmt_num1),
    ("reason", "note", fmt_str),
    ("run_id", "run", fmt_str),
)
TWIN_COLUMNS: tuple[Column, ...] = (
    ("device_name", "device", fmt_str),
    ("backend_mode", "backend/mode", fmt_str),
    ("precision", "precision", fmt_str),
    ("batch", "batch", fmt_int),
    ("threads", "threads", fmt_int),
    ("dw_speed_up", "mobilenet_v2 speed-up", fmt_ratio),
    ("std_speed_up", "standard_conv speed-up", fmt_ratio),
    ("twin_ratio", "twin ÷ depthwise", fmt_ratio),
    ("dw_p50_ms", "mobilenet_v2 p50 (ms)", fmt_ms),
    ("std_p50_ms", "standard_conv p50 (ms)", fmt_ms),
    ("run_id", "run", fmt_str),
)
_FINGERPRINT: tuple[Column, ...] = (
    ("cpu_model", "CPU", fmt_str),
    ("physical_cores", "physical cores", fmt_int),
    ("logical_cores", "logical cores", fmt_int),
    ("ram_total_mb", "RAM (MB)", fmt_int),
    ("board", "board", fmt_str),
    ("chip", "chip", fmt_str),
    ("arch", "arch", fmt_str),
    ("os_pretty", "OS", fmt_str),
    ("python", "Python", fmt_str),
    ("governor", "governor", fmt_str),
)
