"""One cell, measured inside its own fresh process (the child side of the runner).

The phases follow the measurement definitions in docs/architecture.md: import
the framework and pin its threads (``import_ms``, then ``rss_baseline_mb``), load
the artifact (``load_ms``, ``rss_load_mb``), the cold first call
(``first_inference_ms``), warm-up, the steady loop, then the accuracy cost: the
loaded model runs every evaluation image (at the cell's batch) and its outputs
are compared with the PyTorch fp32 reference. The child's peak RSS covers all
of it. Everything returned is plain data.
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
    from harness.inputs import read_evaluation
    from harness.parity import compare

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

    # The timed input: the evaluation images, cycled to the batch size.
    images = read_evaluation(export_dir)
    prepared = backend.prepare(images[np.arange(cell.batch) % images.shape[0]])
    result = time_call(lambda: backend.run(prepared), timing)
    reference_path = export_dir / REFERENCE
    errors = {}
    if reference_path.is_file():
        errors = compare(np.load(reference_path), evaluate(backend, images, cell.batch))

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
        "compute_note": backend.compute_note(),
        **errors,
    }


def evaluate(backend, images, batch: int):
    """The backend's outputs for every image, run ``batch`` at a time (the last batch
    is filled up by cycling the images, so every call has the timed shape)."""
    import numpy as np

    outputs = []
    for start in range(0, images.shape[0], batch):
        rows = np.arange(start, start + batch) % images.shape[0]
        out = np.asarray(backend.run(backend.prepare(images[rows])))
        outputs.append(out[: min(batch, images.shape[0] - start)])
    return np.concatenate(outputs)
