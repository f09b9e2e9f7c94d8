"""``mobilebench profile``'s matrix: one fresh process per cell, rows written as they finish.

The same plan, skips, model preparation, exports and GEMM peaks as ``run``
(:mod:`harness.runner`); each runnable cell is profiled in its own spawned
child (:func:`harness.profiling.cell.profile_cell`) with the cell's thread
settings. A cell whose runtime has no per-layer profiler is a ``skipped`` row
naming the missing API; a profiler that fails or cannot be mapped costs its own
cell (``failed``). ``profile.csv`` and ``profile.json`` are rewritten after
every cell, so an interrupted run keeps all it finished.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cell import Cell
from harness.isolation import in_child
from harness.measure.threads import thread_env
from harness.profiling.table import PROFILE_COLUMNS
from harness.results import PROFILE_CSV
from harness.runner import CELL_LOG, Reporter, RunConfig, _noop_reporter, begin_run, cell_identity

if TYPE_CHECKING:
    from harness.exporters.isolated import Prepared

PROFILE_JSON = "profile.json"
#: Profiled calls per cell (after the profiler's own warm-up).
DEFAULT_ITERATIONS = 20


@dataclass
class ProfileState:
    """What a profile run has written so far."""

    folder: Path
    run_id: str
    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)  # one summary per cell
    interrupted: bool = False


def profile_run(
    config: RunConfig, iterations: int = DEFAULT_ITERATIONS, report: Reporter = _noop_reporter
) -> ProfileState:
    """Profile every cell of ``config``'s matrix; returns the state even when interrupted."""
    from harness.profiling.support import profile_skip_reason

    started = begin_run(
        config,
        report,
        extra_skip=lambda c: profile_skip_reason(c.backend, c.mode, c.precision),
        run_settings={"profile_iterations": iterations},
    )
    models, folder = started.models, started.folder
    state = ProfileState(folder=folder, run_id=started.run_id, total=len(started.cells))
    report("start", {"total": len(started.cells), "folder": folder})
    try:
        for cell in started.cells:
            report("cell", {"cell": cell})
            base = {**_identity(cell, models[cell.model]), **started.identity}
            if started.skips[cell]:
                rows = [{**base, "status": "skipped", "reason": started.skips[cell]}]
            else:
                peak = started.peak(cell).get("gmacs_per_s")
                job = (cell, models[cell.model].spec.to_dict(), iterations, peak)
                rows = _profile_one(base, job, started.exports, config.cell_timeout_s, folder)
            state.rows.extend(rows)
            state.cells.append(rows[0])
            write_profile(folder, state.rows)
            report("row", {"row": rows[0]})
    except KeyboardInterrupt:
        state.interrupted = True
    return state


def _identity(cell: Cell, model: Prepared) -> dict[str, Any]:
    """The run's row identity without the model totals (a profile row has its layer's MACs)."""
    row = cell_identity(cell, model)
    del row["macs"], row["params"]
    return row


def _profile_one(
    base: dict[str, Any],
    job: tuple[Cell, dict[str, Any], int, float | None],
    exports: dict[tuple[str, str], Path | str],
    timeout_s: float,
    folder: Path,
) -> list[dict[str, Any]]:
    """The cell's profile rows (profiled in a child), or its one failed row."""
    from harness.backends import get_backend
    from harness.formats import get_format
    from harness.profiling.cell import profile_cell

    cell, spec_dict, iterations, peak = job
    key = get_format(get_backend(cell.backend).artifact_format).key(cell.precision)
    export = exports.get((cell.model, key))
    if not isinstance(export, Path):
        return [{**base, "status": "failed", "reason": export or "no artifact"}]
    outcome = in_child(
        profile_cell,
        (cell, export, spec_dict, iterations, peak),
        timeout_s=timeout_s,
        env=thread_env(cell.threads),
        log_path=folder / CELL_LOG,
    )
    if outcome["status"] != "ok":
        return [{**base, "status": outcome["status"], "reason": outcome["reason"]}]
    return [{**base, **row, "status": "ok"} for row in outcome["result"]]


def write_profile(folder: Path, rows: list[dict[str, Any]]) -> None:
    """``profile.csv`` and ``profile.json`` of every row so far, each replaced atomically."""
    columns = [*PROFILE_COLUMNS, *sorted({k for r in rows for k in r} - set(PROFILE_COLUMNS))]
    tmp = folder / f".{PROFILE_CSV}.tmp"
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(folder / PROFILE_CSV)
    tmp = folder / f".{PROFILE_JSON}.tmp"
    records = [{column: row.get(column) for column in columns} for row in rows]
    tmp.write_text(json.dumps(records, indent=2, default=str) + "\n")
    tmp.replace(folder / PROFILE_JSON)
