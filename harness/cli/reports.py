"""``mobilebench report`` and ``mobilebench compare``: pages to read and a regression gate."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from harness.cli.common import UsageError, console, fmt_num


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's commands to the ``mobilebench`` parser."""
    report = sub.add_parser("report", help="one self-contained HTML page from run folders")
    report.add_argument(
        "runs",
        nargs="*",
        type=Path,
        help="run folders, folders of runs, or pytest-benchmark JSON files (default: results/)",
    )
    report.add_argument(
        "--out", type=Path, default=Path("results/report.html"), help="the HTML file"
    )
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="did anything get slower between two runs?")
    compare.add_argument("base", type=Path, help="the base run folder")
    compare.add_argument("new", type=Path, help="the new run folder")
    compare.add_argument(
        "--threshold", type=float, default=5.0, help="regression threshold in %% (default 5)"
    )
    compare.set_defaults(func=cmd_compare)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.write import write_report

    paths = args.runs or [Path("results")]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"mobilebench report: error: no such file or folder: {missing[0]}")
    written = write_report(paths, args.out, merged=True)
    for problem in written.problems:
        console.print(f"[yellow]skipped:[/yellow] {escape(problem)}")
    if written.page is None:
        raise UsageError(
            f"mobilebench report: error: no runs found in {', '.join(map(str, paths))}"
        )
    merged = ", ".join(path.name for path in written.merged)
    console.print(
        escape(
            f"{written.rows} cells from {written.runs} runs -> {written.page} (merged: {merged})"
        )
    )
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import compare_rows, compare_runs, exit_code

    if args.threshold <= 0:
        raise UsageError("mobilebench compare: error: --threshold must be > 0")
    try:
        result = compare_runs(args.base, args.new, args.threshold)
    except ValueError as exc:
        raise UsageError(f"mobilebench compare: error: {exc}") from None
    for problem in result.problems:
        console.print(f"[yellow]skipped:[/yellow] {escape(problem)}")
    table = Table(title=escape(f"{args.new} vs {args.base} (threshold {args.threshold:g}%)"))
    table.add_column("cell", no_wrap=True)
    for column in ("precision", "verdict", "base ms", "new ms", "new/base", "95% CI"):
        table.add_column(column, overflow="fold")
    for column in ("top-1 agree", "rel L2 err", "flags"):
        table.add_column(column, overflow="fold")
    styles = {"regressed": "red", "broken": "red", "improved": "green", "fixed": "green"}
    for row in compare_rows(result):
        table.add_row(
            escape(row["cell"]),
            escape(row["precision"]),
            Text(row["verdict"], style=styles.get(row["verdict"], "")),
            fmt_num(row.get("base_p50_ms")),
            fmt_num(row.get("new_p50_ms")),
            fmt_num(row.get("ratio"), ".3f"),
            f"{fmt_num(row.get('ci95_low'), '.3f')}-{fmt_num(row.get('ci95_high'), '.3f')}"
            if row.get("ci95_low") is not None
            else "",
            _change(row.get("base_top1_agree"), row.get("new_top1_agree"), ".3f"),
            _change(row.get("base_rel_l2_err"), row.get("new_rel_l2_err"), ".1e"),
            escape(row["flags"]),
        )
    _print_wide(table)
    console.print(", ".join(f"{n} {verdict}" for verdict, n in result.counts().items()))
    return exit_code(result)


def _change(base: float | None, new: float | None, spec: str) -> str:
    """``1.000 → 0.938``; one value when both runs agree; empty when neither has one."""
    if base is None and new is None:
        return ""
    if base == new:
        return fmt_num(new, spec)
    return f"{fmt_num(base, spec) or '?'} → {fmt_num(new, spec) or '?'}"


def _print_wide(table: Table) -> None:
    """On a terminal, fit its width; piped or captured, print at the table's natural width
    so each cell stays on one line (scripts grep the lines)."""
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    wide = Console(emoji=False, width=max(console.width, natural), file=console.file)
    wide.print(table)
