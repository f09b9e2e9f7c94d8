"""The report's "Where the time goes" section: per-layer profile rows by layer role.

Reads the ``profile.csv`` files ``mobilebench profile`` writes into run folders
(one row per cell and spec layer, one ``(unattributed)`` row per profiled cell,
one row without a layer per skipped or failed cell) and turns them into the time
share of each layer role, depthwise network beside its standard twin, the role
furthest from the device's GEMM peak, two plots and the section's HTML. Pure
pandas and matplotlib; every text from data is escaped.
"""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness.formats import FP32
from harness.profiling.layers import ROLES
from harness.profiling.table import IDENTITY_COLUMNS, PROFILE_COLUMNS, UNATTRIBUTED_ROLE
from harness.report import plots
from harness.report.html_table import (
    Column,
    esc,
    fmt_int,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    fmt_str,
    formatter,
    note,
    render_table,
)
from harness.report.tables import (
    DEPTHWISE_MODEL,
    PAIR_KEY,
    STANDARD_MODEL,
    sorted_by_precision,
)
from harness.results import PROFILE_CSV

#: Columns :func:`load_profiles` adds: ``<device_id>/<run_id>`` (as the results
#: loader keys runs) and the folder the file came from.
FRAME_COLUMNS = (*PROFILE_COLUMNS, "run_key", "run_dir")
TEXT_COLUMNS = frozenset(
    (
        *("run_id", "device_id", "device_name", "cell_id", "model", "conv", "backend"),
        *("mode", "precision", "layer", "role", "source", "note", "status", "reason"),
        *("weights", "inputs", "run_key", "run_dir"),
    )
)
#: Every role in the order tables, bars and legends show them.
ROLE_ORDER = (*ROLES, UNATTRIBUTED_ROLE)
#: What must match for a standard_conv profile to sit beside a mobilenet_v2 one: the
#: results' twin-pairing key (a profile has no ``source``: it is always mobilebench's).
SETTING = tuple(column for column in PAIR_KEY if column != "source")
_CELL = ["run_key", "cell_id"]
_CONV_OF_MODEL = {DEPTHWISE_MODEL: "depthwise", STANDARD_MODEL: "standard"}
_SIDES = {"depthwise": "dw", "standard": "std"}
#: Per-cell values role_shares puts beside each role, per side.
_CELL_VALUES = ("cell_id", "model", "profiled_ms", "unprofiled_p50_ms", "overhead_ratio")
#: A colour per role in ROLE_ORDER (tab10 without its grey), grey for unattributed time.
_ROLE_COLORS = {
    **dict(zip(ROLES, (c for i, c in enumerate(plots._COLORS) if i != 7), strict=False)),
    UNATTRIBUTED_ROLE: (0.6, 0.6, 0.6),
}
_CONV_MARKERS = {"depthwise": "o", "standard": "s"}


# --- loading ---------------------------------------------------------------------------


def load_profiles(paths: Sequence[Path], problems: list[str] | None = None) -> pd.DataFrame:
    """Every ``profile.csv`` under ``paths`` (run folders, or folders holding them at any
    depth, or the files themselves) as one typed frame with :data:`FRAME_COLUMNS`.

    Numbers are floats, text is text or None; an empty frame with the columns when
    no file is found. Unreadable files are skipped, each with one line appended to
    ``problems`` when given.
    """
    rows: list[dict[str, Any]] = []
    for path in paths:
        for csv_path in _profile_files(Path(path), problems):
            try:
                rows.extend(_read_profile(csv_path))
            except ValueError as exc:
                if problems is not None:
                    problems.append(str(exc))
    return _typed(pd.DataFrame.from_records(rows) if rows else pd.DataFrame())


def _profile_files(path: Path, problems: list[str] | None) -> Iterator[Path]:
    """``path`` when it is a profile.csv, else every one below it (hidden folders skipped)."""
    if path.is_file():
        if path.name == PROFILE_CSV:
            yield path
        elif problems is not None:
            problems.append(f"{path}: not a {PROFILE_CSV} or a folder")
        return
    if not path.is_dir():
        if problems is not None:
            problems.append(f"{path}: no such file or folder")
        return
    for found in sorted(path.rglob(PROFILE_CSV)):
        if found.is_file() and not any(p.startswith(".") for p in found.relative_to(path).parts):
            yield found


def _read_profile(path: Path) -> list[dict[str, Any]]:
    """The rows of one profile.csv, with run id, device id, run key and folder filled in."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            table = list(csv.reader(fh, strict=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: unreadable CSV ({_first_line(exc)}); profile skipped") from exc
    if not table or "backend" not in table[0] or "model" not in table[0]:
        raise ValueError(f"{path}: not a profile file (no model/backend header); skipped")
    header, body = table[0], table[1:]
    for number, values in enumerate(body, start=2):
        if len(values) != len(header):
            raise ValueError(
                f"{path}: line {number} has {len(values)} fields, the header has "
                f"{len(header)} (truncated or corrupt); profile skipped"
            )
    folder = path.parent
    out = []
    for values in body:
        row = {k: (v if v != "" else None) for k, v in zip(header, values, strict=True)}
        row["run_id"] = row.get("run_id") or folder.name
        row["device_id"] = row.get("device_id") or folder.parent.name
        row["run_key"] = f"{row['device_id']}/{row['run_id']}"
        row["run_dir"] = str(folder)
        out.append(row)
    return out


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The known columns first (missing ones added), numbers as floats, text as text or None."""
    for column in FRAME_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    extra = [c for c in frame.columns if c not in FRAME_COLUMNS]
    frame = frame[[*FRAME_COLUMNS, *extra]].copy()
    for column in FRAME_COLUMNS:
        if column in TEXT_COLUMNS:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame.reset_index(drop=True)


# --- derived tables --------------------------------------------------------------------


def _prepared(profile: pd.DataFrame) -> pd.DataFrame:
    """The rows with every profile column, a run key (device/run when absent), a conv kind
    (from the model name when absent) and a precision (fp32 when absent)."""
    frame = profile.copy()
    for column in PROFILE_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    if "run_key" not in frame.columns:
        frame["run_key"] = frame["device_id"].astype(str) + "/" + frame["run_id"].astype(str)
    frame["conv"] = frame["conv"].fillna(frame["model"].map(_CONV_OF_MODEL))
    frame["precision"] = frame["precision"].fillna(FP32)
    frame["device_name"] = frame["device_name"].fillna(frame["device_id"])
    return frame


def _has_layer(profile: pd.DataFrame) -> pd.Series:
    return profile["layer"].notna() & (profile["layer"].astype(str) != "")


def profiled(profile: pd.DataFrame) -> pd.DataFrame:
    """The layer rows (spec layers and unattributed) of the cells that were profiled."""
    frame = _prepared(profile)
    return frame[_has_layer(frame)].reset_index(drop=True)


def not_profiled(profile: pd.DataFrame) -> pd.DataFrame:
    """One row per cell that has no profile (skipped or failed), with its status and reason."""
    frame = _prepared(profile)
    rows = frame[~_has_layer(frame)].drop_duplicates(_CELL)
    order = ["device_name", "backend", "mode"]
    return sorted_by_precision(rows, order, ("batch", "threads", "model"))


def cell_roles(profile: pd.DataFrame) -> pd.DataFrame:
    """One row per profiled cell and role: its ms (sum of its layers' p50), MACs, and
    ``time_share``/``mac_share`` of the cell's total (each sums to 1 per cell), plus the
    cell's identity and profiler overhead columns."""
    rows = profiled(profile)
    if rows.empty:
        columns = [*_CELL, "role", "ms", "macs", "time_share", "mac_share"]
        return pd.DataFrame(columns=columns)
    roles = (
        rows.groupby([*_CELL, "role"], sort=False)
        .agg(ms=("ms_p50", "sum"), macs=("macs", "sum"))
        .reset_index()
    )
    totals = roles.groupby(_CELL)[["ms", "macs"]].transform("sum")
    roles["time_share"] = roles["ms"] / totals["ms"]
    roles["mac_share"] = roles["macs"] / totals["macs"]
    identity = [c for c in (*IDENTITY_COLUMNS, *SETTING) if c not in (*_CELL, "role")]
    overhead = ["profiled_ms", "unprofiled_p50_ms", "overhead_ratio", "iterations", "source"]
    per_cell = rows.groupby(_CELL, sort=False)[[*dict.fromkeys(identity), *overhead]].first()
    return _role_sorted(roles.join(per_cell, on=_CELL))


def _role_sorted(frame: pd.DataFrame, before: Sequence[str] = ()) -> pd.DataFrame:
    """Rows in setting order, the depthwise network before its twin, roles in ROLE_ORDER."""
    rank = {role: i for i, role in enumerate(ROLE_ORDER)}
    ranked = frame.assign(
        _role=frame["role"].map(rank).fillna(len(rank)),
        _conv=frame["conv"].map({"depthwise": 0, "standard": 1}).fillna(2)
        if "conv" in frame.columns
        else 0,
    )
    order = ["device_name", "backend", "mode"]
    after = ("batch", "threads", "run_key", *before, "_conv", "_role")
    return sorted_by_precision(ranked, order, after).drop(columns=["_role", "_conv"])


def role_shares(profile: pd.DataFrame) -> pd.DataFrame:
    """Time and MAC share per role, the depthwise network beside its standard twin.

    One row per setting (:data:`SETTING`: run, device, width, resolution, backend,
    mode, precision, batch, threads) and role. Per side (``dw_`` for mobilenet_v2,
    ``std_`` for standard_conv): ``ms``, ``time_share``, ``mac_share`` (fractions of
    the cell's total; NaN where the network has no such role or was not profiled)
    and the cell's ``cell_id``, ``model``, ``profiled_ms``, ``unprofiled_p50_ms`` and
    ``overhead_ratio`` (profiled time per call ÷ unprofiled p50).
    """
    roles = cell_roles(profile)
    values = ["ms", "time_share", "mac_share", *_CELL_VALUES]
    keep = [*SETTING, "device_name", "run_id", "role"]
    columns = [*keep, *(f"{side}_{v}" for side in _SIDES.values() for v in values)]
    if roles.empty:
        return pd.DataFrame(columns=columns)
    sides = []
    for conv, side in _SIDES.items():
        mine = roles.loc[roles["conv"] == conv, [*keep, *values]]
        sides.append(mine.rename(columns={v: f"{side}_{v}" for v in values}))
    key = [*SETTING, "role"]
    pairs = sides[0].merge(sides[1], on=key, how="outer", suffixes=("", "_twin"))
    for column in ("device_name", "run_id"):
        pairs[column] = pairs[column].fillna(pairs.pop(f"{column}_twin"))
    pairs["conv"] = None
    return _role_sorted(pairs).drop(columns="conv")[columns]


def role_rates(profile: pd.DataFrame, peaks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per profiled cell and role with MACs: the achieved rate and its share of the peak.

    ``gmacs_per_s`` is the role's MACs over the time its layers' rates imply (the
    MAC-weighted harmonic mean of the layer rates; layers without a rate are left
    out); ``peak_gmacs`` is the cell's GEMM peak (from its rows' ``peak_pct``, else
    from ``peaks``, the peaks frame of ``load_frames``, by device, precision and
    threads); ``peak_pct`` = rate ÷ peak × 100 (NaN without a peak). Zero-MAC and
    unattributed roles are left out.
    """
    rows = profiled(profile)
    timed = (rows["macs"] > 0) & (rows["gmacs_per_s"] > 0)
    rows = rows[timed & (rows["role"] != UNATTRIBUTED_ROLE)]
    roles = cell_roles(profile)
    columns = [*roles.columns, "rate_macs", "gmacs_per_s", "peak_gmacs", "peak_pct"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    work = rows.assign(work=rows["macs"] / rows["gmacs_per_s"])
    rate = work.groupby([*_CELL, "role"]).agg(rate_macs=("macs", "sum"), work=("work", "sum"))
    rate["gmacs_per_s"] = rate["rate_macs"] / rate["work"]
    out = roles.join(rate[["rate_macs", "gmacs_per_s"]], on=[*_CELL, "role"], how="inner")
    out = out.join(cell_peaks(profile, peaks), on=_CELL)
    out["peak_pct"] = 100.0 * out["gmacs_per_s"] / out["peak_gmacs"]
    return out[columns].reset_index(drop=True)


def cell_peaks(profile: pd.DataFrame, peaks: pd.DataFrame | None = None) -> pd.Series:
    """The GEMM peak (GMAC/s) of each profiled cell, indexed by run key and cell id.

    From the rows themselves (``gmacs_per_s × 100 ÷ peak_pct``, the median over the
    cell's layers); for a cell without ``peak_pct``, the latest measured peak of the
    same device, precision and thread count in ``peaks``; else NaN.
    """
    rows = profiled(profile)
    ok = (rows["gmacs_per_s"] > 0) & (rows["peak_pct"] > 0)
    implied = (rows["gmacs_per_s"] * 100.0 / rows["peak_pct"]).where(ok)
    per_cell = rows.assign(peak_gmacs=implied).groupby(_CELL)
    found = per_cell["peak_gmacs"].median()
    if peaks is None or peaks.empty:
        return found
    key = ["device_id", "precision", "threads"]
    measured = peaks.dropna(subset=["gmacs_per_s"]).sort_values("run_key")
    latest = measured.drop_duplicates(key, keep="last").astype({"threads": float})
    setting = per_cell[key].first().astype({"threads": float})
    known = setting.reset_index().merge(latest[[*key, "gmacs_per_s"]], on=key, how="left")
    return found.fillna(known.set_index(_CELL)["gmacs_per_s"])


# --- findings --------------------------------------------------------------------------


#: Roles below this share of a cell's time are not named furthest from the peak.
MIN_TIME_SHARE = 0.05


def furthest_from_peak(profile: pd.DataFrame, peaks: pd.DataFrame | None = None) -> list[str]:
    """One sentence per profiled cell naming the role furthest from the GEMM peak.

    E.g. ``onnxruntime, mobilenet_v2, 1 thread: depthwise 3x3 layers run at 35% of
    the fp32 peak (19.1 of 55 GMAC/s) and take 15% of the time for 6.9% of the MACs.``
    Within a cell every role shares one peak, so the furthest role is the one with the
    lowest rate, among the roles that take at least :data:`MIN_TIME_SHARE` of the
    cell's time (a role that takes less cannot explain where the time goes: at batch 1
    the classifier is a matrix-vector product far from any GEMM peak, in 1-4 % of the
    time); without a peak the sentence gives the rate alone. The device, mode,
    precision, batch and run are named only when the profiles hold several.
    """
    rates = role_rates(profile, peaks)
    rates = rates[rates["time_share"] >= MIN_TIME_SHARE]
    if rates.empty:
        return []
    slowest = rates.loc[rates.groupby(_CELL, sort=False)["gmacs_per_s"].idxmin()]
    slowest = _role_sorted(slowest)
    labels = _cell_labels(slowest, profiled(profile))
    return [
        _sentence(row, label)
        for row, label in zip(slowest.to_dict(orient="records"), labels, strict=True)
    ]


def _cell_labels(cells: pd.DataFrame, every: pd.DataFrame) -> list[str]:
    """``backend[/mode], model[, device][, precision][, batch n], n thread(s)[, run r]``."""
    varying = {c: every[c].nunique() > 1 for c in ("device_id", "precision", "batch", "run_id")}
    modes = every.groupby("backend")["mode"].nunique()
    labels = []
    for row in cells.to_dict(orient="records"):
        backend = row["backend"]
        if modes.get(backend, 1) > 1:
            backend += f"/{row['mode']}"
        parts = [backend, row["model"]]
        if varying["device_id"]:
            parts.append(row["device_name"])
        if varying["precision"]:
            parts.append(row["precision"])
        if varying["batch"]:
            parts.append(f"batch {_whole(row['batch'])}")
        parts.append(_threads(row["threads"]))
        if varying["run_id"]:
            parts.append(f"run {row['run_id']}")
        labels.append(", ".join(map(str, parts)))
    return labels


def _sentence(row: dict[str, Any], label: str) -> str:
    share = (
        f"take {percent(row['time_share'])} of the time for {percent(row['mac_share'])} of the MACs"
    )
    rate = row["gmacs_per_s"]
    if pd.isna(row["peak_gmacs"]):
        return (
            f"{label}: {row['role']} layers are the slowest at {rate:.1f} GMAC/s "
            f"(no {row['precision']} GEMM peak at {_threads(row['threads'])} to compare "
            f"with) and {share}."
        )
    return (
        f"{label}: {row['role']} layers run at {percent(row['peak_pct'] / 100)} of the "
        f"{row['precision']} peak ({rate:.1f} of {row['peak_gmacs']:.0f} GMAC/s) and {share}."
    )


def percent(fraction: float) -> str:
    """A fraction as a percentage, two significant digits below 10: ``38%``, ``6.9%``,
    ``0.023%``."""
    value = 100.0 * fraction
    return f"{value:.0f}%" if abs(value) >= 10 else f"{value:.2g}%"


def _whole(value: Any) -> str:
    return f"{float(value):g}"


def _threads(value: Any) -> str:
    return f"{_whole(value)} thread{'' if float(value) == 1 else 's'}"


# --- plots -----------------------------------------------------------------------------


def _bar_label(row: dict[str, Any], devices: bool) -> str:
    device = f"{row['device_name']} · " if devices else ""
    return (
        f"{device}{row['backend']}/{row['mode']} · {row['precision']} · "
        f"b{_whole(row['batch'])} t{_whole(row['threads'])} · {row['model']}"
    )


def share_bars(profile: pd.DataFrame) -> str | None:
    """Stacked horizontal bars: each profiled cell's time share per role, the depthwise
    network and its twin adjacent, shares of 8% and more written on the bar."""
    roles = cell_roles(profile)
    if roles.empty:
        return None
    wide = roles.pivot_table(index=_CELL, columns="role", values="time_share", aggfunc="sum")
    cells = _role_sorted(roles.drop_duplicates(_CELL).assign(role=None))
    devices = cells["device_id"].nunique() > 1
    labels = [_bar_label(row, devices) for row in cells.to_dict(orient="records")]
    shares = wide.reindex(pd.MultiIndex.from_frame(cells[_CELL])).fillna(0.0) * 100.0
    shown = [r for r in ROLE_ORDER if r in shares.columns]
    y = np.arange(len(cells))[::-1]
    fig, ax = plots._figure(plots._legend_height(1.2 + 0.32 * len(cells), len(shown)))
    with mpl.rc_context(plots._RC):
        left = np.zeros(len(cells))
        for role in shown:
            width = shares[role].to_numpy()
            ax.barh(y, width, 0.7, left=left, color=_ROLE_COLORS[role], label=role)
            for yi, x0, w in zip(y, left, width, strict=True):
                if w >= 8:
                    ax.text(x0 + w / 2, yi, f"{w:.0f}%", ha="center", va="center", fontsize=7)
            left += width
        ax.set_yticks(y, [plots._text(label) for label in labels], fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_title("Share of profiled time per layer role")
        ax.set_xlabel("share of the cell's profiled layer time (%)")
        ax.set_ylabel("device · backend/mode · precision · batch, threads · model")
        plots._legend(ax, "layer role")
    return plots.to_svg(fig)


def layer_rates(
    profile: pd.DataFrame, peaks: pd.DataFrame | None = None, device_id: str | None = None
) -> str | None:
    """Achieved GMAC/s per layer (log y) against its MACs (log x), colour = role, marker =
    network; one panel per backend setting of one device (the first when ``device_id`` is
    None), the setting's GEMM peak drawn as a dashed line (SVG id ``roofline-<n>``)."""
    rows = profiled(profile)
    rows = rows[(rows["macs"] > 0) & (rows["gmacs_per_s"] > 0)]
    if device_id is not None:
        rows = rows[rows["device_id"] == device_id]
    elif len(rows):
        rows = rows[rows["device_id"] == rows["device_id"].iloc[0]]
    if rows.empty:
        return None
    rows = rows.join(cell_peaks(profile, peaks).rename("peak_gmacs"), on=_CELL)
    panel_key = ["backend", "mode", "precision", "batch", "threads", "run_key"]
    rows["_panel"] = rows.groupby(panel_key, dropna=False, sort=False).ngroup()
    panels = _role_sorted(rows.drop_duplicates("_panel").assign(role=None, conv=None))
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    with mpl.rc_context(plots._RC):
        fig = Figure(figsize=(plots._WIDTH_IN, 0.9 + 2.9 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
        for i, (ax, panel) in enumerate(zip(axes, panels.to_dict(orient="records"), strict=False)):
            _rate_panel(ax, rows[rows["_panel"] == panel["_panel"]], i)
            ax.set_title(
                plots._text(
                    f"{panel['backend']}/{panel['mode']} · {panel['precision']} · "
                    f"b{_whole(panel['batch'])} t{_whole(panel['threads'])}"
                ),
                fontsize=9,
            )
        top = max(rows["gmacs_per_s"].max(), rows["peak_gmacs"].fillna(0).max())
        axes[0].set_ylim(rows["gmacs_per_s"].min() / 2, top * 2)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        for ax in axes[max(len(panels) - ncols, 0) : len(panels)]:  # the lowest of each column
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("layer MACs (log scale)")
        for ax in axes[::ncols]:
            ax.set_ylabel("achieved rate (GMAC/s, log scale)")
        name = rows["device_name"].iloc[0]
        fig.suptitle(plots._text(f"Per-layer rate vs work — {name}"), fontweight="bold")
        fig.legend(
            handles=_rate_handles(rows),
            title="colour = layer role, marker = network",
            loc="outside lower center",
            ncols=4,
            fontsize=8,
        )
    return plots.to_svg(fig)


def _rate_panel(ax: Axes, rows: pd.DataFrame, index: int) -> None:
    """One setting's layers as points and its GEMM peak as the roofline."""
    for (role, conv), group in rows.groupby(["role", "conv"]):
        ax.scatter(
            group["macs"],
            group["gmacs_per_s"],
            color=_ROLE_COLORS.get(role, "0.3"),
            marker=_CONV_MARKERS.get(conv, "x"),
            s=22,
            alpha=0.85,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _si(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    plots._log_axis(ax.yaxis)
    peak = rows["peak_gmacs"].dropna()
    if len(peak):
        line = ax.axhline(peak.iloc[0], ls="--", lw=1, color="0.2")
        line.set_gid(f"roofline-{index}")
        ax.annotate(
            f"GEMM peak {peak.iloc[0]:.0f} GMAC/s",
            (0.02, peak.iloc[0]),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=7,
        )
    else:
        ax.annotate("no GEMM peak", (0.02, 0.92), xycoords="axes fraction", fontsize=7)


def _si(value: float) -> str:
    """A MAC count tick: ``100k``, ``1M``, ``10G``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _rate_handles(rows: pd.DataFrame) -> list[Any]:
    roles = [r for r in ROLE_ORDER if r in set(rows["role"])]
    convs = [c for c in _CONV_MARKERS if c in set(rows["conv"])]
    names = {"depthwise": DEPTHWISE_MODEL, "standard": STANDARD_MODEL}
    return [
        *(Patch(color=_ROLE_COLORS[r], label=plots._text(r)) for r in roles),
        *(
            Line2D([], [], ls="", marker=_CONV_MARKERS[c], color="0.4", label=names[c])
            for c in convs
        ),
        Line2D([], [], ls="--", lw=1, color="0.2", label="GEMM peak (roofline)"),
    ]


# --- the section -----------------------------------------------------------------------

#: (id, title) the report gives this section.
SECTION = ("profile", "Where the time goes")
_SETTING_COLUMNS: tuple[Column, ...] = (
    ("device_name", "device", fmt_str),
    ("backend_mode", "backend/mode", fmt_str),
    ("precision", "precision", fmt_str),
    ("batch", "batch", fmt_int),
    ("threads", "threads", fmt_int),
    ("width", "width", formatter("{:g}")),
    ("resolution", "res", fmt_int),
    ("model", "model", fmt_str),
)
_OVERHEAD_COLUMNS: tuple[Column, ...] = (
    ("layer_ms", "layers (ms)", fmt_ms),
    ("profiled_ms", "profiled call (ms)", fmt_ms),
    ("unprofiled_p50_ms", "unprofiled p50 (ms)", fmt_ms),
    ("overhead_ratio", "overhead", fmt_ratio),
    ("run_id", "run", fmt_str),
)
_NOT_PROFILED_COLUMNS: tuple[Column, ...] = (
    *_SETTING_COLUMNS,
    ("status", "status", fmt_str),
    ("reason", "reason", fmt_str),
    ("run_id", "run", fmt_str),
)
FigureWrap = Callable[[str | None, str], str]


def share_table(profile: pd.DataFrame) -> pd.DataFrame:
    """One row per profiled cell (twins adjacent): time share per role in % (a column per
    role), the summed layer ms and the profiler overhead."""
    roles = cell_roles(profile)
    if roles.empty:
        return roles
    wide = roles.pivot_table(index=_CELL, columns="role", values="time_share", aggfunc="sum")
    cells = _role_sorted(roles.drop_duplicates(_CELL).assign(role=None))
    layer_ms = roles.groupby(_CELL)["ms"].sum().rename("layer_ms")
    table = cells.join(wide * 100.0, on=_CELL).join(layer_ms, on=_CELL)
    return table.assign(backend_mode=table["backend"] + "/" + table["mode"].fillna("?"))


def mac_table(profile: pd.DataFrame) -> pd.DataFrame:
    """Share of the MACs per role in %, one row per network, width and resolution."""
    roles = cell_roles(profile)
    if roles.empty:
        return roles
    first = roles.drop_duplicates(["model", "width", "resolution", "role"])
    wide = first.pivot_table(
        index=["model", "width", "resolution"], columns="role", values="mac_share"
    )
    return (wide * 100.0).reset_index().sort_values(["width", "resolution", "model"])


def section_html(
    profile: pd.DataFrame,
    peaks: pd.DataFrame | None = None,
    figure: FigureWrap | None = None,
) -> str:
    """The section's body: lead, one finding per cell, the share tables, the plots and
    the cells without a profile. ``peaks`` (the peaks frame) fills peaks the rows lack;
    ``figure(svg, caption)`` wraps each plot (the page's own, so ids stay unique)."""
    if profile.empty:
        return (
            '<p class="note">No profiles in these runs; run <code>mobilebench profile</code> '
            "to see which layers take the time.</p>"
        )
    figure = figure or _Figures()
    rows = profiled(profile)
    missing = not_profiled(profile)
    parts = [_lead(rows, missing)]
    if rows.empty:
        parts.append(note("No cell was profiled (all skipped or failed)."))
    else:
        parts += _findings(profile, peaks, figure)
    parts.append(_not_profiled_html(missing))
    return "\n".join(parts)


def _lead(rows: pd.DataFrame, missing: pd.DataFrame) -> str:
    cells = rows.drop_duplicates(_CELL)
    return (
        f"<p>Each runtime's own profiler, its events mapped back to the spec's layers: "
        f"{len(cells)} cell(s) profiled on {cells['device_id'].nunique()} device(s), "
        f"{len(missing)} not. A role's share is the sum of its layers' p50 times over the "
        "cell's total; <em>unattributed</em> is time in events no spec layer owns (copies, "
        "casts, layout changes). Profilers slow a call down: <em>overhead</em> is the time "
        "per call with the profiler on ÷ the unprofiled p50.</p>"
    )


def _findings(profile: pd.DataFrame, peaks: pd.DataFrame | None, figure: FigureWrap) -> list[str]:
    items = "".join(f"<li>{esc(s)}</li>" for s in furthest_from_peak(profile, peaks))
    parts = [
        "<h3>Furthest from the GEMM peak</h3>",
        f"<p>Per cell, the role with the lowest achieved rate among those taking at least "
        f"{MIN_TIME_SHARE:.0%} of the time.</p>",
    ]
    parts.append(f'<ul class="findings">{items}</ul>' if items else note("No layer has a rate."))
    shares = share_table(profile)
    role_columns = [(r, r, fmt_pct) for r in ROLE_ORDER if r in shares.columns]
    parts += [
        "<h3>Share of time per layer role</h3>",
        "<p>Per cell, the share of its profiled layer time each role takes (%); "
        "mobilenet_v2 and its standard-convolution twin are adjacent. The MAC shares "
        "follow.</p>",
        render_table(
            shares,
            [*_shown(shares, _SETTING_COLUMNS), *role_columns, *_OVERHEAD_COLUMNS],
            table_id="profile-share-table",
        ),
    ]
    macs = mac_table(profile)
    parts.append(
        render_table(
            macs,
            [
                *_shown(macs, _SETTING_COLUMNS),
                *((r, r, fmt_pct) for r in ROLE_ORDER if r in macs.columns),
            ],
            table_id="profile-mac-table",
        )
    )
    parts.append(figure(share_bars(profile), "Share of profiled time per layer role"))
    for device_id in profiled(profile)["device_id"].drop_duplicates():
        caption = f"Achieved GMAC/s per layer against its MACs, with the GEMM peak ({device_id})"
        parts.append(figure(layer_rates(profile, peaks, device_id), caption))
    return parts


def _shown(frame: pd.DataFrame, columns: Sequence[Column]) -> list[Column]:
    """The setting columns worth a column: width and resolution only when they vary."""
    return [
        c
        for c in columns
        if c[0] in frame.columns
        and (c[0] not in ("width", "resolution") or frame[c[0]].nunique() > 1)
    ]


def _not_profiled_html(missing: pd.DataFrame) -> str:
    head = "<h3>Cells not profiled</h3>"
    if missing.empty:
        return head + "<p>Every planned cell was profiled.</p>"
    missing = missing.assign(backend_mode=missing["backend"] + "/" + missing["mode"].fillna("?"))
    columns = _shown(missing, _NOT_PROFILED_COLUMNS)
    return head + render_table(missing, columns, table_id="profile-skipped-table")


class _Figures:
    """A plot in a figure with a caption, its SVG ids prefixed so they stay unique."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, svg: str | None, caption: str) -> str:
        if svg is None:
            return ""
        self.count += 1
        prefix = f"profile{self.count}-"
        svg = re.sub(r'\bid="', f'id="{prefix}', svg)
        svg = re.sub(r'href="#', f'href="#{prefix}', svg)
        svg = svg.replace("url(#", f"url(#{prefix}")
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(caption)}" ', 1)
        return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"
