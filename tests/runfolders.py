"""Synthetic run folders for the report tests: realistic numbers from a seeded generator.

``make_run`` writes ``<root>/<device_id>/<run_id>/`` through :class:`RunWriter`,
so the files are exactly what the runner writes; ``old_columns=True`` writes an
older, shorter column set (plus one unknown column), no samples and no GEMM
peak; ``old_peak=True`` writes the older single-measurement ``gemm_peak``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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


def gemm_peak(device: Device, threads: Sequence[int]) -> dict[str, Any]:
    """``env["gemm_peak"]``: one measurement per thread count, keyed by the count as text."""
    torch = f"torch {device.versions['torch']}"
    ort = f"onnxruntime {device.versions['onnxruntime']}"
    out = {}
    for count in threads:
        rate = peak_gmacs(device, count)
        candidates = {"numpy (openblas 0.3.29)": 0.8 * rate, torch: rate, ort: 0.95 * rate}
        out[str(count)] = {
            "gmacs_per_s": rate,
            "library": torch,
            "threads": count,
            "precision": "fp32",
            "size": 1024,
            "candidates": candidates,
        }
    return out


def env_for(device: Device, run_id: str, threads: Sequence[int]) -> dict[str, Any]:
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
        "run": {"run_id": run_id, "threads": list(threads), "min_time_s": 1.0, "max_time_s": 10.0},
        "gemm_peak": gemm_peak(device, threads),
    }


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
) -> Path:
    """Write one run folder and return it.

    ``slower`` scales one backend's samples (e.g. ``{"pytorch": 1.5}``) after
    they are drawn, so the same ``seed`` gives the same samples times the factor.
    Every cell runs at each of ``threads`` (measured cells go faster with more).
    Every run also holds a skipped coreml cell and a failed keras cell.
    """
    counts = [threads] if isinstance(threads, int) else list(threads)
    rng = np.random.default_rng(seed)
    folder = root / device.device_id / run_id
    rows: list[tuple[dict[str, Any], np.ndarray]] = []
    for count in counts:
        for model in models:
            for backend in backends:
                for repeat in range(repeats):
                    median = BASE_MS[backend] * device.slowdown * (1 + drift * repeat)
                    median *= count**-0.8 * (STD_RATIO[backend] if model == "standard_conv" else 1)
                    samples = median * rng.lognormal(0.0, noise, size=n)
                    samples *= (slower or {}).get(backend, 1.0)
                    row = _row(device, run_id, model, backend, count, samples, repeat)
                    rows.append((row, samples))
        for model in models:
            rows.append((_not_run(device, run_id, model, "coreml", "skipped", count), np.array([])))
            rows.append((_not_run(device, run_id, model, "keras", "failed", count), np.array([])))
    if old_columns:
        _write_old(folder, device, run_id, counts, [r for r, _ in rows])
    else:
        env = env_for(device, run_id, counts)
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


def _cell(model: str, backend: str, threads: int) -> dict[str, Any]:
    return {
        "model": model,
        "width": 1.0,
        "resolution": 224,
        "conv": CONV[model],
        "backend": backend,
        "mode": MODES.get(backend, "default"),
        "precision": "fp32",
        "batch": 1,
        "threads": threads,
    }


def _row(
    device: Device,
    run_id: str,
    model: str,
    backend: str,
    threads: int,
    samples: np.ndarray,
    repeat: int,
) -> dict[str, Any]:
    stats = summarize(samples)
    cell = _cell(model, backend, threads)
    gmacs = MACS[model] / (stats.p50 / 1e3) / 1e9
    rss = BASE_RSS_MB[backend] + (40.0 if model == "standard_conv" else 0.0)
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
        "reason": "",
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
        "artifact_bytes": PARAMS[model] * 4 + 20_000,
        "gmacs_per_s": gmacs,
        "roofline_pct": 100.0 * gmacs / peak_gmacs(device, threads),
        "max_abs_err": 2.1e-6,
        "rel_l2_err": 3.4e-7,
        "top1_agree": 1.0,
        "warmup_iters": 5,
        "wall_s": float(samples.sum() / 1e3 + 1.5),
    }


def _not_run(
    device: Device, run_id: str, model: str, backend: str, status: str, threads: int
) -> dict[str, Any]:
    cell = _cell(model, backend, threads)
    reason = (
        "coremltools is not installed"
        if status == "skipped"
        else "RuntimeError: <Graph> node 'block3.dw' & friends: out of memory"
    )
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
    del env["gemm_peak"]
    (folder / "env.json").write_text(json.dumps(env))


def edit_rows(folder: Path, match: Callable[[dict[str, str]], bool], **changes: Any) -> int:
    """Rewrite results.csv with ``changes`` applied to the rows ``match`` picks; return how many."""
    path = folder / "results.csv"
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames or ()), list(reader)
    hits = 0
    for row in rows:
        if match(row):
            row.update({k: str(v) for k, v in changes.items()})
            hits += 1
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerows(rows)
    return hits
