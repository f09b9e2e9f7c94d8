"""Profile rows: one per spec layer in model order, plus the unattributed row.

A layer's time is the median over profiled iterations (an iteration without an
event of the layer counts 0 ms); its share is of the sum of all rows' medians.
Throughput is analytic MACs over that time, and the share of the device's peak
when one is known. The profiler's own cost shows as ``overhead_ratio``: the
median profiled iteration over the unprofiled median of the same cell.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from harness.profiling.layers import ROLES, UNATTRIBUTED, LayerTimes, SpecLayer

#: Role of the :data:`UNATTRIBUTED` row.
UNATTRIBUTED_ROLE = "unattributed"
#: A cell's identity, as every result row starts.
IDENTITY_COLUMNS = (
    "run_id",
    "device_id",
    "device_name",
    "cell_id",
    "model",
    "width",
    "resolution",
    "conv",
    "backend",
    "mode",
    "precision",
    "batch",
    "threads",
    "weights",
    "inputs",
)
#: What :func:`profile_rows` fills in, per row.
ROW_COLUMNS = (
    "layer",
    "role",
    "macs",
    "ms_p50",
    "time_share",
    "gmacs_per_s",
    "peak_pct",
    "profiled_ms",
    "unprofiled_p50_ms",
    "overhead_ratio",
    "iterations",
    "events",
    "mapped_events",
    "unattributed_events",
    "source",
    "note",
)
PROFILE_COLUMNS = (*IDENTITY_COLUMNS, *ROW_COLUMNS, "status", "reason")


def profile_rows(
    layer_times: LayerTimes,
    layers: Sequence[SpecLayer],
    unprofiled_p50_ms: float,
    peak_gmacs_per_s: float | None,
    batch: int,
) -> list[dict[str, Any]]:
    """Every spec layer once, in model order, then the unattributed row."""
    if not layer_times.iterations:
        raise ValueError("a profile needs at least one profiled iteration")
    _check_names(layer_times, layers)
    rows = [_layer_row(layer_times, layer, batch) for layer in layers]
    rows.append(_unattributed_row(layer_times))
    total = sum(row["ms_p50"] for row in rows)
    profiled = statistics.median(sum(it.values()) for it in layer_times.iterations)
    for row in rows:
        row["time_share"] = row["ms_p50"] / total if total > 0 else None
        row["gmacs_per_s"] = _gmacs_per_s(row["macs"], row["ms_p50"])
        row["peak_pct"] = _peak_pct(row["gmacs_per_s"], peak_gmacs_per_s)
        row.update(_cell_columns(layer_times, profiled, unprofiled_p50_ms))
    return [{column: row.get(column) for column in ROW_COLUMNS} for row in rows]


def role_shares(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of the profiled time per role (roles in model order, unattributed last)."""
    shares: dict[str, float] = {}
    for row in rows:
        if row.get("time_share") is not None:
            shares[row["role"]] = shares.get(row["role"], 0.0) + row["time_share"]
    order = [*ROLES, UNATTRIBUTED_ROLE]
    return {role: shares[role] for role in sorted(shares, key=_rank(order))}


def median_ms(layer_times: LayerTimes, name: str) -> float:
    """Median over iterations of ``name``'s ms; an iteration without it counts 0."""
    return statistics.median(it.get(name, 0.0) for it in layer_times.iterations)


def _layer_row(layer_times: LayerTimes, layer: SpecLayer, batch: int) -> dict[str, Any]:
    seen = any(layer.name in it for it in layer_times.iterations)
    return {
        "layer": layer.name,
        "role": layer.role,
        "macs": layer.macs * batch,
        "ms_p50": median_ms(layer_times, layer.name),
        "note": None if seen else "no profiled event in this layer's span",
    }


def _unattributed_row(layer_times: LayerTimes) -> dict[str, Any]:
    names = layer_times.unattributed_names
    return {
        "layer": UNATTRIBUTED,
        "role": UNATTRIBUTED_ROLE,
        "macs": 0,
        "ms_p50": median_ms(layer_times, UNATTRIBUTED),
        "note": f"events: {', '.join(names)}" if names else None,
    }


def _cell_columns(
    layer_times: LayerTimes, profiled_ms: float, unprofiled_p50_ms: float
) -> dict[str, Any]:
    """The columns every row of one profile shares."""
    return {
        "profiled_ms": profiled_ms,
        "unprofiled_p50_ms": unprofiled_p50_ms,
        "overhead_ratio": profiled_ms / unprofiled_p50_ms if unprofiled_p50_ms else None,
        "iterations": len(layer_times.iterations),
        "events": layer_times.events,
        "mapped_events": layer_times.mapped_events,
        "unattributed_events": layer_times.unattributed_events,
        "source": layer_times.source,
    }


def _gmacs_per_s(macs: int, ms: float) -> float | None:
    """MACs per ms / 1e6 = GMAC/s; None without MACs or time."""
    return macs / ms / 1e6 if macs and ms > 0 else None


def _peak_pct(gmacs_per_s: float | None, peak: float | None) -> float | None:
    return 100.0 * gmacs_per_s / peak if gmacs_per_s is not None and peak else None


def _check_names(layer_times: LayerTimes, layers: Sequence[SpecLayer]) -> None:
    """Every timed name must be a spec layer or the unattributed row: none is dropped."""
    known = {layer.name for layer in layers} | {UNATTRIBUTED}
    unknown = sorted({name for it in layer_times.iterations for name in it} - known)
    if unknown:
        raise ValueError(f"times for names that are no spec layer: {', '.join(unknown)}")


def _rank(order: Sequence[str]):
    return lambda role: (order.index(role) if role in order else len(order), role)
