"""``mobilebench profile``: per-layer times mapped to the spec's layers, with a summary table."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from harness.cli.common import UsageError, console, fmt_num, footnote
from harness.cli.run import (
    CELL_COLUMNS,
    EXIT_CELLS_FAILED,
    FAILED_STATUSES,
    REPORT_HTML,
    add_matrix_args,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's command to the ``mobilebench`` parser."""
    from harness.profiling.run import DEFAULT_ITERATIONS

    profile = sub.add_parser(
        "profile",
        help="per-layer times from each runtime's profiler, mapped to the spec's layers",
    )
    add_matrix_args(profile)
    profile.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        help=f"profiled calls per cell (default {DEFAULT_ITERATIONS})",
    )
    profile.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    from harness.cli.progress import RunProgress
    from harness.cli.run import matrix_config
    from harness.origin import OriginError
    from harness.profiling.run import profile_run
    from harness.report.write import write_report

    if args.iterations < 1:
        raise UsageError("mobilebench profile: error: --iterations must be >= 1")
    config = matrix_config(args, "profile")
    try:
        with RunProgress(console) as progress:
            state = profile_run(config, args.iterations, progress.report)
    except OriginError as exc:
        raise UsageError(f"mobilebench profile: error: {exc}") from None
    console.print(summary_table(state.rows, escape(str(state.folder))))
    written = write_report([state.folder], state.folder / REPORT_HTML)
    if written.page:
        console.print(f"report: {written.page}", markup=False, highlight=False)
    if state.interrupted:
        return 130
    broken = [row for row in state.cells if row["status"] in FAILED_STATUSES]
    return EXIT_CELLS_FAILED if broken else 0


def summary_table(rows: list[dict], title: str) -> Table:
    """One line per cell: where its time goes (the largest roles) and the profiler's cost."""
    from harness.profiling.table import role_shares

    table = Table(title=title, caption_justify="left")
    for column in (
        *CELL_COLUMNS,
        "p50 ms",
        "profiled ms",
        "overhead",
        "time by role",
    ):
        table.add_column(column, no_wrap=column != "time by role")
    notes = []
    for cell in _cells(rows):
        first = cell[0]
        ok = first["status"] == "ok"
        shares = role_shares(cell) if ok else {}
        top = sorted(shares.items(), key=lambda item: -item[1])[:3]
        text = ", ".join(f"{role} {share:.0%}" for role, share in top)
        if not ok:
            text = footnote(notes, first["cell_id"], first["reason"])
        table.add_row(
            first["model"],
            first["backend"],
            first["mode"],
            first["precision"],
            str(first["batch"]),
            str(first["threads"]),
            first["status"],
            fmt_num(first.get("unprofiled_p50_ms")) if ok else "",
            fmt_num(first.get("profiled_ms")) if ok else "",
            fmt_num(first.get("overhead_ratio"), ".2f") + "x" if ok else "",
            text,
        )
    table.caption = "\n".join(notes) or None
    return table


def _cells(rows: list[dict]) -> list[list[dict]]:
    """The rows grouped by cell, in order."""
    cells: dict[str, list[dict]] = {}
    for row in rows:
        cells.setdefault(row["cell_id"], []).append(row)
    return list(cells.values())
