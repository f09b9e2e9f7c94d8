"""One profile cell, inside its own fresh process: unprofiled p50, then the profile.

The cell loads its artifact in the measuring backend and times it unprofiled
(the same loop as ``run``, shorter), then hands the same file to its runtime's
profiler and maps the events to the spec's layers. Everything returned is plain
data: the profile rows without the run's identity columns.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from harness.cell import Cell
from harness.measure.timing import TimingConfig

#: The unprofiled loop the profile is held against (the same loop as ``run``, shorter).
UNPROFILED = TimingConfig(warmup_time_s=0.3, min_iters=20, min_time_s=1.0, max_time_s=5.0)


def profile_cell(
    cell: Cell,
    export_dir: Path,
    spec_dict: dict[str, Any],
    iterations: int,
    peak_gmacs_per_s: float | None,
    timing: TimingConfig = UNPROFILED,
) -> list[dict[str, Any]]:
    """Profile rows of one cell (one per spec layer, plus the unattributed row)."""
    import numpy as np

    from harness.backends import get_backend
    from harness.exporters.artifacts import artifact_in
    from harness.inputs import read_evaluation
    from harness.profiling.layers import spec_layers
    from harness.profiling.table import profile_rows
    from harness.spec import spec_from_dict

    spec = spec_from_dict(spec_dict)
    cls = get_backend(cell.backend)
    artifact = artifact_in(export_dir, cls.artifact_format, cell.precision)
    images = read_evaluation(export_dir)
    batch = images[np.arange(cell.batch) % images.shape[0]]

    unprofiled = unprofiled_p50(cls(cell.mode, cell.threads), artifact, batch, timing)
    times = profiler(cell.backend)(artifact, spec, cell.threads, cell.mode, batch, iterations)
    return profile_rows(times, spec_layers(spec), unprofiled, peak_gmacs_per_s, cell.batch)


def unprofiled_p50(backend, artifact, batch, timing: TimingConfig) -> float:
    """Median ms of the measuring backend's steady loop on ``batch``, no profiler attached."""
    from harness.measure.timing import time_call

    backend.load(artifact)
    prepared = backend.prepare(batch)
    return statistics.median(time_call(lambda: backend.run(prepared), timing).samples_ms)


def profiler(backend: str):
    """The per-layer profiler of a backend: ``fn(artifact, spec, threads, mode, batch,
    iterations) -> LayerTimes``."""
    if backend == "onnxruntime":
        from harness.profiling.onnxruntime import profile
    elif backend == "pytorch":
        from harness.profiling.pytorch import profile
    else:
        raise KeyError(f"{backend} has no per-layer profiler here")
    return profile
