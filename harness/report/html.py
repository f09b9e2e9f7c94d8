"""The self-contained HTML report: one file, inline CSS, SVG and JS, no network, printable.

Sections (each an element id): summary, latency, depthwise, latency-vs-macs,
memory, repeats, results, environment, inputs. Every piece of text that comes
from data goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import plots, tables

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
#: Columns whose text may wrap; every other table cell stays on one line.
WRAP_COLUMNS = frozenset({"reason", "settings"})
#: The results-table columns that fit a printed page; the others are screen-only.
PRINT_COLUMNS = frozenset(
    (
        *("device_name", "run_id", "source", "model", "backend", "mode", "batch", "threads"),
        *("repeat", "status", "reason", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99"),
        *("n_iter", "peak_rss_mb", "roofline_pct"),
    )
)
Format = Callable[[Any], str]
Column = tuple[str, str, Format]


def render_report(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    envs: Mapping[str, Mapping[str, Any]],
    out: Path,
    *,
    problems: Sequence[str] = (),
    title: str = "mobilebench report",
) -> Path:
    """Write the report for the frames of ``load_runs`` to ``out`` (one HTML file); return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_html(results, samples, envs, problems=problems, title=title))
    return out


def build_html(
    results: pd.DataFrame,
    samples: pd.DataFrame,
    envs: Mapping[str, Mapping[str, Any]],
    *,
    problems: Sequence[str] = (),
    title: str = "mobilebench report",
) -> str:
    """The report page as a string."""
    page = _Page(results, samples, envs)
    bodies = {
        "summary": page.summary(),
        "latency": page.latency(),
        "depthwise": page.depthwise(),
        "latency-vs-macs": page.latency_vs_macs(),
        "memory": page.memory(),
        "repeats": page.repeats(),
        "results": page.results_table(),
        "environment": page.environment(),
        "inputs": page.inputs(problems),
    }
    nav = "".join(f'<a href="#{sid}">{html.escape(name)}</a>' for sid, name in SECTIONS)
    sections = "\n".join(
        f'<section id="{sid}"><h2>{html.escape(name)}</h2>\n{bodies[sid]}</section>'
        for sid, name in SECTIONS
    )
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    devices = results["device_id"].dropna().nunique()
    lede = (
        f"{len(envs)} run(s) on {devices} device(s), {len(results)} row(s); generated {generated}."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><header><h1>{html.escape(title)}</h1><p>{html.escape(lede)}</p>"
        f"<nav>{nav}</nav></header>\n<main>{sections}</main>\n<script>{_JS}</script></body></html>\n"
    )


class _Page:
    """Derived tables computed once, one method per section."""

    def __init__(
        self,
        results: pd.DataFrame,
        samples: pd.DataFrame,
        envs: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.results = results
        self.samples = samples
        self.envs = envs
        self.cells = tables.cells(results, samples)
        self.colors = plots.palette(results["backend"].dropna().astype(str))
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
            return _note("No runs were loaded, so there is nothing to summarise.")
        best = tables.fastest(self.cells)
        parts = []
        for device_id, name in self.devices():
            rows = self.results[self.results["device_id"] == device_id]
            counts = rows["status"].value_counts().to_dict()
            tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            parts.append(f"<h3>{_esc(name or device_id)} <small>{_esc(device_id)}</small></h3>")
            parts.append(_fingerprint(self._latest_env(device_id)))
            parts.append(f"<p>Rows: {_esc(tally)}.</p>")
            mine = best[best["device_id"] == device_id] if len(best) else best
            if mine.empty:
                parts.append(_note("No cell was measured on this device (all skipped or failed)."))
                continue
            parts.append(
                _table(
                    mine,
                    [
                        ("model", "model", _str),
                        ("batch", "batch", _int),
                        ("backend", "fastest backend", _str),
                        ("mode", "mode", _str),
                        ("threads", "threads", _int),
                        ("latency_ms_p50", "p50 (ms)", _ms),
                        ("latency_ms_p90", "p90 (ms)", _ms),
                        ("peak_rss_mb", "peak RSS (MB)", _num1),
                        ("roofline_pct", "roofline (% of GEMM peak)", _pct),
                        ("source", "source", _str),
                        ("run_id", "run", _str),
                    ],
                )
            )
        return "\n".join(parts)

    def _latest_env(self, device_id: str) -> Mapping[str, Any]:
        mine = [env for key, env in sorted(self.envs.items()) if env.get("device_id") == device_id]
        return mine[-1] if mine else {}

    def latency(self) -> str:
        labelled = tables.labelled_samples(self.results, self.samples)
        if labelled.empty:
            return _note(
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
                parts.append(_note(f"{name or device_id}: no raw samples."))
                continue
            if mine["run_key"].nunique() > 1:  # one box per run, never pooled across runs
                run_ids = mine["run_key"].str.rpartition("/")[2]
                mine = mine.assign(label=mine["label"] + " · " + run_ids)
            svg = plots.latency_boxes(mine, name or device_id, self.colors)
            parts.append(self.figure(svg, f"Latency spread per cell on {name or device_id}"))
        missing = len(self.cells) - len(labelled[["run_key", "cell_id"]].drop_duplicates())
        if missing:
            parts.append(
                _note(f"{missing} measured cell(s) have no raw samples and are not drawn.")
            )
        return "\n".join(parts)

    def depthwise(self) -> str:
        table = tables.depthwise(self.cells)
        if table.empty:
            return _note(
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
        table["backend_mode"] = [
            f"{b}/{m or '?'}" for b, m in zip(table["backend"], table["mode"], strict=True)
        ]
        html_table = _table(
            table,
            [
                ("device_name", "device", _str),
                ("backend_mode", "backend/mode", _str),
                ("batch", "batch", _int),
                ("threads", "threads", _int),
                ("dw_p50_ms", "mobilenet_v2 p50 (ms)", _ms),
                ("std_p50_ms", "standard_conv p50 (ms)", _ms),
                ("latency_ratio", "latency ratio", _ratio),
                ("mac_ratio", "MAC ratio", _ratio),
                ("realised_pct", "realised", _pct),
                ("source", "source", _str),
                ("run_id", "run", _str),
            ],
            table_id="depthwise-table",
        )
        svg = plots.depthwise_bars(table, self.colors)
        caption = "MAC ratio vs p50 latency ratio, standard_conv ÷ mobilenet_v2"
        return intro + html_table + self.figure(svg, caption)

    def latency_vs_macs(self) -> str:
        peaks = {}
        for env in self.envs.values():
            peak = env.get("gemm_peak")
            if isinstance(peak, Mapping) and isinstance(peak.get("gmacs_per_s"), int | float):
                peaks[str(env.get("device_name") or env.get("device_id"))] = peak["gmacs_per_s"]
        svg = plots.latency_vs_macs(self.cells, peaks, self.colors)
        if svg is None:
            return _note("No measured cell has both a p50 latency and a MAC count.")
        text = (
            "<p>Dashed lines: the time a call would take at the device's measured dense "
            "GEMM peak; the gap to a point is the cell's distance from the roofline.</p>"
        )
        return text + self.figure(svg, "p50 latency against MACs per call")

    def memory(self) -> str:
        svg = plots.memory_vs_latency(self.cells, self.colors)
        if svg is None:
            return _note("No measured cell has both a p50 latency and a peak RSS.")
        return self.figure(svg, "Peak resident memory against p50 latency")

    def repeats(self) -> str:
        long = tables.repeats(self.results, self.samples)
        if long.empty:
            return _note(
                "Every cell was measured once (no repeat column above 0), so drift across "
                "repeats cannot be shown."
            )
        wide = tables.repeat_drift(long)
        repeat_cols = [c for c in wide.columns if c.startswith("repeat ")]
        columns: list[Column] = [("label", "cell", _str), ("run_key", "run", _str)]
        columns += [(c, f"{c} p50 (ms)", _ms) for c in repeat_cols]
        columns += [("drift_pct", "last vs first", _signed_pct), ("spread_pct", "spread", _pct)]
        return _table(wide, columns) + self.figure(
            plots.repeat_lines(long), "Per-repeat p50 relative to repeat 0"
        )

    def results_table(self) -> str:
        if self.results.empty:
            return _note("No rows.")
        frame = self.results.copy()
        frame["ci95"] = [
            f"{_ms(lo)}–{_ms(hi)}" if pd.notna(lo) and pd.notna(hi) else ""
            for lo, hi in zip(
                frame["latency_ms_ci95_low"], frame["latency_ms_ci95_high"], strict=True
            )
        ]
        text = (
            "<p>Every row of every run; click a column header to sort. Skipped and failed "
            "cells show their reason. The merged results.csv has every column.</p>"
        )
        return text + _table(
            frame,
            RESULT_COLUMNS,
            sortable=True,
            table_id="results-table",
            print_columns=PRINT_COLUMNS,
            row_class=lambda row: f"status-{row['status']}",
        )

    def environment(self) -> str:
        if not self.envs:
            return _note("No env.json was loaded.")
        rows = [_env_row(key, env) for key, env in sorted(self.envs.items())]
        settings = _table(pd.DataFrame(rows), ENV_COLUMNS)
        versions = pd.DataFrame(
            [
                {"run_key": key, **(env.get("versions") or {})}
                for key, env in sorted(self.envs.items())
            ]
        )
        packages = [c for c in versions.columns if c != "run_key"]
        if not packages:
            return settings + _note("No framework versions were recorded.")
        differing = {c for c in packages if versions[c].dropna().nunique() > 1}
        columns: list[Column] = [("run_key", "run", _str)]
        columns += [(p, f"{p} ≠" if p in differing else p, _str) for p in packages]
        note = (
            "<p>Packages marked ≠ differ between runs: compare their numbers with care.</p>"
            if differing
            else ""
        )
        return settings + "<h3>Versions</h3>" + note + _table(versions, columns)

    def inputs(self, problems: Sequence[str]) -> str:
        runs = "".join(
            f"<li>{_esc(key)} <small>({_esc(env.get('source'))}: {_esc(env.get('run_dir'))})"
            "</small></li>"
            for key, env in sorted(self.envs.items())
        )
        parts = [f"<h3>Runs</h3><ul>{runs}</ul>" if runs else _note("No run was loaded.")]
        if problems:
            items = "".join(f"<li>{_esc(p)}</li>" for p in problems)
            parts.append(f'<h3>Skipped inputs</h3><ul class="problems">{items}</ul>')
        else:
            parts.append("<p>Every input loaded without problems.</p>")
        return "\n".join(parts)


def _esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return html.escape(str(value))


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def _formatter(spec: str) -> Format:
    def fmt(value: Any) -> str:
        if _missing(value):
            return ""
        try:
            return spec.format(float(value))
        except (TypeError, ValueError):
            return str(value)

    return fmt


def _ms(value: Any) -> str:
    if _missing(value):
        return ""
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"


def _si(value: Any) -> str:
    if _missing(value):
        return ""
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:g}"


def _str(value: Any) -> str:
    return "" if _missing(value) else str(value)


_int = _formatter("{:.0f}")
_num1 = _formatter("{:.1f}")
_num2 = _formatter("{:.2f}")
_pct = _formatter("{:.1f}%")
_signed_pct = _formatter("{:+.1f}%")
_ratio = _formatter("{:.2f}×")
_sci = _formatter("{:.1e}")

RESULT_COLUMNS: tuple[Column, ...] = (
    ("device_name", "device", _str),
    ("run_id", "run", _str),
    ("source", "source", _str),
    ("model", "model", _str),
    ("backend", "backend", _str),
    ("mode", "mode", _str),
    ("batch", "batch", _int),
    ("threads", "threads", _int),
    ("repeat", "repeat", _int),
    ("status", "status", _str),
    ("reason", "reason", _str),
    ("latency_ms_p50", "p50 (ms)", _ms),
    ("latency_ms_p90", "p90 (ms)", _ms),
    ("latency_ms_p99", "p99 (ms)", _ms),
    ("ci95", "median 95% CI (ms)", _str),
    ("n_iter", "n", _int),
    ("throughput_ips", "images/s", _num1),
    ("peak_rss_mb", "peak RSS (MB)", _num1),
    ("cpu_util", "CPU util", _num2),
    ("roofline_pct", "roofline", _pct),
    ("gmacs_per_s", "GMAC/s", _num1),
    ("macs", "MACs", _si),
    ("params", "params", _si),
    ("load_ms", "load (ms)", _num1),
    ("first_inference_ms", "first call (ms)", _ms),
    ("rel_l2_err", "rel L2 err", _sci),
    ("top1_agree", "top-1 agree", _num2),
    ("width", "width", _formatter("{:g}")),
    ("resolution", "res", _int),
    ("precision", "precision", _str),
    ("backend_version", "version", _str),
    ("governor", "governor", _str),
    ("throttled", "throttled", _str),
)
ENV_COLUMNS: tuple[Column, ...] = (
    ("run_key", "run", _str),
    ("source", "source", _str),
    ("device_name", "device", _str),
    ("os", "OS", _str),
    ("python", "Python", _str),
    ("threads", "threads", _str),
    ("governor", "governor", _str),
    ("freq_cur_mhz", "freq (MHz)", _int),
    ("temperature_c", "temp (°C)", _num1),
    ("gemm_peak", "GEMM peak (GMAC/s)", _num1),
    ("settings", "run settings", _str),
)


def _env_row(key: str, env: Mapping[str, Any]) -> dict[str, Any]:
    run = env.get("run") if isinstance(env.get("run"), Mapping) else {}
    peak = env.get("gemm_peak") if isinstance(env.get("gemm_peak"), Mapping) else {}
    threads = run.get("threads")
    settings = {k: v for k, v in run.items() if k not in {"threads", "run_id"}}
    return {
        "run_key": key,
        "source": env.get("source"),
        "device_name": env.get("device_name") or env.get("device_id"),
        "os": env.get("os_pretty") or env.get("os"),
        "python": env.get("python"),
        "threads": ", ".join(map(str, threads)) if isinstance(threads, list) else threads,
        "governor": env.get("governor"),
        "freq_cur_mhz": env.get("freq_cur_mhz"),
        "temperature_c": env.get("temperature_c"),
        "gemm_peak": peak.get("gmacs_per_s"),
        "settings": "; ".join(f"{k}={_short_json(v)}" for k, v in settings.items()),
    }


def _short_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


_FINGERPRINT = (
    ("cpu_model", "CPU"),
    ("physical_cores", "physical cores"),
    ("logical_cores", "logical cores"),
    ("ram_total_mb", "RAM (MB)"),
    ("board", "board"),
    ("chip", "chip"),
    ("arch", "arch"),
    ("os_pretty", "OS"),
    ("python", "Python"),
    ("governor", "governor"),
)


def _fingerprint(env: Mapping[str, Any]) -> str:
    items = [(label, env.get(key)) for key, label in _FINGERPRINT]
    peak = env.get("gemm_peak")
    if isinstance(peak, Mapping) and peak.get("gmacs_per_s") is not None:
        items.append(("GEMM peak", f"{float(peak['gmacs_per_s']):.1f} GMAC/s"))
    shown = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{_esc(value)}</dd>"
        for label, value in items
        if value not in (None, "")
    )
    return f'<dl class="fingerprint">{shown}</dl>' if shown else _note("No env.json for device.")


def _table(
    frame: pd.DataFrame,
    columns: Iterable[Column],
    *,
    sortable: bool = False,
    table_id: str | None = None,
    row_class: Callable[[Mapping[str, Any]], str] | None = None,
    print_columns: frozenset[str] | None = None,
) -> str:
    """An HTML table; cells carry ``data-v`` (the raw value) for sorting and for tests.

    With ``print_columns``, every other column is marked ``screen-only`` (hidden in print).
    """
    columns = [c for c in columns if c[0] in frame.columns]

    def classes(key: str) -> str:
        names = ["wrap"] if key in WRAP_COLUMNS else []
        if print_columns is not None and key not in print_columns:
            names.append("screen-only")
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f"<th{classes(key)}>{html.escape(title)}</th>" for key, title, _ in columns)
    body = []
    for row in frame.to_dict(orient="records"):
        cls = f' class="{html.escape(row_class(row))}"' if row_class else ""
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            raw = "" if _missing(value) else value
            cells.append(f'<td{classes(key)} data-v="{_esc(raw)}">{html.escape(fmt(value))}</td>')
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    attrs = f' id="{table_id}"' if table_id else ""
    attrs += ' class="sortable"' if sortable else ""
    return (
        f'<div class="scroll"><table{attrs}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


_CSS = """
:root { --ink: #1d2330; --muted: #5b6472; --line: #d9dee6; --bg: #f6f8fb; --accent: #2457a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #fff; }
header { padding: 18px 28px 8px; border-bottom: 1px solid var(--line); background: var(--bg); }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { margin: 0 0 10px; font-size: 19px; padding-bottom: 4px;
  border-bottom: 2px solid var(--accent); }
h3 { margin: 18px 0 6px; font-size: 15px; }
h3 small, li small { color: var(--muted); font-weight: normal; }
nav { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 8px 0 4px; }
nav a { color: var(--accent); text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin: 26px 0; }
.note { color: var(--muted); font-style: italic; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top;
  white-space: nowrap; }
.wrap { white-space: normal; min-width: 18em; max-width: 32em; }
th { background: var(--bg); white-space: nowrap; }
td[data-v] { font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-dir="asc"]::after { content: " \\25B2"; }
table.sortable th[data-dir="desc"]::after { content: " \\25BC"; }
tr.status-skipped td { color: var(--muted); background: #f4f4f4; }
tr[class^="status-"] td { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
tr.status-failed td, tr.status-timeout td { background: #fdecec; }
dl.fingerprint { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px;
  margin: 4px 0 8px; font-size: 13px; }
dl.fingerprint dt { color: var(--muted); }
dl.fingerprint dd { margin: 0; }
figure { margin: 10px 0 18px; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; }
ul.problems li { color: #9b1c1c; }
@media print {
  @page { size: A4 landscape; margin: 10mm; }
  body { font-size: 10pt; }
  header { background: none; padding: 0 0 6px; }
  nav { display: none; }
  main { padding: 0; max-width: none; }
  .scroll { overflow: visible; }
  table { font-size: 7.5pt; }
  th, td { white-space: normal; padding: 2px 3px; }
  .wrap { min-width: 0; }
  .screen-only { display: none; }
  table.sortable th::after { content: none; }
  figure, tr, dl { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  section { break-before: auto; }
}
"""

_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var dir = th.dataset.dir === "asc" ? "desc" : "asc";
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.dir; });
      th.dataset.dir = dir;
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (row) {
        var v = row.cells[col].dataset.v;
        var n = Number(v);
        return v === "" ? null : (isNaN(n) ? v : n);
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        var c = typeof x === "number" && typeof y === "number"
          ? x - y : String(x).localeCompare(String(y));
        return dir === "asc" ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""
