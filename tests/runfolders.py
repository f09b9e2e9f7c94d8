"""Synthetic run folders for the report tests: realistic numbers from a seeded generator.

``make_run`` writes ``<root>/<device_id>/<run_id>/`` through :class:`RunWriter`,
so the files are exactly what the runner writes; ``old_columns=True`` writes an
older, shorter column set (plus one unknown column), no samples and no GEMM
peak; ``old_peak=True`` writes the older single-measurement ``gemm_peak``;
``fp32_peak_only=True`` writes ``gemm_peak`` without ``gemm_peaks`` (env.json
before precisions). ``precisions`` adds int8/fp16/bf16 cells: each backend's
variant is its fp32 cell sped up by :data:`SPEED_UP` (with the accuracy cost of
:data:`ACCURACY`); a backend without the variant gets a skipped row with its
format's reason.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

from harness.formats import FP32, get_format
from harness.measure.stats import summarize
from harness.results import COLUMNS, RunWriter, cell_id

# Analytic counts of the shipped specs at width 1.0, resolution 224 (harness.macs).
MACS = {"mobilenet_v2": 300_774_272, "standard_conv": 5_549_139_968}
PARAMS = {"mobilenet_v2": 3_504_872, "standard_conv": 44_050_952}
CONV = {"mobilenet_v2": "depthwise", "standard_conv": "standard"}
# mobilenet_v2 p50 (ms, batch 1, 1 thread, on a fast laptop core) and the
# standard_conv / mobilenet_v2 wall-time ratio per backend: far below the 18.4x MAC ratio.
BASE_MS = {"onnxruntime": 9.0, "pytorch": 14.0, "tflite": 10.5}
STD_RATIO = {"onnxruntime": 7.5, "pytorch": 5.0, "tflite": 9.5}
PACKAGES = {"onnxruntime": "onnxruntime", "pytorch": "torch", "tflite": "ai-edge-litert"}
MODES = {"onnxruntime": "cpu", "pytorch": "eager", "tflite": "xnnpack"}
BASE_RSS_MB = {"onnxruntime": 110.0, "pytorch": 260.0, "tflite": 95.0}
OLD_DROPPED = ("roofline_pct", "gmacs_per_s", "rss_delta_mb", "max_abs_err")
FORMAT_OF = {"onnxruntime": "onnx", "pytorch": "pytorch", "tflite": "tflite", "keras": "keras"}
# fp32 p50 / variant p50 per backend, precision and convolution kind: int8 pays off
# more for the standard twin (dense 3x3 GEMMs) than for the depthwise network.
SPEED_UP = {
    ("onnxruntime", "int8"): {"depthwise": 1.8, "standard": 3.0},
    ("onnxruntime", "fp16"): {"depthwise": 0.92, "standard": 0.97},
    ("tflite", "int8"): {"depthwise": 2.0, "standard": 3.5},
    ("tflite", "fp16"): {"depthwise": 1.0, "standard": 1.01},
    ("pytorch", "int8"): {"depthwise": 1.5, "standard": 2.6},
    ("pytorch", "bf16"): {"depthwise": 1.3, "standard": 2.1},
}
# What the runtime really computes in, when the file's precision does not say it.
COMPUTE_NOTE = {
    ("tflite", "fp16"): "fp16 weights dequantized to fp32 at load; computed in fp32",
    ("onnxruntime", "fp16"): "ops without an fp16 CPU kernel run in fp32 between Cast nodes",
}
# Accuracy against the PyTorch fp32 reference on 64 evaluation images.
ACCURACY = {
    FP32: {"max_abs_err": 2.1e-6, "rel_l2_err": 3.4e-7, "top1_agree": 1.0, "top5_agree": 1.0},
    "fp16": {"max_abs_err": 1.9e-3, "rel_l2_err": 6.0e-4, "top1_agree": 1.0, "top5_agree": 1.0},
    "bf16": {"max_abs_err": 0.41, "rel_l2_err": 0.15, "top1_agree": 0.8125, "top5_agree": 0.96875},
    "int8": {"max_abs_err": 1.3, "rel_l2_err": 0.41, "top1_agree": 0.5625, "top5_agree": 0.84375},
}
PSNR_DB = {FP32: 131.4, "fp16": 64.2, "bf16": 21.8, "int8": 13.6}
# Per-backend shifts of the int8 agreement, so the Pareto front has something to choose.
INT8_TOP1 = {"onnxruntime": 0.5625, "tflite": 0.625, "pytorch": 0.5}
BYTES_PER_WEIGHT = {FP32: 4, "fp16": 2, "bf16": 2, "int8": 1}
# The GEMM peak of a precision relative to fp32 (None: no native arithmetic, with why).
PEAK_SCALE = {FP32: 1.0, "bf16": 2.0, "int8": 4.0, "fp16": None}
NO_FP16 = "no native fp16 arithmetic on this CPU: no avx512fp16 or asimdhp"


@dataclass(frozen=True)
class Device:
    """A fake device: identity, how much slower than the laptop, and its versions."""

    device_id: str
    device_name: str
    cpu_model: str
    arch: str
    slowdown: float
    gemm_gmacs: float
    versions: Mapping[str, str] = field(default_factory=dict)


LAPTOP = Device(
    "x86-5f3a9c21",
    "Intel Core i7-1185G7 (4 cores)",
    "11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz",
    "x86_64",
    1.0,
    110.0,
    {"torch": "2.13.0", "onnxruntime": "1.32.0", "ai-edge-litert": "2.3.0", "numpy": "2.4.6"},
)
PI5 = Device(
    "pi-0c41d7e2",
    "Raspberry Pi 5 Model B Rev 1.0",
    "ARM Cortex-A76",
    "aarch64",
    6.5,
    18.0,
    {"torch": "2.12.1", "onnxruntime": "1.31.0", "ai-edge-litert": "2.2.0", "numpy": "2.4.6"},
)


def peak_gmacs(device: Device, threads: int) -> float:
    """The device's fp32 GEMM peak at ``threads``: scales with the thread count."""
    return device.gemm_gmacs * threads


def peak_gmacs_of(device: Device, threads: int, precision: str) -> float | None:
    """The device's GEMM peak of ``precision`` at ``threads`` (None: not measurable)."""
    scale = PEAK_SCALE[precision]
    return None if scale is None else scale * peak_gmacs(device, threads)


def gemm_peak(device: Device, threads: Sequence[int], precision: str = FP32) -> dict[str, Any]:
    """``env["gemm_peak"]`` (or one precision of ``gemm_peaks``): one entry per thread
    count, keyed by the count as text."""
    torch = f"torch {device.versions['torch']}"
    ort = f"onnxruntime {device.versions['onnxruntime']}"
    out = {}
    for count in threads:
        rate = peak_gmacs_of(device, count, precision)
        if rate is None:
            out[str(count)] = {
                "gmacs_per_s": None,
                "library": None,
                "threads": count,
                "precision": precision,
                "size": None,
                "candidates": {},
                "reason": NO_FP16,
            }
            continue
        candidates = {torch: rate, ort: 0.95 * rate}
        if precision == FP32:
            candidates["numpy (openblas 0.3.29)"] = 0.8 * rate
        out[str(count)] = {
            "gmacs_per_s": rate,
            "library": torch,
            "threads": count,
            "precision": precision,
            "size": 1024,
            "candidates": candidates,
        }
    return out


def env_for(
    device: Device, run_id: str, threads: Sequence[int], precisions: Sequence[str] = (FP32,)
) -> dict[str, Any]:
    """An env.json dict shaped like ``harness.device.fingerprint()`` plus run settings."""
    return {
        "device_id": device.device_id,
        "device_name": device.device_name,
        "cpu_model": device.cpu_model,
        "physical_cores": 4,
        "logical_cores": 8 if device.arch == "x86_64" else 4,
        "ram_total_mb": 15872 if device.arch == "x86_64" else 8064,
        "board": "Raspberry Pi 5 Model B Rev 1.0" if device.arch == "aarch64" else None,
        "chip": None,
        "arch": device.arch,
        "os": "Linux",
        "os_pretty": "Debian GNU/Linux 12 (bookworm)",
        "python": "3.11.7",
        "governor": "performance",
        "freq_cur_mhz": 2400.0,
        "temperature_c": 48.5,
        "versions": dict(device.versions),
        "run": {
            "run_id": run_id,
            "threads": list(threads),
            "min_time_s": 1.0,
            "max_time_s": 10.0,
            "precisions": list(precisions),
            "compile_variants": True,
        },
        "gemm_peak": gemm_peak(device, threads),
        "gemm_peaks": {p: gemm_peak(device, threads, p) for p in _with_fp32(precisions)},
    }


def _with_fp32(precisions: Sequence[str]) -> list[str]:
    return [FP32, *(p for p in precisions if p != FP32)]


def make_run(
    root: Path,
    device: Device = LAPTOP,
    run_id: str = "20260301T101500",
    *,
    seed: int = 0,
    backends: Sequence[str] = ("onnxruntime", "pytorch", "tflite"),
    models: Sequence[str] = ("mobilenet_v2", "standard_conv"),
    slower: Mapping[str, float] | None = None,
    noise: float = 0.05,
    n: int = 80,
    repeats: int = 1,
    drift: float = 0.0,
    threads: int | Sequence[int] = 1,
    old_columns: bool = False,
    old_peak: bool = False,
    fp32_peak_only: bool = False,
    precisions: Sequence[str] = (FP32,),
) -> Path:
    """Write one run folder and return it.

    ``slower`` scales one backend's samples (e.g. ``{"pytorch": 1.5}``) after
    they are drawn, so the same ``seed`` gives the same samples times the factor.
    Every cell runs at each of ``threads`` (measured cells go faster with more)
    and each of ``precisions`` (fp32 is always measured). Every run also holds a
    skipped coreml cell and a failed keras cell per precision (skipped, with the
    Keras format's reason, for precisions other than fp32).
    """
    counts = [threads] if isinstance(threads, int) else list(threads)
    draw = _Draw(device, run_id, np.random.default_rng(seed), noise, n)
    folder = root / device.device_id / run_id
    rows: list[tuple[dict[str, Any], np.ndarray]] = []
    kinds = _with_fp32(precisions)
    for count in counts:
        for model in models:
            for backend in backends:
                for repeat in range(repeats):
                    median = BASE_MS[backend] * device.slowdown * (1 + drift * repeat)
                    median *= count**-0.8 * (STD_RATIO[backend] if model == "standard_conv" else 1)
                    median *= (slower or {}).get(backend, 1.0)
                    for precision in kinds:
                        rows += draw.cell(model, backend, count, repeat, precision, median)
        for model in models:
            for precision in kinds:
                for backend in ("coreml", "keras"):
                    row = _not_run(device, run_id, model, backend, count, precision)
                    rows.append((row, np.array([])))
    if old_columns:
        _write_old(folder, device, run_id, counts, [r for r, _ in rows])
    else:
        env = env_for(device, run_id, counts, precisions)
        if old_peak or fp32_peak_only:
            del env["gemm_peaks"]
        if old_peak:
            env["gemm_peak"] = {
                "gmacs_per_s": peak_gmacs(device, counts[0]),
                "size": 2048,
                "threads": counts[0],
                "library": "openblas 0.3.x",
            }
        writer = RunWriter(folder)
        writer.write_env(env)
        for row, samples in rows:
            writer.append(row, samples)
        writer.finish()
    return folder


@dataclass(frozen=True)
class _Draw:
    """Draws the samples of one run's measured cells from its seeded generator."""

    device: Device
    run_id: str
    rng: np.random.Generator
    noise: float
    n: int

    def cell(
        self, model: str, backend: str, threads: int, repeat: int, precision: str, fp32_ms: float
    ) -> list[tuple[dict[str, Any], np.ndarray]]:
        """The cell's row and samples: its fp32 median sped up by :data:`SPEED_UP`, or a
        skipped row (first repeat only) when the backend's format has no such file."""
        absent = _absent(backend, precision)
        if absent:
            row = _not_run(self.device, self.run_id, model, backend, threads, precision, absent)
            return [(row, np.array([]))] if repeat == 0 else []
        speed_up = SPEED_UP.get((backend, precision), {}).get(CONV[model], 1.0)
        samples = fp32_ms / speed_up * self.rng.lognormal(0.0, self.noise, size=self.n)
        args = (self.device, self.run_id, model, backend, threads, samples, repeat, precision)
        return [(_row(*args), samples)]


def _absent(backend: str, precision: str) -> str | None:
    """Why ``backend`` has no ``precision`` file (its format's own reason), or None."""
    if precision == FP32 or backend not in FORMAT_OF:
        return None
    return get_format(FORMAT_OF[backend]).absent_reason(precision)


def _cell(model: str, backend: str, threads: int, precision: str = FP32) -> dict[str, Any]:
    return {
        "model": model,
        "width": 1.0,
        "resolution": 224,
        "conv": CONV[model],
        "backend": backend,
        "mode": MODES.get(backend, "default"),
        "precision": precision,
        "batch": 1,
        "threads": threads,
        "weights": WEIGHTS[model],
        "inputs": "photos: /data/<val> (64 evaluation, 32 calibration)",
    }


#: Which weights each model's rows say produced them (a checkpoint for MobileNetV2).
WEIGHTS = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5 "
    "(sha256 0123456789ab)",
    "standard_conv": "generated (seed 0)",
}


def accuracy(backend: str, precision: str) -> dict[str, float]:
    """The accuracy columns of a measured cell (against the PyTorch fp32 reference)."""
    out = {**ACCURACY[precision], "psnr_db": PSNR_DB[precision]}
    if precision == "int8":
        out["top1_agree"] = INT8_TOP1[backend]
    return out


def size_mb(model: str, precision: str) -> float:
    """The artifact's size in MiB: the weights at the precision's width plus a header."""
    return (PARAMS[model] * BYTES_PER_WEIGHT[precision] + 20_000) / 2**20


def _row(
    device: Device,
    run_id: str,
    model: str,
    backend: str,
    threads: int,
    samples: np.ndarray,
    repeat: int,
    precision: str = FP32,
) -> dict[str, Any]:
    stats = summarize(samples)
    cell = _cell(model, backend, threads, precision)
    gmacs = MACS[model] / (stats.p50 / 1e3) / 1e9
    rss = BASE_RSS_MB[backend] + (40.0 if model == "standard_conv" else 0.0)
    peak = peak_gmacs_of(device, threads, precision)
    note = COMPUTE_NOTE.get((backend, precision))
    if peak is None:
        no_peak = f"no roofline: no {precision} GEMM peak at {threads} threads ({NO_FP16})"
        note = "; ".join(filter(None, (note, no_peak)))
    return {
        **cell,
        "cell_id": cell_id(cell),
        "repeat": repeat,
        "run_id": run_id,
        "timestamp": "2026-03-01T10:15:00+00:00",
        "device_id": device.device_id,
        "device_name": device.device_name,
        "backend_version": device.versions[PACKAGES[backend]],
        "status": "ok",
        "reason": note or "",
        "import_ms": 850.0,
        "load_ms": 120.0,
        "first_inference_ms": stats.max * 3,
        **stats.to_columns(),
        "throughput_ips": 1e3 / stats.p50,
        "rss_baseline_mb": rss - 60.0,
        "rss_load_mb": rss - 10.0,
        "peak_rss_mb": rss,
        "rss_delta_mb": 60.0,
        "cpu_util": float(threads) * 0.97,
        "macs": MACS[model],
        "params": PARAMS[model],
        "artifact_bytes": PARAMS[model] * BYTES_PER_WEIGHT[precision] + 20_000,
        "size_mb": size_mb(model, precision),
        "gmacs_per_s": gmacs,
        "roofline_pct": None if peak is None else 100.0 * gmacs / peak,
        **accuracy(backend, precision),
        "warmup_iters": 5,
        "wall_s": float(samples.sum() / 1e3 + 1.5),
    }


def _not_run(
    device: Device,
    run_id: str,
    model: str,
    backend: str,
    threads: int,
    precision: str = FP32,
    reason: str | None = None,
) -> dict[str, Any]:
    """A cell that did not run: coreml is not installed, keras fp32 runs out of memory,
    and a backend without the precision's file is skipped with ``reason``."""
    cell = _cell(model, backend, threads, precision)
    status = "skipped"
    if backend == "coreml":
        reason = "coremltools is not installed"
    elif backend == "keras":
        reason = _absent("keras", precision)
    if reason is None:
        status, reason = "failed", "RuntimeError: <Graph> node 'block3.dw' & friends: out of memory"
    return {
        **cell,
        "cell_id": cell_id(cell),
        "repeat": 0,
        "run_id": run_id,
        "device_id": device.device_id,
        "device_name": device.device_name,
        "status": status,
        "reason": reason,
        "macs": MACS[model],
        "params": PARAMS[model],
    }


def _write_old(
    folder: Path, device: Device, run_id: str, threads: Sequence[int], rows: list[dict[str, Any]]
) -> None:
    """An older run: fewer columns, one unknown column, no cell_id/repeat, no samples."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = [c for c in COLUMNS if c not in OLD_DROPPED] + ["notes"]
    with (folder / "results.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            values = {**row, "notes": "older harness"}
            writer.writerow("" if values.get(c) is None else values[c] for c in columns)
    env = env_for(device, run_id, threads)
    del env["gemm_peak"], env["gemm_peaks"]
    env["run"]["precision"] = env["run"].pop("precisions")[0]
    del env["run"]["compile_variants"]
    (folder / "env.json").write_text(json.dumps(env))


def edit_rows(folder: Path, match: Callable[[dict[str, str]], bool], **changes: Any) -> int:
    """Rewrite results.csv with ``changes`` applied to the rows ``match`` picks; return how many."""

    def edit(row: dict[str, str]) -> None:
        row.update({k: str(v) for k, v in changes.items()})

    return _rewrite_csv(folder / "results.csv", match, edit)


def scale_samples(folder: Path, match: Callable[[str], bool], factor: float) -> int:
    """Multiply the raw samples of the cells whose id ``match`` picks; return how many samples."""

    def scale(row: dict[str, str]) -> None:
        row["ms"] = str(float(row["ms"]) * factor)

    return _rewrite_csv(folder / "samples.csv", lambda row: match(row["cell_id"]), scale)


def _rewrite_csv(
    path: Path, match: Callable[[dict[str, str]], bool], change: Callable[[dict[str, str]], None]
) -> int:
    """Apply ``change`` to the rows of a CSV file that ``match`` picks; return how many."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames or ()), list(reader)
    picked = [row for row in rows if match(row)]
    for row in picked:
        change(row)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerows(rows)
    return len(picked)


class HtmlTables(HTMLParser):
    """Rows of ``data-v`` values of every table with an id, keyed by that id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headers: dict[str, list[str]] = {}
        self._table: str | None = None
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table], self.headers[self._table] = [], []
        elif self._table and tag == "tr":
            self.tables[self._table].append([])
        elif self._table and tag == "td":
            self.tables[self._table][-1].append(a.get("data-v") or "")
        self._in_th = self._table is not None and tag == "th"

    def handle_data(self, data: str) -> None:
        if self._in_th and self._table:
            self.headers[self._table].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        self._in_th = False

    def rows(self, table_id: str) -> list[dict[str, str]]:
        """The body rows of one table as ``{header: data-v}``."""
        header = self.headers[table_id]
        return [dict(zip(header, row, strict=True)) for row in self.tables[table_id][1:]]


def html_rows(page: str, table_id: str) -> list[dict[str, str]]:
    """The body rows of the table with ``table_id`` in ``page``, as ``{header: data-v}``."""
    parser = HtmlTables()
    parser.feed(page)
    return parser.rows(table_id)
