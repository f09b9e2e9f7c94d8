"""The benchmark matrix: one fresh spawned process per cell, rows written as they finish.

The parent never imports an ML framework. It plans the cells, exports the
artifacts (in a child), then starts each cell in a new ``spawn`` process with
the thread settings in its environment. A cell that raises, crashes, hangs past
the timeout or is killed for memory becomes a failed/timeout row; the run goes
on. Every finished row is appended to ``results.csv`` at once, so an
interrupted run keeps all it finished.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.cell import Cell, measure_cell
from harness.exporters.artifacts import missing_requirements
from harness.isolation import in_child
from harness.measure import conditions
from harness.measure.stats import summarize
from harness.measure.threads import thread_env
from harness.measure.timing import TimingConfig, ci_within
from harness.parity import within_tolerance
from harness.results import RunWriter, cell_id
from harness.spec import ModelSpec, load_spec

log = logging.getLogger(__name__)

#: Seconds an export of one model may take before its cells fail.
EXPORT_TIMEOUT_S = 1800
#: cpu_util above threads * this + this margin is reported in ``reason``.
THREAD_MARGIN = (1.2, 0.2)
#: Parity and timing precision targets flagged in ``reason``.
TARGET_CI_PCT = 3.0
CELL_LOG = "cells.log"
#: The device-peak GEMM: n x n fp32, timed for at least this long (best rate kept).
GEMM_SIZE = 2048
GEMM_TIME_S = 1.0
#: Memory a cell needs, roughly: framework baseline + a multiple of the artifact size.
MEMORY_BASE_MB = 400
MEMORY_PER_ARTIFACT_MB = 3


@dataclass(frozen=True)
class RunConfig:
    models: Sequence[str]
    backends: Sequence[str]
    threads: Sequence[int]
    batches: Sequence[int] = (1,)
    modes: str | Sequence[str] = "default"  # "default" | "all" | mode names
    timing: TimingConfig = field(default_factory=TimingConfig)
    cell_timeout_s: float = 300.0
    out: Path = Path("results")
    seed: int = 0
    repeat: int = 1
    precision: str = "fp32"
    cooldown_s: float = 0.0
    max_temp_c: float | None = None


@dataclass
class RunState:
    """What a run has written so far (handed to the progress reporter)."""

    folder: Path
    run_id: str
    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


Reporter = Callable[[str, dict[str, Any]], None]


def _noop_reporter(event: str, info: dict[str, Any]) -> None:
    return None


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def plan(config: RunConfig, specs: dict[str, ModelSpec]) -> list[Cell]:
    """Every cell of the matrix, repeats interleaved (A B C A B C) so drift shows as spread."""
    from harness.backends import get_backend

    cells = []
    for repeat in range(config.repeat):
        for name, spec in specs.items():
            for backend in config.backends:
                for mode in _modes(get_backend(backend), config.modes):
                    for batch in config.batches:
                        for threads in config.threads:
                            cells.append(
                                Cell(
                                    model=name,
                                    width=spec.width,
                                    resolution=spec.resolution,
                                    conv=spec.conv,
                                    backend=backend,
                                    mode=mode,
                                    precision=config.precision,
                                    batch=batch,
                                    threads=threads,
                                    repeat=repeat,
                                )
                            )
    return cells


def _modes(cls, wanted: str | Sequence[str]) -> list[str]:
    if wanted == "default":
        return [cls.modes[0]]
    if wanted == "all":
        return list(cls.modes)
    return [m for m in wanted if m in cls.modes]


def run(config: RunConfig, report: Reporter = _noop_reporter) -> RunState:
    """Run the whole matrix; returns the state (rows, folder) even when interrupted."""
    from harness import device
    from harness.backends import get_backend
    from harness.measure.peak import gemm_peak_gmacs

    specs = {name: load_spec(name) for name in config.models}
    for backend in config.backends:
        get_backend(backend)  # unknown names fail before anything runs
    cells = plan(config, specs)
    fingerprint = device.fingerprint()
    run_id = new_run_id()
    folder = config.out / fingerprint["device_id"] / run_id
    writer = RunWriter(folder)
    state = RunState(folder=folder, run_id=run_id, total=len(cells))

    report("phase", {"text": "measuring the device's GEMM peak"})
    peak = gemm_peak_gmacs(size=GEMM_SIZE, min_time_s=GEMM_TIME_S)
    env = {
        **fingerprint,
        "run": {"run_id": run_id, **_settings(config)},
        "gemm_peak": peak,
    }
    writer.write_env(env)

    exports = _export_all(config, specs, cells, folder, report)
    identity = {
        "run_id": run_id,
        "device_id": fingerprint["device_id"],
        "device_name": fingerprint["device_name"],
    }
    report("start", {"total": len(cells), "folder": folder})
    try:
        for index, cell in enumerate(cells):
            report("cell", {"cell": cell})
            _settle(config, first=index == 0, report=report)
            row, samples = _run_cell(
                cell, specs[cell.model], exports, config, folder, peak["gmacs_per_s"]
            )
            row.update(identity, timestamp=datetime.now(UTC).isoformat(timespec="seconds"))
            writer.append(row, samples)
            state.rows.append(row)
            report("row", {"row": row})
    except KeyboardInterrupt:
        state.interrupted = True
    finally:
        writer.finish()
    return state


def _settle(config: RunConfig, first: bool, report: Reporter) -> None:
    """Optional pause between cells: a fixed cooldown, then wait for the temperature."""
    if config.cooldown_s and not first:
        time.sleep(config.cooldown_s)
    if config.max_temp_c is not None:
        report("phase", {"text": f"waiting for the CPU to cool below {config.max_temp_c:g} °C"})
        conditions.wait_until_cool(config.max_temp_c)


def _settings(config: RunConfig) -> dict[str, Any]:
    data = asdict(config)
    data["out"] = str(config.out)
    return data


# --- exports ---------------------------------------------------------------------------


def _export_all(
    config: RunConfig,
    specs: dict[str, ModelSpec],
    cells: list[Cell],
    folder: Path,
    report: Reporter,
) -> dict[tuple[str, str], Path | str]:
    """Export what the available cells need; (model, format) -> folder or failure reason."""
    from harness.backends import get_backend

    needed: dict[str, set[str]] = {}
    for cell in cells:
        cls = get_backend(cell.backend)
        if not skip_reason(cls, cell.mode):
            needed.setdefault(cell.model, set()).add(cls.artifact_format)
    exports: dict[tuple[str, str], Path | str] = {}
    for name, formats in needed.items():
        report("phase", {"text": f"exporting {name}: {', '.join(sorted(formats))}"})
        outcome = in_child(
            _export_job,
            (specs[name].to_dict(), sorted(formats), config.seed),
            timeout_s=EXPORT_TIMEOUT_S,
            env={},
            log_path=folder / CELL_LOG,
        )
        for fmt in formats:
            if outcome["status"] != "ok":
                exports[(name, fmt)] = f"export failed: {outcome['reason']}"
            elif fmt in outcome["result"]["errors"]:
                exports[(name, fmt)] = f"export failed: {outcome['result']['errors'][fmt]}"
            else:
                exports[(name, fmt)] = Path(outcome["result"]["folder"])
    return exports


def _export_job(spec_dict: dict[str, Any], formats: list[str], seed: int) -> dict[str, Any]:
    """Child side: export each format, keeping going past a failing one."""
    from harness.exporters.artifacts import export
    from harness.spec import spec_from_dict

    spec = spec_from_dict(spec_dict)
    errors: dict[str, str] = {}
    folder = None  # stays None only when every format failed, and then nobody reads it
    for fmt in formats:
        try:
            folder = export(spec, [fmt], seed=seed)
        except Exception as exc:
            log.exception("export of %s to %s failed", spec.name, fmt)
            errors[fmt] = f"{type(exc).__name__}: {exc}"
    return {"folder": str(folder), "errors": errors}


# --- one cell ---------------------------------------------------------------------------


def _run_cell(
    cell: Cell,
    spec: ModelSpec,
    exports: dict[tuple[str, str], Path | str],
    config: RunConfig,
    folder: Path,
    peak_gmacs: float | None,
) -> tuple[dict[str, Any], list[float]]:
    from harness.backends import get_backend
    from harness.macs import count

    cls = get_backend(cell.backend)
    counted = count(spec)
    row: dict[str, Any] = {
        **cell.key(),
        "cell_id": cell_id(cell.key()),
        "backend_version": cls.version(),
        "macs": counted.macs,
        "params": counted.params,
    }
    reason = skip_reason(cls, cell.mode)
    if reason:
        return {**row, "status": "skipped", "reason": reason}, []
    export = exports.get((cell.model, cls.artifact_format))
    if not isinstance(export, Path):
        return {**row, "status": "failed", "reason": export or "no artifact"}, []
    row["artifact_bytes"] = _artifact_bytes(export, cls.artifact_format)
    short = memory_shortfall(row["artifact_bytes"])
    if short:
        return {**row, "status": "skipped", "reason": short}, []
    before = conditions.snapshot()
    outcome = in_child(
        measure_cell,
        (cell, export, config.timing),
        timeout_s=config.cell_timeout_s,
        env=thread_env(cell.threads),
        log_path=folder / CELL_LOG,
    )
    after = conditions.snapshot()
    row.update(
        temp_before_c=before["temperature_c"],
        temp_after_c=after["temperature_c"],
        governor=after["governor"],
        throttled=None if after["throttled"] is None else hex(after["throttled"]),
    )
    if outcome["status"] != "ok":
        return {**row, "status": outcome["status"], "reason": outcome["reason"]}, []
    measured = outcome["result"]
    samples = measured.pop("samples_ms")
    row.update(measured)
    row.update(derive(row, samples, peak_gmacs))
    row["status"] = "ok"
    reasons = flags(row, samples) + conditions.condition_flags(before, after)
    row["reason"] = "; ".join(reasons) or None
    return row, samples


def skip_reason(cls, mode: str) -> str | None:
    """Why a backend's mode cannot run here: the mode itself, or exporting its artifact."""
    ok, reason = cls.mode_available(mode)
    return reason if not ok else missing_requirements(cls.artifact_format)


def memory_shortfall(artifact_bytes: int | None) -> str | None:
    """A skip reason when the device clearly lacks the memory to load the artifact."""
    available = conditions.available_memory_mb()
    if available is None or not artifact_bytes:
        return None
    need = MEMORY_PER_ARTIFACT_MB * artifact_bytes / 2**20 + MEMORY_BASE_MB
    if need <= available:
        return None
    return f"needs about {need:.0f} MiB, only {available:.0f} MiB available"


def _artifact_bytes(folder: Path, fmt: str) -> int | None:
    from harness.exporters.artifacts import read_manifest

    entry = read_manifest(folder).get("artifacts", {}).get(fmt)
    return entry["bytes"] if entry else None


def derive(row: dict[str, Any], samples: list[float], peak_gmacs: float | None) -> dict[str, Any]:
    """Statistics and the numbers computed from them (throughput, GMAC/s, memory delta)."""
    stats = summarize(samples)
    p50_s = stats.p50 / 1000
    gmacs = row["macs"] * row["batch"] / p50_s / 1e9 if p50_s > 0 else None
    return {
        **stats.to_columns(),
        "throughput_ips": row["batch"] / p50_s if p50_s > 0 else None,
        "gmacs_per_s": gmacs,
        "roofline_pct": 100 * gmacs / peak_gmacs if gmacs and peak_gmacs else None,
        "rss_delta_mb": row["peak_rss_mb"] - row["rss_baseline_mb"],
    }


def flags(row: dict[str, Any], samples: list[float]) -> list[str]:
    """Why an ok row's numbers deserve a second look."""
    found = []
    errors = {k: row[k] for k in ("max_abs_err", "rel_l2_err", "top1_agree")}
    if not within_tolerance(errors):
        found.append(
            f"parity out of tolerance (rel_l2_err {row['rel_l2_err']:.2g}, "
            f"top1_agree {row['top1_agree']:.2f})"
        )
    factor, margin = THREAD_MARGIN
    if row["cpu_util"] > row["threads"] * factor + margin:
        found.append(f"used {row['cpu_util']:.1f} cores with --threads {row['threads']}")
    if (row.get("roofline_pct") or 0) > 100:
        found.append("above the GEMM peak: the peak was likely measured under load")
    if not ci_within(samples, TARGET_CI_PCT):
        found.append(f"noisy: 95% CI of the median wider than ±{TARGET_CI_PCT:g}%")
    return found
