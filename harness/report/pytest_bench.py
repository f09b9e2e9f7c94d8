"""pytest-benchmark JSON (``pytest --benchmark-json F``) as report rows, labelled as such.

Each benchmark becomes one row with ``source = "pytest-benchmark"``. Its cell
comes from ``extra_info`` (``model``, ``backend``, ``mode``, ``batch``,
``threads``, ``macs`` and any other results column), then from ``params``,
then from the tokens of the test id (``test_x[onnxruntime-mobilenet_v2-b8-t2]``).
Times in the file are seconds; rows are milliseconds. Raw timings
(``--benchmark-save-data``) become samples. A ``machine_info["mobilebench"]``
dict (an env.json fingerprint added by the suite) puts the rows on the runner's
device; otherwise the device comes from ``machine_info["cpu"]``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from harness.backends import REGISTRY  # the registry imports no framework
from harness.results import ALL_COLUMNS, CELL_KEY, SAMPLE_COLUMNS, as_number, cell_id
from harness.spec import available_models

SOURCE = "pytest-benchmark"
#: stats key (seconds) -> results column (milliseconds).
_STAT_COLUMNS = {
    "median": "latency_ms_p50",
    "mean": "latency_ms_mean",
    "stddev": "latency_ms_std",
    "min": "latency_ms_min",
    "max": "latency_ms_max",
    "iqr": "latency_ms_iqr",
}
#: Columns a benchmark's extra_info may not override: they belong to the run.
_RUN_COLUMNS = frozenset({"run_id", "timestamp", "device_id", "device_name", "status", "source"})
_INT_TOKEN = re.compile(r"^([bt])(\d+)$")


def read(path: Path) -> tuple[list[dict[str, Any]], pd.DataFrame, dict[str, Any]]:
    """``(rows, samples, env)`` of one pytest-benchmark JSON file; ValueError when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable JSON ({str(exc).splitlines()[0][:120]})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError("not a pytest-benchmark JSON file (no 'benchmarks' list)")
    env = environment(data, path)
    rows: list[dict[str, Any]] = []
    samples: list[pd.DataFrame] = []
    seen: set[str] = set()
    for bench in data["benchmarks"]:
        if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
            raise ValueError("a benchmark without 'stats'")
        row = benchmark_row(bench, env)
        if row.get("model") is None or row.get("backend") is None:
            continue  # not a model measurement (e.g. the timing loop's own overhead)
        row["cell_id"] = _unique(row["cell_id"], seen)
        rows.append(row)
        data_s = bench["stats"].get("data")
        if isinstance(data_s, list) and data_s:
            ms = pd.to_numeric(pd.Series(data_s), errors="coerce") * 1e3
            samples.append(
                pd.DataFrame(
                    {"cell_id": row["cell_id"], "repeat": 0, "iteration": range(len(ms)), "ms": ms}
                )
            )
    frame = (
        pd.concat(samples, ignore_index=True)
        if samples
        else pd.DataFrame({c: pd.Series(dtype=object) for c in SAMPLE_COLUMNS})
    )
    return rows, frame.assign(device_id=env["device_id"]), env


def environment(data: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """An env dict (env.json keys) for the file's machine and commit."""
    machine = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    commit = data.get("commit_info") if isinstance(data.get("commit_info"), dict) else {}
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    own = machine.get("mobilebench") if isinstance(machine.get("mobilebench"), dict) else {}
    brand = cpu.get("brand_raw") or machine.get("processor") or machine.get("machine")
    fingerprint = f"{brand}|{cpu.get('count')}|{machine.get('machine')}"
    device_id = (
        own.get("device_id") or "pytest-" + hashlib.sha1(fingerprint.encode()).hexdigest()[:8]
    )
    run_id = str(commit.get("id") or "")[:12] or path.stem
    versions = {"pytest-benchmark": data.get("version")}
    env: dict[str, Any] = {
        "device_id": device_id,
        "device_name": f"{brand} ({cpu.get('count')} CPUs)" if brand else device_id,
        "cpu_model": brand,
        "logical_cores": cpu.get("count"),
        "arch": machine.get("machine"),
        "os": machine.get("system"),
        "os_pretty": " ".join(str(machine[k]) for k in ("system", "release") if machine.get(k)),
        "python": machine.get("python_version"),
        **own,
    }
    env["versions"] = {**(own.get("versions") or {}), **versions}
    env["run"] = {
        "run_id": run_id,
        "timestamp": data.get("datetime"),
        "commit": commit.get("id"),
        "branch": commit.get("branch"),
        "dirty": commit.get("dirty"),
    }
    env.update(
        device_id=device_id,
        run_key=f"{device_id}/{SOURCE}/{run_id}",
        run_dir=str(path),
        source=SOURCE,
    )
    return env


def benchmark_row(bench: Mapping[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    """One results row (milliseconds) from one benchmark entry."""
    stats = bench["stats"]
    row: dict[str, Any] = _cell_from_name(str(bench.get("name", "")))
    params = bench.get("params") if isinstance(bench.get("params"), dict) else {}
    extra = bench.get("extra_info") if isinstance(bench.get("extra_info"), dict) else {}
    for source in (params, extra):
        row.update({k: v for k, v in source.items() if k in ALL_COLUMNS and k not in _RUN_COLUMNS})
    for key, column in _STAT_COLUMNS.items():
        if isinstance(stats.get(key), int | float):
            row[column] = stats[key] * 1e3
    batch = as_number(row.get("batch")) or 1
    ops = as_number(stats.get("ops"))
    p50 = as_number(row.get("latency_ms_p50"))
    macs = as_number(row.get("macs"))
    row.update(
        run_id=env["run"]["run_id"],
        timestamp=env["run"]["timestamp"],
        device_id=env["device_id"],
        device_name=env["device_name"],
        status="ok",
        reason=f"pytest-benchmark: {bench.get('fullname') or bench.get('name')}",
        n_iter=stats.get("rounds"),
        throughput_ips=ops * batch if ops else None,
        gmacs_per_s=macs * batch / p50 / 1e6 if macs and p50 else None,
        repeat=0,
        source=SOURCE,
        run_dir=env["run_dir"],
    )
    complete = all(row.get(k) is not None for k in CELL_KEY)
    row["cell_id"] = cell_id(row) if complete else f"{SOURCE}/{bench.get('name')}"
    return row


def _cell_from_name(name: str) -> dict[str, Any]:
    """model, backend, batch (``b8``) and threads (``t2``) from the test id's tokens."""
    bracket = name.partition("[")[2].rstrip("]")
    models = set(available_models())
    found: dict[str, Any] = {}
    for token in filter(None, re.split(r"[-,\s]+", bracket)):
        if token in models:
            found.setdefault("model", token)
        elif token in REGISTRY:
            found.setdefault("backend", token)
        elif match := _INT_TOKEN.match(token):
            found.setdefault("batch" if match[1] == "b" else "threads", int(match[2]))
    return found


def _unique(key: str, seen: set[str]) -> str:
    out, n = key, 2
    while out in seen:
        out, n = f"{key}#{n}", n + 1
    seen.add(out)
    return out
