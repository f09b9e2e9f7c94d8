"""What every command shares: the console, the usage error and argument helpers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

#: Data text (reasons, paths) may hold ``:name:``, so no emoji codes; styles only on a terminal.
console = Console(emoji=False)
if not console.is_terminal:  # piped or captured: do not squeeze tables to 80 columns
    console = Console(emoji=False, width=160)


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def csv_list(kind: Callable[[str], object]) -> Callable[[str], list]:
    """An argparse type for comma-separated values of ``kind``."""

    def parse(text: str) -> list:
        try:
            return [kind(item.strip()) for item in text.split(",") if item.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a comma-separated list: {text!r}") from None

    return parse


def add_spec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="model name under models/ or a path to a .toml spec")
    parser.add_argument("--width", type=float, help="width multiplier (overrides the spec)")
    parser.add_argument("--resolution", type=int, help="input side in pixels (overrides the spec)")


def add_origin_args(parser: argparse.ArgumentParser, every_model: bool = False) -> None:
    """``--weights`` and ``--images``: the user's checkpoint and photos (local files)."""
    fits = " to every model it fits" if every_model else ""
    parser.add_argument(
        "--weights",
        type=Path,
        help="a pretrained MobileNetV2 checkpoint: keras.applications' legacy .h5 or a "
        f"torchvision state dict (.pth); applied{fits} (default: the spec's [weights] file, "
        "else generated weights)",
    )
    parser.add_argument(
        "--images",
        type=Path,
        help="a folder of JPEG/PNG photos (searched recursively): the evaluation images and, "
        "disjoint from them, the int8 calibration images (default: generated)",
    )


def footnote(notes: list[str], cell_id: str, reason: str) -> str:
    """Add ``[n] cell_id: reason`` (escaped) to a table's ``notes``; return its marker."""
    notes.append(escape(f"[{len(notes) + 1}] {cell_id}: {reason}"))
    return f"[{len(notes)}]"


def fmt_num(value: float | None, spec: str = ".2f") -> str:
    """A number for a table cell; empty when missing."""
    return "" if value is None or value != value else format(value, spec)
