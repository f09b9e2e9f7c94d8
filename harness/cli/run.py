"""``mobilebench run``: the benchmark matrix, with a progress bar and a summary table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from harness.cli.common import UsageError, add_origin_args, console, csv_list, footnote
from harness.measure.timing import DEFAULT_TARGET_CI_PCT

if TYPE_CHECKING:
    from harness.runner import RunConfig


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's commands to the ``mobilebench`` parser."""
    run = sub.add_parser("run", help="benchmark the model x backend matrix on this device")
    add_matrix_args(run)
    run.add_argument(
        "--no-compile",
        action="store_true",
        help="skip precision variants that run through a JIT compile step (PyTorch int8: "
        "torch.compile)",
    )
    run.add_argument("--min-time", type=float, default=2.0, help="steady-loop seconds (min)")
    run.add_argument("--max-time", type=float, default=15.0, help="steady-loop seconds (cap)")
    run.add_argument("--min-iters", type=int, default=20, help="steady-loop samples (min)")
    run.add_argument("--warmup-time", type=float, default=0.5, help="warm-up seconds")
    run.add_argument(
        "--target-ci",
        type=float,
        default=DEFAULT_TARGET_CI_PCT,
        help="go on past --min-time until the median's 95%% CI is within this %%; rows still "
        "wider are flagged noisy (0: off)",
    )
    run.add_argument("--repeat", type=int, default=1, help="run each cell K times, interleaved")
    run.add_argument("--cooldown", type=float, default=0.0, help="seconds to pause between cells")
    run.add_argument(
        "--max-temp", type=float, help="before each cell, wait until the CPU is below this °C"
    )
    run.set_defaults(func=cmd_run)


def add_matrix_args(parser: argparse.ArgumentParser) -> None:
    """The matrix's flags, shared by ``run`` and ``profile``."""
    parser.add_argument(
        "--models",
        type=csv_list(str),
        default=["mobilenet_v2", "standard_conv"],
        help="comma-separated spec names or .toml paths (default: mobilenet_v2,standard_conv)",
    )
    parser.add_argument("--backends", type=csv_list(str), help="comma-separated (default: all)")
    parser.add_argument(
        "--modes", default="default", help="'default', 'all', or comma-separated mode names"
    )
    parser.add_argument(
        "--threads", type=csv_list(int), help="comma-separated (default: physical cores)"
    )
    parser.add_argument(
        "--batch", type=csv_list(int), default=[1], help="comma-separated batch sizes"
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        help="comma-separated precisions: fp32, fp16, bf16, int8, or all (default: fp32)",
    )
    parser.add_argument("--cell-timeout", type=float, default=300.0, help="seconds per cell")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results root folder")
    add_origin_args(parser, every_model=True)


def matrix_config(args: argparse.Namespace, command: str, **settings) -> RunConfig:
    """A :class:`RunConfig` from :func:`add_matrix_args`' flags (plus ``settings``),
    every value checked: bad input raises :class:`UsageError` with one line."""
    from harness.backends import REGISTRY, get_backend
    from harness.formats import parse_precisions
    from harness.measure.threads import physical_cores
    from harness.runner import RunConfig, load_specs

    error = f"mobilebench {command}: error:"
    try:
        precisions = parse_precisions(args.precision)
    except ValueError as exc:
        raise UsageError(f"{error} {exc}") from None
    backends = args.backends or list(REGISTRY)
    for name in backends:
        try:
            get_backend(name)
        except (KeyError, ImportError) as exc:
            raise UsageError(f"{error} {exc.args[0]}") from None
    try:
        load_specs(args.models)  # SpecError -> one line, exit 2
    except ValueError as exc:
        raise UsageError(f"{error} {exc}") from None
    for flag, values in (("--threads", args.threads or []), ("--batch", args.batch)):
        if any(v < 1 for v in values):
            raise UsageError(f"{error} {flag} must be >= 1")
    if args.cell_timeout < 0:
        raise UsageError(f"{error} --cell-timeout must be >= 0")
    modes = args.modes if args.modes in ("default", "all") else csv_list(str)(args.modes)
    if not isinstance(modes, str):
        offered = {m for name in backends for m in get_backend(name).modes}
        unknown = [m for m in modes if m not in offered]
        if unknown or not modes:
            raise UsageError(
                f"{error} no selected backend has mode {(unknown or [''])[0]!r} "
                f"(modes: default, all, {', '.join(sorted(offered))})"
            )
    return RunConfig(
        models=args.models,
        backends=backends,
        threads=args.threads or [physical_cores()],
        batches=args.batch,
        modes=modes,
        cell_timeout_s=args.cell_timeout,
        out=args.out,
        seed=args.seed,
        precisions=precisions,
        weights=args.weights,
        images=args.images,
        **settings,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from harness.measure.timing import TimingConfig
    from harness.runner import run

    for flag, value in (("--min-iters", args.min_iters), ("--repeat", args.repeat)):
        if value < 1:
            raise UsageError(f"mobilebench run: error: {flag} must be >= 1")
    for flag, value in (
        ("--min-time", args.min_time),
        ("--max-time", args.max_time),
        ("--warmup-time", args.warmup_time),
        ("--target-ci", args.target_ci),
        ("--cooldown", args.cooldown),
    ):
        if value < 0:
            raise UsageError(f"mobilebench run: error: {flag} must be >= 0")
    config = matrix_config(
        args,
        "run",
        timing=TimingConfig(
            warmup_time_s=args.warmup_time,
            min_iters=args.min_iters,
            min_time_s=args.min_time,
            max_time_s=max(args.max_time, args.min_time),
            target_ci_pct=args.target_ci or None,
        ),
        repeat=args.repeat,
        compile_variants=not args.no_compile,
        cooldown_s=args.cooldown,
        max_temp_c=args.max_temp,
    )
    from harness.cli.progress import RunProgress
    from harness.origin import OriginError
    from harness.report.write import write_report

    try:
        with RunProgress(console) as progress:
            state = run(config, progress.report)
    except OriginError as exc:
        raise UsageError(f"mobilebench run: error: {exc}") from None
    console.print(summary_table(state.rows, escape(str(state.folder))))
    broken = [row for row in state.rows if row["status"] in FAILED_STATUSES]
    if state.interrupted:
        console.print(f"[yellow]interrupted: {len(state.rows)} of {state.total} cells kept")
    elif broken:
        console.print(
            f"[red]{len(broken)} of {len(state.rows)} cells failed or timed out "
            "(their reasons are above); every row is written"
        )
    written = write_report([state.folder], state.folder / REPORT_HTML)
    if written.page:
        console.print(f"report: {written.page}", markup=False, highlight=False)
    if state.interrupted:
        return 130
    return EXIT_CELLS_FAILED if broken else 0


#: Row statuses that make ``mobilebench run`` exit with :data:`EXIT_CELLS_FAILED`.
FAILED_STATUSES = ("failed", "timeout")
EXIT_CELLS_FAILED = 1
REPORT_HTML = "report.html"


#: The first columns of a summary table: which cell, and its status.
CELL_COLUMNS = ("model", "backend", "mode", "precision", "batch", "threads", "status")


def summary_table(rows: list[dict], title: str) -> Table:
    """One line per cell: the numbers a user compares first; reasons as a caption."""
    table = Table(title=title, caption_justify="left")
    columns = (
        *CELL_COLUMNS,
        "p50 ms",
        "p90 ms",
        "CI95 ms",
        "cpu",
        "peak MB",
        "GMAC/s",
        "roofline",
        "rel_l2",
        "top1",
        "MB",
        "note",
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    notes = []
    for row in rows:
        ok = row["status"] == "ok"
        note = footnote(notes, row["cell_id"], row["reason"]) if row.get("reason") else ""
        table.add_row(
            row["model"],
            row["backend"],
            row["mode"],
            row["precision"],
            str(row["batch"]),
            str(row["threads"]),
            row["status"],
            f"{row['latency_ms_p50']:.2f}" if ok else "",
            f"{row['latency_ms_p90']:.2f}" if ok else "",
            f"{row['latency_ms_ci95_low']:.2f}-{row['latency_ms_ci95_high']:.2f}" if ok else "",
            f"{row['cpu_util']:.2f}" if ok else "",
            f"{row['peak_rss_mb']:.0f}" if ok else "",
            f"{row['gmacs_per_s']:.1f}" if ok else "",
            f"{row['roofline_pct']:.0f}%" if ok and row.get("roofline_pct") else "",
            f"{row['rel_l2_err']:.1e}" if ok and row.get("rel_l2_err") is not None else "",
            f"{row['top1_agree']:.2f}" if ok and row.get("top1_agree") is not None else "",
            f"{row['size_mb']:.1f}" if row.get("size_mb") else "",
            note,
        )
    table.caption = "\n".join(notes) or None
    return table
