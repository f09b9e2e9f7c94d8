"""Derived tables for the report: pooled cells, fastest backends, the depthwise ratio,
repeats and the GEMM-peak roofs.

Pure pandas on the frames of :func:`harness.report.load.load_frames`; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

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
_CELL = ["run_key", "cell_id"]


def cell_label(row: pd.Series) -> str:
    """``mobilenet_v2 · onnxruntime/cpu · b1 t2``, tagged when not from the runner."""
    label = (
        f"{row['model']} · {row['backend']}/{row['mode']} · "
        f"b{_num(row['batch'])} t{_num(row['threads'])}"
    )
    source = row.get("source")
    return f"{label} [{source}]" if source and source != "mobilebench" else label


def peak_label(peak: Mapping[str, Any]) -> str:
    """``2 threads (torch 2.13.0)`` for a row of the peaks frame."""
    threads = int(peak["threads"])
    library = peak.get("library")
    text = f"{threads} thread{'' if threads == 1 else 's'}"
    return f"{text} ({library})" if isinstance(library, str) and library else text


def _num(value: object) -> str:
    if value is None or pd.isna(value):
        return "?"
    return f"{float(value):g}"


def labelled_samples(results: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Raw samples joined with their cell (device, model, backend, label), ok cells only."""
    ok = results[results["status"] == "ok"].drop_duplicates(_CELL)
    cols = ["run_key", "cell_id", "device_id", "device_name", "model", "backend", "mode"]
    meta = ok[[*cols, "batch", "threads", "source"]].copy()
    meta["label"] = meta.apply(cell_label, axis=1) if len(meta) else pd.Series(dtype=object)
    return samples.drop(columns=["device_id"]).merge(meta, on=_CELL, how="inner")


def cells(results: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """One row per measured (ok) cell of each run, repeats pooled.

    ``latency_ms_p50``/``p90`` come from the pooled raw samples when the cell has
    any, else from the median of the repeats' values; ``peak_rss_mb`` is the
    largest over repeats; ``n_repeats`` counts them.
    """
    ok = results[results["status"] == "ok"]
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
    out["label"] = out.apply(cell_label, axis=1)
    return out


def fastest(cell_table: pd.DataFrame) -> pd.DataFrame:
    """Per device, model and batch: the cell with the lowest p50 (ties: the latest run)."""
    timed = cell_table.dropna(subset=["latency_ms_p50"])
    timed = timed.sort_values("run_id", ascending=False, kind="stable", na_position="last")
    if timed.empty:
        return timed
    keys = ["device_id", "model", "batch"]
    best = timed.loc[timed.groupby(keys, dropna=False)["latency_ms_p50"].idxmin()]
    return best.sort_values(keys).reset_index(drop=True)


def depthwise(cell_table: pd.DataFrame) -> pd.DataFrame:
    """standard_conv p50 / mobilenet_v2 p50 per run, backend and setting, beside the MAC ratio.

    ``realised_pct`` = latency ratio / MAC ratio: the share of the depthwise MAC
    saving that shows up as wall time (100% = latency scales with MACs).
    """
    keep = [*PAIR_KEY, "latency_ms_p50", "macs"]
    dw = cell_table.loc[cell_table["model"] == DEPTHWISE_MODEL, [*keep, "device_name", "run_id"]]
    std = cell_table.loc[cell_table["model"] == STANDARD_MODEL, keep]
    pairs = dw.merge(std, on=list(PAIR_KEY), suffixes=("_dw", "_std"))
    pairs = pairs.rename(
        columns={
            "latency_ms_p50_dw": "dw_p50_ms",
            "latency_ms_p50_std": "std_p50_ms",
            "macs_dw": "dw_macs",
            "macs_std": "std_macs",
        }
    )
    pairs["latency_ratio"] = pairs["std_p50_ms"] / pairs["dw_p50_ms"]
    pairs["mac_ratio"] = pairs["std_macs"] / pairs["dw_macs"]
    pairs["realised_pct"] = 100.0 * pairs["latency_ratio"] / pairs["mac_ratio"]
    order = ["device_id", "backend", "mode", "batch", "threads", "run_key"]
    return pairs.sort_values(order).reset_index(drop=True)


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
    rows["label"] = rows.apply(cell_label, axis=1)
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
    """The GEMM peak of each device and thread count that has measured cells (latest run's).

    ``peaks`` is the peaks frame of ``load_frames``; the result keeps its
    columns, one row per (device_id, threads), sorted by device name and threads.
    """
    used = cell_table[["device_id", "threads"]].drop_duplicates().astype({"threads": float})
    latest = peaks.sort_values("run_key").drop_duplicates(["device_id", "threads"], keep="last")
    both = latest.astype({"threads": float}).merge(used, on=["device_id", "threads"])
    both = both.astype({"threads": int})
    return both.sort_values(["device_name", "threads"]).reset_index(drop=True)
