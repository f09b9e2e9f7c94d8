"""Load run folders and pytest-benchmark JSON files into tidy pandas frames.

One row per cell with the results columns plus run and device metadata from
``env.json``; one row per raw latency sample; one row per run, per GEMM peak
(run, precision and thread count) and per run's package versions. Anything unreadable
becomes one line in ``problems`` and is skipped, so a report never dies on one
bad folder.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.formats import FP32, precision_rank
from harness.report import pytest_bench
from harness.results import (
    ALL_COLUMNS,
    CELL_KEY,
    ENV_JSON,
    PROFILE_CSV,
    RESULTS_CSV,
    RESULTS_JSON,
    SAMPLE_COLUMNS,
    SAMPLES_CSV,
    TEXT_COLUMNS,
    as_number,
    cell_id,
    parse_value,
)

log = logging.getLogger(__name__)

RUNNER_SOURCE = "mobilebench"
#: Device facts from env.json copied into every row, unless the row has its own value.
_ENV_KEYS = (
    "cpu_model",
    "physical_cores",
    "logical_cores",
    "ram_total_mb",
    "board",
    "chip",
    "arch",
    "os",
    "os_pretty",
    "python",
    "governor",
    "freq_cur_mhz",
    "temperature_c",
)
#: Columns added to every results row, after the results columns.
META_COLUMNS = tuple(
    c
    for c in ("run_key", "source", "run_dir", *_ENV_KEYS, "gemm_peak_gmacs")
    if c not in ALL_COLUMNS
)
_META_NUMBERS = frozenset(
    (
        "physical_cores",
        "logical_cores",
        "ram_total_mb",
        "freq_cur_mhz",
        "temperature_c",
        "gemm_peak_gmacs",
    )
)
SAMPLE_FRAME_COLUMNS = ("run_key", "device_id", *SAMPLE_COLUMNS)
#: The runs frame: one row per run; ``threads`` and ``settings`` are text.
RUN_FRAME_COLUMNS = (
    "run_key",
    "source",
    "run_dir",
    "device_id",
    "device_name",
    *_ENV_KEYS,
    "threads",
    "settings",
)
#: The peaks frame: one row per run, precision and thread count; ``candidates`` is
#: text; ``gmacs_per_s`` is NaN and ``reason`` says why when a peak was not measured.
PEAK_FRAME_COLUMNS = (
    "run_key",
    "device_id",
    "device_name",
    "threads",
    "gmacs_per_s",
    "library",
    "precision",
    "size",
    "candidates",
    "reason",
)
#: Columns a results file needs before its rows mean anything.
_REQUIRED = ("model", "backend")

RunKey = str


class LoadError(Exception):
    """One unreadable input; its message is the problem line."""


@dataclass
class _Run:
    """One loaded run before it joins the others."""

    rows: list[dict[str, Any]]
    samples: pd.DataFrame | None
    env: dict[str, Any]
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Frames:
    """Everything a report reads, as tidy frames (see :func:`load_frames`)."""

    results: pd.DataFrame
    samples: pd.DataFrame
    runs: pd.DataFrame
    peaks: pd.DataFrame
    versions: pd.DataFrame
    problems: tuple[str, ...] = ()
    #: ``mobilebench profile``'s rows (per cell and spec layer); empty without profiles.
    profiles: pd.DataFrame = field(default_factory=pd.DataFrame)


def load_runs(
    paths: Sequence[Path],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[RunKey, dict[str, Any]], list[str]]:
    """Load runs into ``(results, samples, envs, problems)``.

    Each path is a run folder, a folder holding run folders at any depth, or a
    pytest-benchmark JSON file. ``results`` has one row per cell and repeat with
    every results column (missing ones NaN, unknown ones kept) plus
    :data:`META_COLUMNS` and ``version_<package>`` columns (``gemm_peak_gmacs`` is
    the run's peak at the row's precision and thread count); ``samples`` has
    :data:`SAMPLE_FRAME_COLUMNS`; ``envs`` maps each ``run_key`` (also a results
    column) to its env.json dict plus ``run_key``, ``run_dir`` and ``source``.
    """
    rows: list[dict[str, Any]] = []
    sample_frames: list[pd.DataFrame] = []
    envs: dict[RunKey, dict[str, Any]] = {}
    problems: list[str] = []
    for path in paths:
        for kind, item in _discover(Path(path)):
            if kind == "problem":
                problems.append(str(item))
                continue
            try:
                run = _load_json(item) if kind == "json" else _load_run(item)
            except LoadError as exc:
                problems.append(str(exc))
                continue
            problems.extend(run.problems)
            key = _unique_key(run.env["run_key"], envs)
            run.env["run_key"] = key
            envs[key] = run.env
            peaks = peak_entries(run.env)
            rows.extend(
                {**row, "run_key": key, "gemm_peak_gmacs": _peak_for(peaks, row)}
                for row in run.rows
            )
            if run.samples is not None and len(run.samples):
                sample_frames.append(run.samples.assign(run_key=key))
    return _results_frame(rows), _samples_frame(sample_frames), envs, problems


def load_frames(paths: Sequence[Path]) -> Frames:
    """:func:`load_runs` with each env.json turned into the runs, peaks and versions frames.

    ``runs`` has :data:`RUN_FRAME_COLUMNS`; ``peaks`` has
    :data:`PEAK_FRAME_COLUMNS`; ``versions`` has ``run_key`` and one column per
    package (its version text). All three are sorted by ``run_key``.
    """
    from harness.report.profile import load_profiles

    results, samples, envs, problems = load_runs(paths)
    ordered = dict(sorted(envs.items()))
    folders = [Path(p) for p in paths if Path(p).is_dir() or Path(p).name == PROFILE_CSV]
    profiles = load_profiles(folders, problems)
    return Frames(
        results=results,
        samples=samples,
        runs=_runs_frame(ordered),
        peaks=_peaks_frame(ordered),
        versions=_versions_frame(ordered),
        problems=tuple(problems),
        profiles=profiles,
    )


def write_merged(results: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """Write ``results`` as ``out_dir/results.csv`` and ``results.json``; return both paths.

    :func:`load_runs` recognises these files (by their ``run_key`` column) and
    does not read them back as a run, so they may live under ``results/``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / RESULTS_CSV, out_dir / RESULTS_JSON
    results.to_csv(csv_path, index=False)
    json_path.write_text(results.to_json(orient="records", indent=2) + "\n")
    return csv_path, json_path


def env_metadata(env: Mapping[str, Any]) -> dict[str, Any]:
    """Flat row columns from an env dict: device facts and ``version_<pkg>``."""
    meta: dict[str, Any] = {k: env.get(k) for k in _ENV_KEYS}
    for package, version in _versions(env).items():
        meta[version_column(package)] = version
    return meta


def gemm_peaks(env: Mapping[str, Any], precision: str = FP32) -> dict[int, dict[str, Any]]:
    """The env's measured GEMM peaks of ``precision`` keyed by thread count.

    Entries without a positive rate (not measured, every probe failed) are left
    out; :func:`peak_entries` keeps them with their reason.
    """
    entries = peak_entries(env).get(precision, {})
    return {t: e for t, e in entries.items() if e["gmacs_per_s"] is not None}


def peak_entries(env: Mapping[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """Every GEMM peak entry of the env, by precision and thread count, measured or not.

    ``gemm_peaks`` maps precisions to ``{"<threads>": entry}``; an env.json
    without it has only the fp32 ``gemm_peak`` (same shape, or, older still, a
    single measurement that counts for its own ``threads``). Each entry gets an
    int ``threads``, its ``precision``, ``gmacs_per_s`` (None unless positive) and
    a ``reason`` when not measured. Entries without a thread count are left out.
    """
    out: dict[str, dict[int, dict[str, Any]]] = {}
    by_precision = env.get("gemm_peaks")
    if isinstance(by_precision, Mapping):
        for precision, entries in by_precision.items():
            out[str(precision)] = _peak_entries(entries, str(precision))
    if not out.get(FP32):
        out[FP32] = _peak_entries(env.get("gemm_peak"), FP32)
    ordered = sorted(out, key=precision_rank)
    return {p: out[p] for p in ordered if out[p]}


def _peak_entries(peak: Any, precision: str) -> dict[int, dict[str, Any]]:
    """``{"<threads>": entry}`` or one older single entry, normalised and keyed by threads."""
    if not isinstance(peak, Mapping):
        return {}
    items = [(peak.get("threads"), peak)] if "gmacs_per_s" in peak else list(peak.items())
    out: dict[int, dict[str, Any]] = {}
    for key, entry in items:
        if not isinstance(entry, Mapping):
            continue
        threads = _whole(entry.get("threads", key))
        if threads is None:
            continue
        rate = as_number(entry.get("gmacs_per_s"))
        rate = rate if rate is not None and rate > 0 else None
        reason = entry.get("reason") if rate is not None else _unmeasured(entry)
        out[threads] = {
            **entry,
            "threads": threads,
            "precision": precision,
            "gmacs_per_s": rate,
            "reason": reason or None,
        }
    return dict(sorted(out.items()))


def _unmeasured(entry: Mapping[str, Any]) -> str:
    """Why an entry has no rate: its own reason, its failed probes, or ``not measured``."""
    failed = entry.get("failed")
    probes = (
        "; ".join(f"{name}: {why}" for name, why in failed.items())
        if isinstance(failed, Mapping)
        else ""
    )
    return str(entry.get("reason") or probes or "not measured")


def version_column(package: str) -> str:
    """``ai-edge-litert`` -> ``version_ai_edge_litert``."""
    return "version_" + re.sub(r"[^0-9a-zA-Z]+", "_", package).strip("_").lower()


def key_tuple(row: Mapping[str, Any]) -> tuple[str, ...]:
    """A cell's CELL_KEY values as text, so ``1``, ``1.0`` and ``"1"`` match."""
    return tuple(_key_text(row.get(c)) for c in CELL_KEY)


def _peak_for(
    peaks: Mapping[str, Mapping[int, Mapping[str, Any]]], row: Mapping[str, Any]
) -> float | None:
    """The peak of the row's own precision (fp32 when it has none) and thread count."""
    precision = row.get("precision") or FP32
    peak = peaks.get(str(precision), {}).get(_whole(row.get("threads")))
    return None if peak is None else peak["gmacs_per_s"]


def _whole(value: Any) -> int | None:
    """A thread count as an int (``2``, ``2.0``, ``"2"``), or None."""
    value = as_number(value)
    return int(value) if value is not None and value.is_integer() else None


def _versions(env: Mapping[str, Any]) -> dict[str, Any]:
    versions = env.get("versions")
    return {str(k): v for k, v in versions.items()} if isinstance(versions, Mapping) else {}


def _run_settings(env: Mapping[str, Any]) -> Mapping[str, Any]:
    run = env.get("run")
    return run if isinstance(run, Mapping) else {}


def _runs_frame(envs: Mapping[RunKey, Mapping[str, Any]]) -> pd.DataFrame:
    rows = []
    for key, env in envs.items():
        run = _run_settings(env)
        threads = run.get("threads")
        if threads is not None and not isinstance(threads, list):
            threads = [threads]
        settings = {k: v for k, v in run.items() if k not in {"threads", "run_id"}}
        rows.append(
            {
                **{k: env.get(k) for k in _ENV_KEYS},
                "run_key": key,
                "source": env.get("source"),
                "run_dir": env.get("run_dir"),
                "device_id": env.get("device_id"),
                "device_name": env.get("device_name") or env.get("device_id"),
                "threads": None if threads is None else ", ".join(map(str, threads)),
                "settings": "; ".join(f"{k}={_short_json(v)}" for k, v in settings.items()),
            }
        )
    frame = pd.DataFrame(rows, columns=list(RUN_FRAME_COLUMNS))
    for column in _META_NUMBERS & set(RUN_FRAME_COLUMNS):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def _short_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _peaks_frame(envs: Mapping[RunKey, Mapping[str, Any]]) -> pd.DataFrame:
    rows = [
        {
            "run_key": key,
            "device_id": env.get("device_id"),
            "device_name": env.get("device_name") or env.get("device_id"),
            "threads": threads,
            "gmacs_per_s": peak["gmacs_per_s"],
            "library": peak.get("library"),
            "precision": precision,
            "size": _whole(peak.get("size")),
            "candidates": _candidates(peak.get("candidates")),
            "reason": peak.get("reason"),
        }
        for key, env in envs.items()
        for precision, entries in peak_entries(env).items()
        for threads, peak in entries.items()
    ]
    frame = pd.DataFrame(rows, columns=list(PEAK_FRAME_COLUMNS))
    return frame.astype({"threads": int, "gmacs_per_s": float})


def _candidates(candidates: Any) -> str | None:
    """``torch 2.13.0 52.0, numpy (openblas) 40.1``: every library tried, fastest first."""
    if not isinstance(candidates, Mapping):
        return None
    rates = {str(k): r for k, v in candidates.items() if (r := as_number(v)) is not None}
    ranked = sorted(rates.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {rate:.1f}" for name, rate in ranked) or None


def _versions_frame(envs: Mapping[RunKey, Mapping[str, Any]]) -> pd.DataFrame:
    per_run = {key: _versions(env) for key, env in envs.items()}
    packages = list(dict.fromkeys(p for versions in per_run.values() for p in versions))
    rows = [{"run_key": key, **versions} for key, versions in per_run.items()]
    return pd.DataFrame(rows, columns=["run_key", *packages])


def _key_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, int | float):
        return f"{float(value):g}"
    text = str(value)
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _discover(path: Path) -> Iterator[tuple[str, Path | str]]:
    """``("run", folder)``, ``("json", file)`` or ``("problem", line)`` for what is under path."""
    if path.is_file():
        if path.suffix.lower() == ".json":
            yield "json", path
        else:
            yield "problem", f"{path}: not a run folder or a pytest-benchmark JSON file"
        return
    if not path.is_dir():
        yield "problem", f"{path}: no such file or folder"
        return
    merged = _is_merged(path)
    if not merged and _is_run(path):
        yield "run", path
        return
    if (path / PROFILE_CSV).is_file():  # a profile run: load_profiles reads it
        return
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs and not merged:
        yield "problem", f"{path}: not a run folder (no {RESULTS_CSV})"
    for sub in subdirs:
        yield from _discover(sub)


def _is_run(folder: Path) -> bool:
    return (folder / RESULTS_CSV).is_file() or (folder / RESULTS_JSON).is_file()


def _is_merged(folder: Path) -> bool:
    """Whether results.csv here is :func:`write_merged` output (it has a run_key column)."""
    try:
        with (folder / RESULTS_CSV).open(newline="", encoding="utf-8") as fh:
            return "run_key" in next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def _load_json(path: Path) -> _Run:
    """A pytest-benchmark JSON file as a run."""
    try:
        rows, samples, env = pytest_bench.read(path)
    except ValueError as exc:
        raise LoadError(f"{path}: {exc}; skipped") from exc
    meta = env_metadata(env)
    return _Run([{**meta, **row} for row in rows], samples, env)


def _load_run(folder: Path) -> _Run:
    """Read one run folder; a bad results file raises, a bad side file is a problem."""
    problems: list[str] = []
    env: dict[str, Any] = {}
    env_path = folder / ENV_JSON
    if env_path.is_file():
        try:
            env = _read_env(env_path)
        except LoadError as exc:
            problems.append(str(exc))
    rows = _read_results(folder)
    samples = None
    if (folder / SAMPLES_CSV).is_file():
        try:
            samples = _read_samples(folder / SAMPLES_CSV)
        except LoadError as exc:
            problems.append(str(exc))
    run_settings = _run_settings(env)
    first = rows[0] if rows else {}
    device_id = first.get("device_id") or env.get("device_id") or folder.parent.name
    run_id = first.get("run_id") or run_settings.get("run_id") or folder.name
    meta = env_metadata(env)
    fill = {"device_id": device_id, "device_name": env.get("device_name"), "run_id": run_id}
    full_rows = [_complete_row(row, fill, meta, folder) for row in rows]
    if samples is not None:
        samples = samples.assign(device_id=device_id)
    env_out = {
        **env,
        "device_id": env.get("device_id") or device_id,
        "run_key": f"{device_id}/{run_id}",
        "run_dir": str(folder),
        "source": RUNNER_SOURCE,
    }
    return _Run(full_rows, samples, env_out, problems)


def _complete_row(
    row: Mapping[str, Any], fill: Mapping[str, Any], meta: Mapping[str, Any], folder: Path
) -> dict[str, Any]:
    """A row with gaps filled from the run, env metadata added, and a cell id."""
    out = {**meta, **{k: v for k, v in row.items() if v is not None}}
    for key, value in fill.items():
        if out.get(key) is None:
            out[key] = value
    out["source"] = RUNNER_SOURCE
    out["run_dir"] = str(folder)
    if out.get("repeat") is None:
        out["repeat"] = 0
    if out.get("cell_id") is None and all(out.get(c) is not None for c in CELL_KEY):
        out["cell_id"] = cell_id(out)
    return out


def _read_env(path: Path) -> dict[str, Any]:
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{path}: unreadable JSON ({_short(exc)}); env ignored") from exc
    if not isinstance(env, dict):
        raise LoadError(f"{path}: expected a JSON object, not {type(env).__name__}; env ignored")
    return env


def _read_results(folder: Path) -> list[dict[str, Any]]:
    """Rows of results.csv (or results.json when there is no CSV), values parsed."""
    csv_path = folder / RESULTS_CSV
    if not csv_path.is_file():
        return _read_results_json(folder / RESULTS_JSON)
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            table = list(csv.reader(fh, strict=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LoadError(f"{csv_path}: unreadable CSV ({_short(exc)}); run skipped") from exc
    if not table:
        raise LoadError(f"{csv_path}: empty file, no header; run skipped")
    header = table[0]
    _check_header(csv_path, header)
    body = table[1:]
    for number, values in enumerate(body, start=2):
        if len(values) != len(header):
            raise LoadError(
                f"{csv_path}: line {number} has {len(values)} fields, the header has "
                f"{len(header)} (truncated or corrupt); run skipped"
            )
    return [dict(zip(header, map(parse_value, header, values), strict=True)) for values in body]


def _read_results_json(path: Path) -> list[dict[str, Any]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{path}: unreadable JSON ({_short(exc)}); run skipped") from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise LoadError(f"{path}: expected a list of row objects; run skipped")
    if rows:
        _check_header(path, list(rows[0]))
    return [{k: (None if v == "" else v) for k, v in row.items()} for row in rows]


def _check_header(path: Path, header: Sequence[str]) -> None:
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise LoadError(f"{path}: not a results file (no {'/'.join(missing)} column); run skipped")


def _read_samples(path: Path) -> pd.DataFrame:
    """samples.csv as a frame; a truncated or garbled file raises LoadError."""
    try:
        frame = pd.read_csv(path, dtype={"cell_id": str}, encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise LoadError(f"{path}: unreadable CSV ({_short(exc)}); samples skipped") from exc
    if "cell_id" not in frame.columns or "ms" not in frame.columns:
        raise LoadError(f"{path}: not a samples file (needs cell_id and ms); samples skipped")
    if "repeat" not in frame.columns:
        frame["repeat"] = 0
    if "iteration" not in frame.columns:
        frame["iteration"] = frame.groupby(["cell_id", "repeat"]).cumcount()
    for column in ("repeat", "iteration", "ms"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    bad = frame[["cell_id", "ms"]].isna().any(axis=1) | frame["repeat"].isna()
    if bad.any():
        line = int(bad.to_numpy().nonzero()[0][0]) + 2
        raise LoadError(f"{path}: line {line} is truncated or not a number; samples skipped")
    frame["repeat"] = frame["repeat"].astype(int)
    return frame[list(SAMPLE_COLUMNS)]


def _results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows -> frame with the contract columns first, numbers numeric, text as text."""
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    known = [*ALL_COLUMNS, *META_COLUMNS]
    for column in known:
        if column not in frame.columns:
            frame[column] = None
    versions = sorted(c for c in frame.columns if c.startswith("version_"))
    extra = [c for c in frame.columns if c not in known and c not in versions]
    frame = frame[[*known, *versions, *extra]]
    text_meta = set(META_COLUMNS) - _META_NUMBERS
    for column in frame.columns:
        if column in TEXT_COLUMNS or column in versions or column in text_meta:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        elif column in known:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        else:
            frame[column] = _maybe_numeric(frame[column])
    return frame.reset_index(drop=True)


def _maybe_numeric(column: pd.Series) -> pd.Series:
    """Numbers when every present value parses as one, else the text as it is."""
    numeric = pd.to_numeric(column, errors="coerce")
    return numeric if numeric.notna().sum() == column.notna().sum() else column


def _samples_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return empty_samples()
    return pd.concat(frames, ignore_index=True)[list(SAMPLE_FRAME_COLUMNS)]


def empty_samples() -> pd.DataFrame:
    """A samples frame with no rows and the right column types."""
    types = {"repeat": int, "iteration": int, "ms": float}
    return pd.DataFrame({c: pd.Series(dtype=types.get(c, object)) for c in SAMPLE_FRAME_COLUMNS})


def _unique_key(key: str, taken: Mapping[str, Any]) -> str:
    """``key``, or ``key#2``, ``key#3``... when runs share a device and run id."""
    if key not in taken:
        return key
    n = 2
    while f"{key}#{n}" in taken:
        n += 1
    return f"{key}#{n}"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
