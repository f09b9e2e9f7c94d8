"""The command line: ``mobilebench ...`` == ``python -m harness ...``.

All user-facing output goes through here (rich tables and progress bars). Bad
input exits 2 with one line naming the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.table import Table

from harness.isolation import quiet_frameworks
from harness.spec import SpecError, load_spec

EXIT_USAGE = 2
console = Console()
if not console.is_terminal:  # piped or captured: do not squeeze tables to 80 columns
    console = Console(width=160)


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def _csv(kind: Callable[[str], object]) -> Callable[[str], list]:
    def parse(text: str) -> list:
        try:
            return [kind(item.strip()) for item in text.split(",") if item.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a comma-separated list: {text!r}") from None

    return parse


def _add_spec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="model name under models/ or a path to a .toml spec")
    parser.add_argument("--width", type=float, help="width multiplier (overrides the spec)")
    parser.add_argument("--resolution", type=int, help="input side in pixels (overrides the spec)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mobilebench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    macs = sub.add_parser("macs", help="analytic MACs and parameters, per layer")
    _add_spec_args(macs)
    macs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    macs.set_defaults(func=cmd_macs)

    export = sub.add_parser("export", help="export a spec to every format and check parity")
    _add_spec_args(export)
    export.add_argument("--formats", type=_csv(str), help="comma-separated formats (default: all)")
    export.add_argument("--out", type=Path, help="copy the artifacts and manifest.json here")
    export.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    export.set_defaults(func=cmd_export)

    backends = sub.add_parser("backends", help="list backends, versions, modes, availability")
    backends.add_argument("--json", action="store_true", help="print JSON instead of a table")
    backends.set_defaults(func=cmd_backends)

    env = sub.add_parser("env", help="this device's fingerprint")
    env.add_argument("--json", action="store_true", help="print JSON instead of a table")
    env.set_defaults(func=cmd_env)

    run = sub.add_parser("run", help="benchmark the model x backend matrix on this device")
    run.add_argument("--models", type=_csv(str), default=["mobilenet_v2", "standard_conv"])
    run.add_argument("--backends", type=_csv(str), help="comma-separated (default: all)")
    run.add_argument(
        "--modes", default="default", help="'default', 'all', or comma-separated mode names"
    )
    run.add_argument("--threads", type=_csv(int), help="comma-separated (default: physical cores)")
    run.add_argument("--batch", type=_csv(int), default=[1], help="comma-separated batch sizes")
    run.add_argument("--min-time", type=float, default=2.0, help="steady-loop seconds (min)")
    run.add_argument("--max-time", type=float, default=15.0, help="steady-loop seconds (cap)")
    run.add_argument("--min-iters", type=int, default=20, help="steady-loop samples (min)")
    run.add_argument("--warmup-time", type=float, default=0.5, help="warm-up seconds")
    run.add_argument(
        "--target-ci",
        type=float,
        default=2.5,
        help="go on past --min-time until the median's 95%% CI is within this %% (0: off)",
    )
    run.add_argument("--cell-timeout", type=float, default=300.0, help="seconds per cell")
    run.add_argument("--repeat", type=int, default=1, help="run each cell K times, interleaved")
    run.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    run.add_argument("--cooldown", type=float, default=0.0, help="seconds to pause between cells")
    run.add_argument(
        "--max-temp", type=float, help="before each cell, wait until the CPU is below this °C"
    )
    run.add_argument("--out", type=Path, default=Path("results"), help="results root folder")
    run.set_defaults(func=cmd_run)

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
    return parser


def cmd_macs(args: argparse.Namespace) -> int:
    from harness.macs import count

    counted = count(load_spec(args.spec, args.width, args.resolution))
    if args.json:
        print(json.dumps(counted.to_dict(), indent=2))
        return 0
    table = Table(title=f"{counted.model}  width {counted.width:g}  {counted.resolution}px")
    for column in ("layer", "kind", "in (C,H,W)", "out (C,H,W)", "k", "s", "groups"):
        table.add_column(column)
    table.add_column("MACs", justify="right")
    table.add_column("params", justify="right")
    for row in counted.layers:
        table.add_row(
            row.name,
            row.kind,
            "x".join(map(str, row.in_shape)),
            "x".join(map(str, row.out_shape)),
            str(row.kernel or ""),
            str(row.stride or ""),
            str(row.groups),
            f"{row.macs:,}",
            f"{row.params:,}",
        )
    table.add_section()
    table.add_row("total", "", "", "", "", "", "", f"{counted.macs:,}", f"{counted.params:,}")
    console.print(table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from harness.exporters.artifacts import (
        FORMATS,
        copy_export,
        export,
        missing_requirements,
        read_manifest,
    )
    from harness.parity import check_export

    spec = load_spec(args.spec, args.width, args.resolution)
    formats = args.formats or list(FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(
            f"mobilebench export: error: unknown format {unknown[0]!r}: "
            f"choose from {', '.join(FORMATS)}"
        )
    for fmt in formats:
        reason = missing_requirements(fmt)
        if reason:
            raise UsageError(f"mobilebench export: error: {reason}")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"exporting {spec.name}", total=len(formats))

        def advance(fmt: str) -> None:
            progress.update(task, description=f"exporting {spec.name} -> {fmt}", advance=1)

        folder = export(spec, formats, seed=args.seed, on_progress=advance)
        progress.update(task, description=f"checking parity of {spec.name}", completed=len(formats))
        check_export(folder)
    if args.out:
        folder = copy_export(folder, args.out, formats)
    manifest = read_manifest(folder)
    table = Table(title=f"{spec.name} -> {folder}")
    for column in ("format", "file", "bytes", "parity", "rel_l2_err", "max_abs_err", "top1"):
        table.add_column(column, justify="right" if column in ("bytes",) else "left")
    worst = 0
    for fmt in formats:
        entry = manifest["artifacts"][fmt]
        parity = entry.get("parity", {})
        status = parity.get("status", "unchecked")
        if status == "skipped" and fmt == "coreml":
            mil = entry.get("mil", {})
            status = f"skipped; MIL {'matches' if mil.get('matches_spec') else 'DIFFERS from'} spec"
        if parity.get("status") in ("failed", "out_of_tolerance"):
            worst = 1
        table.add_row(
            fmt,
            entry["path"],
            f"{entry['bytes']:,}",
            status,
            _fmt_err(parity.get("rel_l2_err")),
            _fmt_err(parity.get("max_abs_err")),
            _fmt_err(parity.get("top1_agree")),
        )
    console.print(table)
    return worst


def _fmt_err(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def cmd_backends(args: argparse.Namespace) -> int:
    from harness.backends import REGISTRY

    rows = []
    for name, cls in REGISTRY.items():
        ok, reason = cls.available()
        modes = {mode: cls.mode_available(mode) for mode in cls.modes} if ok else {}
        rows.append(
            {
                "name": name,
                "version": cls.version(),
                "artifact_format": cls.artifact_format,
                "layout": cls.layout,
                "available": ok,
                "reason": reason,
                "modes": list(cls.modes),
                "modes_available": [m for m, (m_ok, _) in modes.items() if m_ok],
                "modes_unavailable": {m: r for m, (m_ok, r) in modes.items() if not m_ok},
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="backends")
    for column in ("backend", "version", "format", "modes", "status"):
        table.add_column(column)
    for row in rows:
        modes = ", ".join(
            m if m in row["modes_available"] else f"[dim]{m}[/dim]" for m in row["modes"]
        )
        status = "[green]available[/green]" if row["available"] else f"[yellow]{row['reason']}"
        unavailable = "; ".join(f"{m}: {r}" for m, r in row["modes_unavailable"].items())
        if row["available"] and unavailable:
            status += f" [dim]({unavailable})[/dim]"
        table.add_row(row["name"], row["version"] or "-", row["artifact_format"], modes, status)
    console.print(table)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from harness.device import fingerprint

    info = fingerprint()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    table = Table(title=f"{info['device_name']}  ({info['device_id']})", show_header=False)
    table.add_column("key")
    table.add_column("value")
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None) or None
        table.add_row(key, "[dim]-[/dim]" if value is None else str(value))
    console.print(table)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.backends import REGISTRY, get_backend
    from harness.measure.threads import physical_cores
    from harness.measure.timing import TimingConfig
    from harness.runner import RunConfig, run

    backends = args.backends or list(REGISTRY)
    for name in backends:
        try:
            get_backend(name)
        except (KeyError, ImportError) as exc:
            raise UsageError(f"mobilebench run: error: {exc.args[0]}") from None
    for name in args.models:
        load_spec(name)  # SpecError -> one line, exit 2
    numbers = {
        "--threads": args.threads or [],
        "--batch": args.batch,
        "--min-iters": [args.min_iters],
        "--repeat": [args.repeat],
    }
    for flag, values in numbers.items():
        if any(v < 1 for v in values):
            raise UsageError(f"mobilebench run: error: {flag} must be >= 1")
    for flag, value in (
        ("--min-time", args.min_time),
        ("--max-time", args.max_time),
        ("--cell-timeout", args.cell_timeout),
        ("--warmup-time", args.warmup_time),
        ("--target-ci", args.target_ci),
    ):
        if value < 0:
            raise UsageError(f"mobilebench run: error: {flag} must be >= 0")
    modes = args.modes if args.modes in ("default", "all") else _csv(str)(args.modes)
    config = RunConfig(
        models=args.models,
        backends=backends,
        threads=args.threads or [physical_cores()],
        batches=args.batch,
        modes=modes,
        timing=TimingConfig(
            warmup_time_s=args.warmup_time,
            min_iters=args.min_iters,
            min_time_s=args.min_time,
            max_time_s=max(args.max_time, args.min_time),
            target_ci_pct=args.target_ci or None,
        ),
        cell_timeout_s=args.cell_timeout,
        out=args.out,
        seed=args.seed,
        repeat=args.repeat,
        cooldown_s=args.cooldown,
        max_temp_c=args.max_temp,
    )
    from harness.cli_progress import RunProgress

    with RunProgress(console) as progress:
        state = run(config, progress.report)
    console.print(summary_table(state.rows, f"{state.folder}"))
    if state.interrupted:
        console.print(f"[yellow]interrupted: {len(state.rows)} of {state.total} cells kept")
        return 130
    return 0


def summary_table(rows: list[dict], title: str) -> Table:
    """One line per cell: the numbers a user compares first; reasons as a caption."""
    table = Table(title=title, caption_justify="left")
    columns = (
        "model",
        "backend",
        "mode",
        "batch",
        "threads",
        "status",
        "p50 ms",
        "p90 ms",
        "CI95 ms",
        "cpu",
        "peak MB",
        "GMAC/s",
        "roofline",
        "rel_l2",
        "note",
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    notes = []
    for row in rows:
        ok = row["status"] == "ok"
        note = ""
        if row.get("reason"):
            notes.append(f"[{len(notes) + 1}] {row['cell_id']}: {row['reason']}")
            note = f"[{len(notes)}]"
        table.add_row(
            row["model"],
            row["backend"],
            row["mode"],
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
            f"{row['rel_l2_err']:.1e}" if ok else "",
            note,
        )
    table.caption = "\n".join(notes) or None
    return table


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.html import render_report
    from harness.report.load import load_runs, write_merged

    paths = args.runs or [Path("results")]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"mobilebench report: error: no such file or folder: {missing[0]}")
    results, samples, envs, problems = load_runs(paths)
    for problem in problems:
        console.print(f"[yellow]skipped: {problem}", markup=False)
    if results.empty:
        raise UsageError(
            f"mobilebench report: error: no runs found in {', '.join(map(str, paths))}"
        )
    out = render_report(results, samples, envs, args.out, problems=problems)
    merged = write_merged(results, out.parent)
    console.print(
        f"{len(results)} cells from {len(envs)} runs -> {out} (merged: {merged[0].name}, "
        f"{merged[1].name})"
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
    table = Table(title=f"{args.new} vs {args.base} (threshold {args.threshold:g}%)")
    for column in ("cell", "verdict", "base p50 ms", "new p50 ms", "ratio", "95% CI", "flags"):
        table.add_column(column, overflow="fold")
    styles = {"regressed": "red", "broken": "red", "improved": "green", "fixed": "green"}
    for row in compare_rows(result):
        style = styles.get(row["verdict"], "")
        table.add_row(
            row["cell"],
            f"[{style}]{row['verdict']}[/{style}]" if style else row["verdict"],
            _fmt_num(row.get("base_p50_ms")),
            _fmt_num(row.get("new_p50_ms")),
            _fmt_num(row.get("ratio"), ".3f"),
            f"{_fmt_num(row.get('ci95_low'), '.3f')}-{_fmt_num(row.get('ci95_high'), '.3f')}"
            if row.get("ci95_low") is not None
            else "",
            "; ".join(row.get("flags") or []),
        )
    console.print(table)
    console.print(", ".join(f"{n} {verdict}" for verdict, n in result.counts().items()))
    return exit_code(result)


def _fmt_num(value: float | None, spec: str = ".2f") -> str:
    return "" if value is None or value != value else format(value, spec)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_frameworks()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SpecError as exc:
        print(f"mobilebench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mobilebench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
