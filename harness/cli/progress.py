"""The run's progress bar: cells done / total and the cell being measured."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RunProgress:
    """A rich progress bar driven by the runner's events."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._task = self._progress.add_task("preparing", total=None)

    def __enter__(self) -> RunProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def report(self, event: str, info: dict[str, Any]) -> None:
        if event == "phase":
            self._progress.update(self._task, description=info["text"])
        elif event == "notice":
            self._progress.console.print(info["text"], style="yellow", markup=False)
        elif event == "start":
            self._progress.update(self._task, total=info["total"], completed=0)
            self._progress.console.print(f"writing {info['folder']}", markup=False)
        elif event == "cell":
            cell = info["cell"]
            self._progress.update(
                self._task,
                description=f"{cell.model} · {cell.backend}/{cell.mode} · {cell.precision} · "
                f"b{cell.batch} "
                f"t{cell.threads}" + (f" · repeat {cell.repeat + 1}" if cell.repeat else ""),
            )
        elif event == "row":
            row = info["row"]
            if row["status"] != "ok":
                text = f"{row['cell_id']}: {row['status']}: {row['reason']}"
                self._progress.console.print(text, style="yellow", markup=False)
            self._progress.advance(self._task)
