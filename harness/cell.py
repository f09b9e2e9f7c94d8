"""One cell, measured inside its own fresh process (the child side of the runner).

The phases follow the measurement definitions in docs/architecture.md: import
the framework and pin its threads (``import_ms``, then ``rss_baseline_mb``), load
the artifact (``load_ms``, ``rss_load_mb``), the cold first call
(``first_inference_ms``, whose output is checked against the PyTorch fp32
reference), warm-up, the steady loop, and the child's peak RSS. Everything
returned is plain data.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.measure import memory
from harness.measure.timing import TimingConfig, time_call


@dataclass(frozen=True)
class Cell:
    """What one measurement is: model x backend x mode x precision x batch x threads."""

    model: str
    width: float
    resolution: int
    conv: str
    backend: str
    mode: str
    precision: str
    batch: int
    threads: int
    repeat: int = 0

    def key(self) -> dict[str, Any]:
        return asdict(self)


def measure_cell(cell: Cell, export_dir: Path, timing: TimingConfig) -> dict[str, Any]:
    """Run every phase of one cell in this process; return the row fields and samples."""
    import numpy as np

    from harness.backends import get_backend
    from harness.exporters.artifacts import REFERENCE, artifact_in, read_manifest
    from harness.parity import compare, parity_input

    cls = get_backend(cell.backend)
    start = time.perf_counter_ns()
    importlib.import_module(cls.module)
    backend = cls(cell.mode, cell.threads)
    import_ms = (time.perf_counter_ns() - start) / 1e6
    rss_baseline = memory.rss_mb()

    manifest = read_manifest(export_dir)
    artifact = artifact_in(export_dir, cls.artifact_format, cell.precision, manifest)
    start = time.perf_counter_ns()
    backend.load(artifact)
    load_ms = (time.perf_counter_ns() - start) / 1e6
    rss_load = memory.rss_mb()

    # The timed input is the parity input, cycled to the batch size, so the
    # first call's output can be held to the reference row by row.
    images = parity_input(manifest)
    rows = np.arange(cell.batch) % images.shape[0]
    prepared = backend.prepare(images[rows])
    result = time_call(lambda: backend.run(prepared), timing)
    reference_path = export_dir / REFERENCE
    errors = (
        compare(np.load(reference_path)[rows], np.asarray(result.first_output))
        if reference_path.is_file()
        else {}
    )

    return {
        "import_ms": import_ms,
        "load_ms": load_ms,
        "first_inference_ms": result.first_ms,
        "rss_baseline_mb": rss_baseline,
        "rss_load_mb": rss_load,
        "peak_rss_mb": memory.peak_rss_mb(),
        "cpu_util": result.cpu_util,
        "warmup_iters": result.warmup_iters,
        "wall_s": result.wall_time_s,
        "samples_ms": result.samples_ms,
        **errors,
    }
