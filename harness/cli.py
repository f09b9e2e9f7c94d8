"""The command line: ``mobilebench ...`` == ``python -m harness ...``.

All user-facing output goes through here (rich tables and progress bars). Bad
input exits 2 with one line naming the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.table import Table

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

    from harness.exporters.artifacts import FORMATS, copy_export, export, read_manifest
    from harness.parity import check_export

    spec = load_spec(args.spec, args.width, args.resolution)
    formats = args.formats or list(FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UsageError(
            f"mobilebench export: error: unknown format {unknown[0]!r}: "
            f"choose from {', '.join(FORMATS)}"
        )
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


def _quiet_frameworks() -> None:
    """Keep framework start-up chatter out of the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_frameworks()
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
