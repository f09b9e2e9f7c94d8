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
from typing import TYPE_CHECKING, Any

from harness.cell import Cell, measure_cell
from harness.exporters.artifacts import read_manifest
from harness.formats import PRECISIONS, artifact_keys, get_format
from harness.isolation import in_child
from harness.measure import conditions
from harness.measure.peak import device_peaks
from harness.measure.threads import thread_env
from harness.measure.timing import TimingConfig
from harness.origin import OriginError
from harness.results import RunWriter, cell_id, write_env
from harness.rows import derive, flags, memory_shortfall, size_mb, skip_reason
from harness.spec import ModelSpec, load_spec

if TYPE_CHECKING:
    from harness.exporters.isolated import Prepared

log = logging.getLogger(__name__)

CELL_LOG = "cells.log"


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
    precisions: Sequence[str] = ("fp32",)
    #: False: cells whose file runs through a JIT compile step (torch.compile) are skipped.
    compile_variants: bool = True
    cooldown_s: float = 0.0
    max_temp_c: float | None = None
    #: A checkpoint for every model it fits (default: each spec's ``[weights] file``,
    #: else generated weights); a folder of photos as evaluation and calibration images.
    weights: Path | None = None
    images: Path | None = None


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
                    for precision in config.precisions:
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
                                        precision=precision,
                                        batch=batch,
                                        threads=threads,
                                        repeat=repeat,
                                    )
                                )
    return cells


def cell_skip_reason(cell: Cell, config: RunConfig) -> str | None:
    """Why ``cell`` cannot run here (None: it runs)."""
    from harness.backends import get_backend

    return skip_reason(
        get_backend(cell.backend), cell.mode, cell.batch, cell.precision, config.compile_variants
    )


def _modes(cls, wanted: str | Sequence[str]) -> list[str]:
    if wanted == "default":
        return [cls.modes[0]]
    if wanted == "all":
        return list(cls.modes)
    return [m for m in wanted if m in cls.modes]


def load_specs(models: Sequence[str]) -> dict[str, ModelSpec]:
    """Specs by their own name (a path given on the command line is not a model name)."""
    specs: dict[str, ModelSpec] = {}
    for model in models:
        spec = load_spec(model)
        if spec.name in specs:
            raise ValueError(f"two specs are named {spec.name!r}: {', '.join(models)}")
        specs[spec.name] = spec
    return specs


@dataclass(frozen=True)
class Started:
    """A matrix ready to measure: its models, cells and their skip reasons, the run
    folder with env.json written, the device's GEMM peaks and the exported files."""

    models: dict[str, Prepared]
    cells: list[Cell]
    skips: dict[Cell, str | None]
    folder: Path
    run_id: str
    peaks: dict[str, Any]
    exports: dict[tuple[str, str], Path | str]
    identity: dict[str, Any]  # run_id, device_id, device_name: every row's

    def peak(self, cell: Cell) -> dict[str, Any]:
        """The GEMM peak entry at the cell's precision and thread count ({} if none)."""
        return self.peaks.get(cell.precision, {}).get(str(cell.threads), {})


def begin_run(
    config: RunConfig,
    report: Reporter,
    extra_skip: Callable[[Cell], str | None] = lambda cell: None,
    run_settings: dict[str, Any] | None = None,
) -> Started:
    """Everything before the first cell, shared by ``run`` and ``profile``: specs and
    backends checked, weights and images prepared, cells planned and their skips
    decided (``extra_skip`` adds a command's own), the run folder made, the GEMM peaks
    measured, env.json written (with ``run_settings``), the needed files exported."""
    from harness import device
    from harness.backends import get_backend

    specs = load_specs(config.models)
    for backend in config.backends:
        get_backend(backend)  # unknown names fail before anything runs
    report("phase", {"text": "preparing the models' weights and images"})
    models = prepare_models(config, specs, report)
    cells = plan(config, {name: prepared.spec for name, prepared in models.items()})
    fingerprint = device.fingerprint()
    run_id = new_run_id()
    folder = config.out / fingerprint["device_id"] / run_id
    folder.mkdir(parents=True, exist_ok=True)

    skips = {cell: cell_skip_reason(cell, config) or extra_skip(cell) for cell in cells}
    runnable = [cell for cell in cells if not skips[cell]]
    precisions = sorted({c.precision for c in runnable} | {"fp32"}, key=PRECISIONS.index)
    report("phase", {"text": f"measuring the device's GEMM peak ({', '.join(precisions)})"})
    peaks = device_peaks(sorted({cell.threads for cell in cells}), folder / CELL_LOG, precisions)
    env = {
        **fingerprint,
        "run": {"run_id": run_id, **(run_settings or {}), **_settings(config)},
        "cell_thread_env": {str(t): thread_env(t) for t in sorted(set(config.threads))},
        "gemm_peak": peaks["fp32"],
        "gemm_peaks": peaks,
    }
    write_env(folder, env)
    return Started(
        models=models,
        cells=cells,
        skips=skips,
        folder=folder,
        run_id=run_id,
        peaks=peaks,
        exports=export_cells(config, models, runnable, folder, report),
        identity={
            "run_id": run_id,
            "device_id": fingerprint["device_id"],
            "device_name": fingerprint["device_name"],
        },
    )


def run(config: RunConfig, report: Reporter = _noop_reporter) -> RunState:
    """Run the whole matrix; returns the state (rows, folder) even when interrupted."""
    started = begin_run(config, report)
    models, folder = started.models, started.folder
    writer = RunWriter(folder)
    state = RunState(folder=folder, run_id=started.run_id, total=len(started.cells))
    report("start", {"total": len(started.cells), "folder": folder})
    try:
        for index, cell in enumerate(started.cells):
            report("cell", {"cell": cell})
            _settle(config, first=index == 0, report=report)
            skip = started.skips[cell]
            if skip:
                row, samples = _skipped(cell_identity(cell, models[cell.model]), skip), []
            else:
                row, samples = _run_cell(
                    cell, models[cell.model], started.exports, config, folder, started.peak(cell)
                )
            row.update(started.identity, timestamp=datetime.now(UTC).isoformat(timespec="seconds"))
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
    for name in ("out", "weights", "images"):
        data[name] = None if data[name] is None else str(data[name])
    return data


# --- weights and images -----------------------------------------------------------------


def prepare_models(
    config: RunConfig, specs: dict[str, ModelSpec], report: Reporter = _noop_reporter
) -> dict[str, Prepared]:
    """Each model's weights and images, staged in its export folder.

    ``config.weights`` goes to every model it fits; a model it does not fit (the
    standard-conv twin of a MobileNetV2 checkpoint) keeps generated weights, and a
    notice says why. Raises :class:`~harness.origin.OriginError` when it fits none,
    or for an image folder or a spec's own weights file that cannot be used. Each
    photo not used is reported once.
    """
    from harness.exporters.isolated import prepare_model

    models: dict[str, Prepared] = {}
    refused: dict[str, str] = {}
    for name, spec in specs.items():
        weights = config.weights or (Path(spec.weights) if spec.weights else None)
        try:
            models[name] = prepare_model(spec, config.seed, weights, config.images)
        except OriginError as exc:
            if config.weights is None:
                raise
            refused[name] = str(exc)
    if refused and not models:
        raise OriginError(next(iter(refused.values())))
    for name, why in refused.items():
        models[name] = prepare_model(specs[name], config.seed, None, config.images)
        report("notice", {"text": f"{name} keeps {models[name].weights} weights: {why}"})
    problems = dict.fromkeys(p for m in models.values() for p in m.origin.problems)
    for problem in problems:
        report("notice", {"text": f"images: {problem}"})
    return {name: models[name] for name in specs}


# --- exports ---------------------------------------------------------------------------


def export_cells(
    config: RunConfig,
    models: dict[str, Prepared],
    cells: list[Cell],
    folder: Path,
    report: Reporter,
) -> dict[tuple[str, str], Path | str]:
    """Export what ``cells`` (the runnable ones) need; (model, artifact key) -> folder or
    failure reason."""
    from harness.backends import get_backend
    from harness.exporters.isolated import export_isolated

    needed: dict[str, dict[str, None]] = {}
    for cell in cells:
        keys = artifact_keys([get_backend(cell.backend).artifact_format], [cell.precision])
        needed.setdefault(cell.model, {}).update(dict.fromkeys(keys))
    exports: dict[tuple[str, str], Path | str] = {}
    for name, keys in needed.items():

        def announce(step: str, name: str = name) -> None:
            report("phase", {"text": f"exporting {name} ({step})"})

        model = models[name]
        done = export_isolated(
            model.spec,
            list(keys),
            config.seed,
            folder / CELL_LOG,
            on_step=announce,
            origin=model.origin,
        )
        exports.update({(name, fmt): result for fmt, result in done.items()})
    return exports


# --- one cell ---------------------------------------------------------------------------


def cell_identity(cell: Cell, model: Prepared) -> dict[str, Any]:
    """What every row of ``cell`` carries, whatever its status."""
    from harness.backends import get_backend
    from harness.macs import count

    counted = count(model.spec)
    return {
        **cell.key(),
        "cell_id": cell_id(cell.key()),
        "backend_version": get_backend(cell.backend).version(),
        "macs": counted.macs,
        "params": counted.params,
        "weights": model.weights,
        "inputs": model.inputs,
    }


def _skipped(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """``row`` of a cell that does not run here, and why."""
    return {**row, "status": "skipped", "reason": reason}


def _no_peak_reason(cell: Cell, peak: dict[str, Any]) -> str | None:
    """Why the device has no GEMM peak for the cell's precision and threads (None: it has)."""
    if peak.get("gmacs_per_s"):
        return None
    why = peak.get("reason") or "; ".join((peak.get("failed") or {}).values()) or "not measured"
    return f"no {cell.precision} GEMM peak at {cell.threads} threads ({why})"


def _run_cell(
    cell: Cell,
    model: Prepared,
    exports: dict[tuple[str, str], Path | str],
    config: RunConfig,
    folder: Path,
    peak: dict[str, Any],
) -> tuple[dict[str, Any], list[float]]:
    """Measure one runnable cell in a child; ``peak`` is the device's GEMM peak at its
    thread count and precision (``gmacs_per_s`` None, with a ``reason``, when there is none)."""
    from harness.backends import get_backend

    cls = get_backend(cell.backend)
    row = cell_identity(cell, model)
    key = get_format(cls.artifact_format).key(cell.precision)
    export = exports.get((cell.model, key))
    if not isinstance(export, Path):
        return {**row, "status": "failed", "reason": export or "no artifact"}, []
    row["artifact_bytes"] = read_manifest(export)["artifacts"][key]["bytes"]
    row["size_mb"] = size_mb(row["artifact_bytes"])
    short = memory_shortfall(row["artifact_bytes"], conditions.available_memory_mb())
    if short:
        return _skipped(row, short), []
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
    row.update(derive(row, samples, peak.get("gmacs_per_s")))
    row["status"] = "ok"
    reasons = flags(row, samples, config.timing.target_ci_pct, _no_peak_reason(cell, peak))
    row.pop("compute_note", None)
    reasons += conditions.condition_flags(before, after)
    row["reason"] = "; ".join(reasons) or None
    return row, samples
