"""``mobilebench backends`` and ``mobilebench env``: what runs here, and on what."""

from __future__ import annotations

import argparse
import json

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.cli.common import console


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's commands to the ``mobilebench`` parser."""
    backends = sub.add_parser("backends", help="list backends, versions, modes, availability")
    backends.add_argument("--json", action="store_true", help="print JSON instead of a table")
    backends.set_defaults(func=cmd_backends)

    env = sub.add_parser("env", help="this device's fingerprint")
    env.add_argument("--json", action="store_true", help="print JSON instead of a table")
    env.set_defaults(func=cmd_env)


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
        modes = Text(", ").join(
            Text(m, style="" if m in row["modes_available"] else "dim") for m in row["modes"]
        )
        status = (
            Text("available", style="green")
            if row["available"]
            else Text(row["reason"], style="yellow")
        )
        unavailable = "; ".join(f"{m}: {r}" for m, r in row["modes_unavailable"].items())
        if row["available"] and unavailable:
            status.append(f" ({unavailable})", style="dim")
        table.add_row(
            escape(row["name"]),
            escape(row["version"] or "-"),
            escape(row["artifact_format"]),
            modes,
            status,
        )
    console.print(table)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from harness.device import fingerprint

    info = fingerprint()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    table = Table(title=escape(f"{info['device_name']}  ({info['device_id']})"), show_header=False)
    table.add_column("key")
    table.add_column("value")
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items() if v is not None) or None
        table.add_row(escape(key), Text("-", style="dim") if value is None else escape(str(value)))
    console.print(table)
    return 0
