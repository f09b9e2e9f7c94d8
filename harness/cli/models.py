"""``mobilebench macs`` and ``mobilebench export``: what a spec costs, and its files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from harness.cli.common import UsageError, add_origin_args, add_spec_args, console, csv_list
from harness.spec import load_spec


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's commands to the ``mobilebench`` parser."""
    macs = sub.add_parser("macs", help="analytic MACs and parameters, per layer")
    add_spec_args(macs)
    macs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    macs.set_defaults(func=cmd_macs)

    export = sub.add_parser("export", help="export a spec to every format and check parity")
    add_spec_args(export)
    export.add_argument(
        "--formats", type=csv_list(str), help="comma-separated formats (default: all)"
    )
    export.add_argument(
        "--precision",
        default="fp32",
        help="comma-separated precisions: fp32, fp16, bf16, int8, or all (default: fp32); "
        "each format writes the variants it has beside its fp32 file",
    )
    export.add_argument("--out", type=Path, help="copy the artifacts and manifest.json here")
    export.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    add_origin_args(export)
    export.set_defaults(func=cmd_export)


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

    from harness.exporters.artifacts import copy_export, read_manifest
    from harness.exporters.isolated import EXPORT_LOG, export_isolated, prepare_model
    from harness.formats import FORMATS, artifact_keys, missing_for, parse_precisions
    from harness.origin import OriginError

    spec = load_spec(args.spec, args.width, args.resolution)
    try:
        precisions = parse_precisions(args.precision)
        formats = artifact_keys(args.formats or list(FORMATS), precisions)
    except ValueError as exc:
        raise UsageError(f"mobilebench export: error: {exc}") from None
    reason = missing_for(formats)
    if reason:
        raise UsageError(f"mobilebench export: error: {reason}")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"preparing {spec.name}'s weights and images", total=None)
        weights = args.weights or (Path(spec.weights) if spec.weights else None)
        try:
            model = prepare_model(spec, args.seed, weights, args.images)
        except OriginError as exc:
            raise UsageError(f"mobilebench export: error: {exc}") from None
        for problem in model.origin.problems:
            progress.console.print(f"images: {problem}", style="yellow", markup=False)
        folder = model.folder

        def announce(step: str) -> None:
            progress.update(task, description=f"exporting {spec.name} ({step})")

        results = export_isolated(
            model.spec,
            formats,
            args.seed,
            folder / EXPORT_LOG,
            on_step=announce,
            origin=model.origin,
        )
    failed = {f: r for f, r in results.items() if not isinstance(r, Path)}
    exported = [f for f in formats if f not in failed]
    if args.out:
        folder = copy_export(folder, args.out, exported)
    manifest = read_manifest(folder)
    table = Table(title=escape(f"{spec.name} -> {folder}"))
    table.caption = escape(f"weights: {model.weights}\ninputs: {model.inputs}")
    table.caption_justify = "left"
    columns = ("artifact", "file", "bytes", "parity", "rel_l2_err", "max_abs_err", "top1")
    for column in columns:
        table.add_column(column, justify="right" if column in ("bytes",) else "left")
    worst = 1 if failed else 0
    for fmt in formats:
        if fmt in failed:
            table.add_row(fmt, "", "", escape(str(failed[fmt])), "", "", "")
            continue
        entry = manifest["artifacts"][fmt]
        parity = entry.get("parity", {})
        status = parity.get("status", "unchecked")
        if status == "skipped" and "mil" in entry:
            mil = entry.get("mil", {})
            status = f"skipped; MIL {'matches' if mil.get('matches_spec') else 'DIFFERS from'} spec"
        if parity.get("status") in ("failed", "out_of_tolerance"):
            worst = 1
        table.add_row(
            fmt,
            entry["path"],
            f"{entry['bytes']:,}",
            escape(status),
            _fmt_err(parity.get("rel_l2_err")),
            _fmt_err(parity.get("max_abs_err")),
            _fmt_err(parity.get("top1_agree")),
        )
    console.print(table)
    if failed:
        console.print(f"log: {folder / EXPORT_LOG}", markup=False, highlight=False)
    return worst


def _fmt_err(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"
