"""The command line: ``mobilebench ...`` == ``python -m harness ...``.

All user-facing output goes through this package (rich tables and progress
bars). Bad input exits 2 with one line naming the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from harness.cli import device, models, profile, reports, run
from harness.cli.common import UsageError
from harness.isolation import quiet_frameworks
from harness.spec import SpecError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mobilebench",
        description="Benchmark MobileNetV2 and its standard-conv twin across runtimes on this "
        "device (also: python -m harness).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in (models, device, run, profile, reports):
        command.register(sub)
    return parser


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
