"""The results contract: run-folder layout, row columns and the sample file.

``results/<device_id>/<run_id>/`` holds ``results.csv`` (one row per cell, the
columns below, appended as each cell finishes), ``results.json`` (the same rows,
rewritten at the end), ``samples.csv`` (every raw latency sample),
``env.json`` (the device fingerprint, run settings, the thread variables of the
cells and the GEMM peak per thread count), ``cells.log`` (what the export and
cell processes printed) and ``report.html``. No framework imports.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: Per-layer profile rows of ``mobilebench profile`` (see harness.profiling.run).
PROFILE_CSV = "profile.csv"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
SAMPLES_CSV = "samples.csv"
ENV_JSON = "env.json"

#: The columns every row has, in order (docs/architecture.md). Scripts depend on these names.
COLUMNS = (
    "run_id",
    "timestamp",
    "device_id",
    "device_name",
    "model",
    "width",
    "resolution",
    "conv",
    "backend",
    "backend_version",
    "mode",
    "precision",
    "batch",
    "threads",
    "status",
    "reason",
    "import_ms",
    "load_ms",
    "first_inference_ms",
    "latency_ms_mean",
    "latency_ms_std",
    "latency_ms_min",
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p99",
    "latency_ms_ci95_low",
    "latency_ms_ci95_high",
    "n_iter",
    "throughput_ips",
    "rss_baseline_mb",
    "rss_load_mb",
    "peak_rss_mb",
    "rss_delta_mb",
    "cpu_util",
    "macs",
    "params",
    "artifact_bytes",
    "gmacs_per_s",
    "roofline_pct",
    "max_abs_err",
    "rel_l2_err",
    "top1_agree",
)
#: Extra columns, after the contract ones.
EXTRA_COLUMNS = (
    "top5_agree",
    "psnr_db",
    "size_mb",
    "weights",
    "inputs",
    "cell_id",
    "repeat",
    "latency_ms_max",
    "latency_ms_iqr",
    "warmup_iters",
    "wall_s",
    "temp_before_c",
    "temp_after_c",
    "governor",
    "throttled",
)
ALL_COLUMNS = COLUMNS + EXTRA_COLUMNS

#: The columns that identify a cell (equal across runs for the same measurement).
CELL_KEY = ("model", "width", "resolution", "backend", "mode", "precision", "batch", "threads")

#: Columns holding text; every other column is numeric.
TEXT_COLUMNS = frozenset(
    {
        "run_id",
        "timestamp",
        "device_id",
        "device_name",
        "model",
        "conv",
        "backend",
        "backend_version",
        "mode",
        "precision",
        "status",
        "reason",
        "cell_id",
        "governor",
        "throttled",
        "weights",
        "inputs",
    }
)

SAMPLE_COLUMNS = ("cell_id", "repeat", "iteration", "ms")

STATUSES = ("ok", "skipped", "failed", "timeout")


def cell_id(cell: Mapping[str, Any]) -> str:
    """A readable key, e.g. ``mobilenet_v2/w1/r224/onnxruntime/cpu/fp32/b1/t2``."""
    return (
        f"{cell['model']}/w{float(cell['width']):g}/r{cell['resolution']}/{cell['backend']}/"
        f"{cell['mode']}/{cell['precision']}/b{cell['batch']}/t{cell['threads']}"
    )


def write_env(folder: Path, env: Mapping[str, Any]) -> None:
    """A run folder's env.json (written before its first cell)."""
    (folder / ENV_JSON).write_text(json.dumps(env, indent=2, default=str) + "\n")


class RunWriter:
    """Appends rows and samples to a run folder as cells finish; never rewrites a row."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._init_csv(folder / RESULTS_CSV, ALL_COLUMNS)
        self._init_csv(folder / SAMPLES_CSV, SAMPLE_COLUMNS)

    @staticmethod
    def _init_csv(path: Path, columns: Iterable[str]) -> None:
        if not path.exists():
            with path.open("w", newline="") as fh:
                csv.writer(fh).writerow(columns)

    def write_env(self, env: Mapping[str, Any]) -> None:
        write_env(self.folder, env)

    def append(self, row: Mapping[str, Any], samples: Iterable[float] = ()) -> None:
        """Append one finished cell (and its raw samples), flushed to disk at once."""
        with (self.folder / SAMPLES_CSV).open("a", newline="") as fh:
            writer = csv.writer(fh)
            for i, ms in enumerate(samples):
                writer.writerow((row["cell_id"], row.get("repeat", 0), i, f"{ms:.6f}"))
        with (self.folder / RESULTS_CSV).open("a", newline="") as fh:
            csv.writer(fh).writerow(_csv_value(row.get(c)) for c in ALL_COLUMNS)
            fh.flush()

    def finish(self) -> list[dict[str, Any]]:
        """Write results.json from the rows on disk; return them."""
        rows = read_rows(self.folder / RESULTS_CSV)
        (self.folder / RESULTS_JSON).write_text(json.dumps(rows, indent=2) + "\n")
        return rows


def _csv_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results.csv as dicts with numbers parsed and empty cells as None."""
    with path.open(newline="") as fh:
        return [{k: parse_value(k, v) for k, v in row.items()} for row in csv.DictReader(fh)]


def as_number(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, NaN, a bool or not a number."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def parse_value(column: str, text: str | None) -> Any:
    """A CSV cell back to its value: None when empty, numbers for numeric columns."""
    if text is None or text == "":
        return None
    if column in TEXT_COLUMNS:
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
