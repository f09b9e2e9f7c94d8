"""One call from input paths to a written report: load, render the page, merge the tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.report.html import TITLE, render_report
from harness.report.load import load_frames, write_merged


@dataclass(frozen=True)
class Written:
    """What :func:`write_report` loaded and wrote."""

    #: The HTML page; None when no row was loaded (then nothing is written).
    page: Path | None
    #: ``results.csv`` and ``results.json`` beside the page, when asked for.
    merged: tuple[Path, ...]
    rows: int
    runs: int
    #: One line per input that was skipped while loading.
    problems: tuple[str, ...]


def write_report(
    paths: Sequence[Path], out: Path, *, merged: bool = False, title: str = TITLE
) -> Written:
    """Load ``paths`` (run folders, folders of runs, pytest-benchmark JSON) and write ``out``.

    With ``merged``, every loaded row also goes to ``results.csv``/``results.json``
    in ``out``'s folder; leave it off when that folder is a run folder, whose own
    results.csv it would replace.
    """
    frames = load_frames(paths)
    if frames.results.empty and frames.profiles.empty:
        return Written(None, (), 0, len(frames.runs), frames.problems)
    page = render_report(frames, out, title=title)
    tables = write_merged(frames.results, out.parent) if merged else ()
    return Written(page, tuple(tables), len(frames.results), len(frames.runs), frames.problems)
