"""Derived tables for the report: pooled cells, fastest backends, the depthwise ratio,
repeats, the GEMM-peak roofs and the precision comparisons.

Pure pandas on the frames of :func:`harness.report.load.load_frames`; no I/O.
Precision is part of every key that pairs or groups cells, so an fp32 cell is
never compared with an int8 one by accident; only :func:`precision_table`
compares precisions, each against the same backend's fp32 cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from harness.formats import FP32, precision_rank

DEPTHWISE_MODEL = "mobilenet_v2"
STANDARD_MODEL = "standard_conv"
#: What must match for a standard_conv cell to pair with a mobilenet_v2 cell.
PAIR_KEY = (
    "run_key",
    "device_id",
    "source",
    "width",
    "resolution",
    "backend",
    "mode",
    "precision",
    "batch",
    "threads",
)
#: What must match for a cell of one precision to be compared with its fp32 cell.
VARIANT_KEY = (*(k for k in PAIR_KEY if k != "precision"), "model")
_CELL = ["run_key", "cell_id"]


def precisions(results: pd.DataFrame) -> list[str]:
    """The precisions the rows hold (a row without one ran fp32), fp32 first."""
    found = set(results["precision"].fillna(FP32).astype(str)) if len(results) else set()
    return sorted(found, key=precision_rank)


def sorted_by_precision(
    frame: pd.DataFrame, before: list[str], after: tuple[str, ...] = ()
) -> pd.DataFrame:
    """``frame`` sorted by the ``before`` columns, then precision (fp32 first), then ``after``."""
    ranked = frame.assign(_rank=frame["precision"].map(precision_rank))
    ranked = ranked.sort_values([*before, "_rank", *after], kind="stable")
    return ranked.drop(columns="_rank").reset_index(drop=True)


def twin_pairs(rows: pd.DataFrame, conv: pd.Series, values: Mapping[str, str]) -> pd.DataFrame:
    """Each depthwise-network row (``conv`` "depthwise") beside its standard twin's row on
    PAIR_KEY; each column of ``values`` becomes ``dw_<name>`` and ``std_<name>``."""
    keep = [*PAIR_KEY, *values]
    dw = rows.loc[conv == "depthwise", [*keep, "device_name", "run_id"]]
    std = rows.loc[conv == "standard", keep]
    pairs = dw.merge(std, on=list(PAIR_KEY), suffixes=("_dw", "_std"))
    return pairs.rename(
        columns={
            f"{column}_{side}": f"{side}_{name}"
            for column, name in values.items()
            for side in ("dw", "std")
        }
    )


def origins(rows: pd.DataFrame) -> pd.DataFrame:
    """The weights and images each model's rows were measured with, one row per pair
    (empty for results written before the ``weights`` column existed)."""
    columns = ["model", "weights", "inputs"]
    if not set(columns) <= set(rows.columns):
        return pd.DataFrame(columns=columns)
    found = rows[columns].dropna(subset=["weights"]).drop_duplicates()
    return found.sort_values(["model", "weights"]).reset_index(drop=True)


def precision_of(value: Any) -> str:
    """A row's precision as text; fp32 when it has none (older harnesses ran fp32 only)."""
    return FP32 if value is None or (isinstance(value, float) and value != value) else str(value)


def multi_precision(results: pd.DataFrame) -> bool:
    """Whether labels must name the precision: the rows hold more than one."""
    return len(precisions(results)) > 1


def has_precisions(results: pd.DataFrame) -> bool:
    """Whether the report needs its precision section: any precision other than fp32."""
    return any(p != FP32 for p in precisions(results))


def cell_label(row: pd.Series, precision: bool = False) -> str:
    """``mobilenet_v2 · onnxruntime/cpu · b1 t2`` (``· int8 ·`` with ``precision``),
    tagged when not from the runner."""
    kind = f"{precision_of(row.get('precision'))} · " if precision else ""
    label = (
        f"{row['model']} · {row['backend']}/{row['mode']} · {kind}"
        f"b{_num(row['batch'])} t{_num(row['threads'])}"
    )
    source = row.get("source")
    return f"{label} [{source}]" if source and source != "mobilebench" else label


def peak_label(peak: Mapping[str, Any], precision: bool = False) -> str:
    """``2 threads (torch 2.13.0)`` for a row of the peaks frame (``2 threads int8 (...)``)."""
    threads = int(peak["threads"])
    library = peak.get("library")
    text = f"{threads} thread{'' if threads == 1 else 's'}"
    if precision:
        text += f" {precision_of(peak.get('precision'))}"
    return f"{text} ({library})" if isinstance(library, str) and library else text


def _num(value: object) -> str:
    if value is None or pd.isna(value):
        return "?"
    return f"{float(value):g}"


def labelled_samples(results: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Raw samples joined with their cell (device, model, backend, label), ok cells only."""
    ok = results[results["status"] == "ok"].drop_duplicates(_CELL)
    cols = ["run_key", "cell_id", "device_id", "device_name", "model", "backend", "mode"]
    meta = ok[[*cols, "precision", "batch", "threads", "source"]].copy()
    show = multi_precision(results)
    meta["label"] = (
        meta.apply(cell_label, axis=1, precision=show) if len(meta) else pd.Series(dtype=object)
    )
    return samples.drop(columns=["device_id"]).merge(meta, on=_CELL, how="inner")


def cells(results: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """One row per measured (ok) cell of each run, repeats pooled.

    ``latency_ms_p50``/``p90`` come from the pooled raw samples when the cell has
    any, else from the median of the repeats' values; ``peak_rss_mb`` is the
    largest over repeats; ``n_repeats`` counts them. A row without a precision
    (older harnesses measured fp32 only) counts as fp32.
    """
    ok = results[results["status"] == "ok"].assign(precision=results["precision"].fillna(FP32))
    if ok.empty:
        return ok.assign(n_repeats=pd.Series(dtype=float), label=pd.Series(dtype=object))
    grouped = ok.groupby(_CELL, dropna=False, sort=False)
    out = grouped.first()
    for column in ("latency_ms_p50", "latency_ms_p90", "roofline_pct", "gmacs_per_s"):
        out[column] = grouped[column].median()
    out["peak_rss_mb"] = grouped["peak_rss_mb"].max()
    out["n_repeats"] = grouped["repeat"].nunique(dropna=False)
    if len(samples):
        pooled = samples.groupby(_CELL)["ms"]
        out["latency_ms_p50"] = pooled.median().reindex(out.index).fillna(out["latency_ms_p50"])
        p90 = pooled.quantile(0.9).reindex(out.index)
        out["latency_ms_p90"] = p90.fillna(out["latency_ms_p90"])
    out = out.reset_index()
    out["label"] = out.apply(cell_label, axis=1, precision=multi_precision(results))
    return out


def fastest(cell_table: pd.DataFrame) -> pd.DataFrame:
    """Per device, model, precision and batch: the cell with the lowest p50 (ties: the
    latest run). An int8 cell never wins over fp32 ones: each precision has its own row."""
    timed = cell_table.dropna(subset=["latency_ms_p50"])
    timed = timed.sort_values("run_id", ascending=False, kind="stable", na_position="last")
    if timed.empty:
        return timed
    keys = ["device_id", "model", "precision", "batch"]
    best = timed.loc[timed.groupby(keys, dropna=False)["latency_ms_p50"].idxmin()]
    return sorted_by_precision(best, ["device_id", "model"], ("batch",))


def depthwise(cell_table: pd.DataFrame) -> pd.DataFrame:
    """standard_conv p50 / mobilenet_v2 p50 per run, backend and setting, beside the MAC ratio.

    ``realised_pct`` = latency ratio / MAC ratio: the share of the depthwise MAC
    saving that shows up as wall time (100% = latency scales with MACs).
    """
    conv = cell_table["model"].map(_CONV_OF_MODEL)
    pairs = twin_pairs(cell_table, conv, {"latency_ms_p50": "p50_ms", "macs": "macs"})
    pairs["latency_ratio"] = pairs["std_p50_ms"] / pairs["dw_p50_ms"]
    pairs["mac_ratio"] = pairs["std_macs"] / pairs["dw_macs"]
    pairs["realised_pct"] = 100.0 * pairs["latency_ratio"] / pairs["mac_ratio"]
    return sorted_by_precision(
        pairs, ["device_id", "backend", "mode"], ("batch", "threads", "run_key")
    )


def repeats(results: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Per-repeat p50 of every ok cell measured more than once (long format).

    Columns: run_key, cell_id, device_id, label, repeat, p50_ms. The p50 comes
    from that repeat's raw samples when there are any, else from its row.
    """
    ok = results[results["status"] == "ok"]
    counts = ok.groupby(_CELL)["repeat"].nunique()
    multi = counts[counts > 1].index
    columns = ["run_key", "cell_id", "device_id", "label", "repeat", "p50_ms"]
    if multi.empty:
        return pd.DataFrame(columns=columns)
    rows = ok.set_index(_CELL).loc[multi].reset_index()
    rows["label"] = rows.apply(cell_label, axis=1, precision=multi_precision(results))
    rows["p50_ms"] = rows["latency_ms_p50"]
    if len(samples):
        per = samples.groupby([*_CELL, "repeat"])["ms"].median().rename("pooled")
        rows = rows.join(per, on=[*_CELL, "repeat"])
        rows["p50_ms"] = rows["pooled"].fillna(rows["p50_ms"])
    return rows[columns].sort_values(["run_key", "cell_id", "repeat"]).reset_index(drop=True)


def repeat_drift(long: pd.DataFrame) -> pd.DataFrame:
    """One row per repeated cell: p50 of each repeat, drift (last vs first) and spread, in %."""
    if long.empty:
        return pd.DataFrame(columns=["run_key", "device_id", "label", "drift_pct", "spread_pct"])
    wide = long.pivot_table(
        index=["run_key", "device_id", "label"], columns="repeat", values="p50_ms", aggfunc="first"
    )
    wide.columns = [f"repeat {int(r)}" for r in wide.columns]
    values = wide.copy()
    wide["drift_pct"] = 100.0 * (values.ffill(axis=1).iloc[:, -1] / values.iloc[:, 0] - 1.0)
    wide["spread_pct"] = 100.0 * (values.max(axis=1) / values.min(axis=1) - 1.0)
    return wide.reset_index()


def roofs(cell_table: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """The measured GEMM peak of each device, precision and thread count that has measured
    cells (latest run's).

    ``peaks`` is the peaks frame of ``load_frames``; the result keeps its
    columns, one row per (device_id, precision, threads), sorted by device name,
    precision and threads.
    """
    key = ["device_id", "precision", "threads"]
    used = cell_table[key].drop_duplicates().astype({"threads": float})
    measured = peaks.dropna(subset=["gmacs_per_s"]).sort_values("run_key")
    latest = measured.drop_duplicates(key, keep="last").astype({"threads": float})
    both = latest.merge(used, on=key).astype({"threads": int})
    return sorted_by_precision(both, ["device_name"], ("threads",))


def precision_table(cell_table: pd.DataFrame) -> pd.DataFrame:
    """Every measured cell beside the same backend's fp32 cell of the same run and setting.

    Adds ``fp32_p50_ms``, ``fp32_size_mb``, ``speed_up`` (fp32 p50 / this p50: above
    1 = faster than fp32) and ``size_ratio`` (size_mb / fp32 size_mb); both are
    NaN when the fp32 cell was not measured. Sorted by device, model, backend,
    mode, batch, threads, then precision (fp32 first).
    """
    key = list(VARIANT_KEY)
    fp32 = cell_table.loc[cell_table["precision"] == FP32, [*key, "latency_ms_p50", "size_mb"]]
    fp32 = fp32.drop_duplicates(key).rename(
        columns={"latency_ms_p50": "fp32_p50_ms", "size_mb": "fp32_size_mb"}
    )
    table = cell_table.merge(fp32, on=key, how="left")
    table["speed_up"] = table["fp32_p50_ms"] / table["latency_ms_p50"]
    table["size_ratio"] = table["size_mb"] / table["fp32_size_mb"]
    order = ["device_name", "device_id", "model", "backend", "mode", "batch", "threads"]
    return sorted_by_precision(table, order, ("run_key",))


def not_measured(results: pd.DataFrame) -> pd.DataFrame:
    """Cells with no ok row, one row per device, backend, mode, precision, status and reason.

    Columns: device_id, device_name, backend, mode, precision, status, reason,
    models (comma-joined), cells (how many).
    """
    key = ["device_id", "device_name", "backend", "mode", "precision", "status", "reason"]
    columns = [*key, "models", "cells"]
    ok = results.loc[results["status"] == "ok", _CELL].drop_duplicates()
    rows = results[results["status"] != "ok"].drop_duplicates(_CELL)
    rows = rows.merge(ok, on=_CELL, how="left", indicator=True)
    rows = rows[rows["_merge"] == "left_only"].assign(
        precision=lambda f: f["precision"].fillna(FP32), reason=lambda f: f["reason"].fillna("")
    )
    if rows.empty:
        return pd.DataFrame(columns=columns)
    grouped = rows.groupby(key, dropna=False, sort=False)
    table = grouped.agg(
        models=("model", lambda m: ", ".join(sorted(set(map(str, m.dropna()))))),
        cells=("cell_id", "size"),
    ).reset_index()
    return sorted_by_precision(table, ["device_name", "backend", "mode"], ("status",))[columns]


def pareto_points(cell_table: pd.DataFrame) -> pd.DataFrame:
    """Latency against top-1 agreement: one point per device, model, backend, mode and
    precision (its fastest cell at the device's smallest batch), with ``pareto`` True
    for the points no other point of the same device and model beats on both
    (as fast or faster and agreeing as well or better)."""
    data = cell_table.dropna(subset=["latency_ms_p50", "top1_agree"])
    if data.empty:
        return data.assign(pareto=pd.Series(dtype=bool))
    smallest = data.groupby("device_id")["batch"].transform("min")
    data = data[data["batch"] == smallest]
    data = data.sort_values(["latency_ms_p50", "top1_agree"], ascending=[True, False])
    points = data.drop_duplicates(["device_id", "model", "backend", "mode", "precision"])
    best_before = points.groupby(["device_id", "model"])["top1_agree"].transform(
        lambda s: s.cummax().shift(fill_value=-1.0)
    )
    points = points.assign(pareto=points["top1_agree"] > best_before)
    return points.sort_values(["device_id", "model", "latency_ms_p50"]).reset_index(drop=True)


def precision_depthwise(table: pd.DataFrame) -> pd.DataFrame:
    """Per run, backend, setting and reduced precision: the speed-up over fp32 of the
    depthwise network and of its standard-convolution twin side by side.

    ``table`` is :func:`precision_table`; networks are told apart by ``conv``
    (``depthwise``/``standard``; by model name when a row has none). Columns: the
    PAIR_KEY, device_name, run_id, ``dw_speed_up``, ``std_speed_up``,
    ``dw_p50_ms``, ``std_p50_ms`` and ``twin_ratio`` (std ÷ dw speed-up).
    """
    conv = table["conv"].fillna(table["model"].map(_CONV_OF_MODEL))
    variants = table[(table["precision"] != FP32) & table["speed_up"].notna()]
    values = {"speed_up": "speed_up", "latency_ms_p50": "p50_ms"}
    pairs = twin_pairs(variants, conv[variants.index], values)
    pairs["twin_ratio"] = pairs["std_speed_up"] / pairs["dw_speed_up"]
    order = ["device_name", "device_id", "backend", "mode"]
    return sorted_by_precision(pairs, order, ("batch", "threads", "run_key"))


_CONV_OF_MODEL = {DEPTHWISE_MODEL: "depthwise", STANDARD_MODEL: "standard"}
