"""Report plots as inline SVG text: matplotlib's object API (no pyplot, no global state).

Each function takes a frame from :mod:`harness.report.tables` and returns an
``<svg>...</svg>`` string, or None when there is nothing to draw. Glyphs are
drawn as paths, so the page needs no font; ids are salted so output is stable.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness.formats import precision_rank
from harness.report.tables import peak_label

_RC = {
    "svg.hashsalt": "mobilebench",
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
_COLORS = tuple(mpl.colormaps["tab10"].colors)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_WIDTH_IN = 9.0


def palette(names: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """A stable colour per name (sorted), shared by every plot of a report."""
    return {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(sorted(set(names)))}


def _markers(names: Iterable[str]) -> dict[str, str]:
    return {n: _MARKERS[i % len(_MARKERS)] for i, n in enumerate(sorted(set(names)))}


def _precision_markers(names: Iterable[str]) -> dict[str, str]:
    """A marker per precision, the same in every plot: fp32 o, fp16 s, bf16 ^, int8 D."""
    found = sorted(set(map(str, names)), key=precision_rank)
    return {n: _MARKERS[precision_rank(n)[0] % len(_MARKERS)] for n in found}


def _text(value: object) -> str:
    """Data text for matplotlib: ``$`` would otherwise start mathtext."""
    return str(value).replace("$", r"\$")


def to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element without XML prolog or metadata."""
    buffer = io.StringIO()
    with mpl.rc_context(_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata=_METADATA)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(height_in: float) -> tuple[Figure, Axes]:
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(_WIDTH_IN, height_in), layout="constrained")
        return fig, fig.add_subplot()


def _legend(ax: Axes, title: str) -> None:
    """The legend under the axes, so long labels never squeeze the plot."""
    labels = ax.get_legend_handles_labels()[1]
    ncols = 2 if max(map(len, labels), default=0) > 45 else 3
    with mpl.rc_context(_RC):
        ax.figure.legend(
            title=title,
            loc="outside lower center",
            ncols=min(ncols, max(len(labels), 1)),
            fontsize=8,
        )


def _legend_height(plot_in: float, entries: int) -> float:
    """Figure height: the plot's own plus room for a legend of ``entries`` lines in 2-3 columns."""
    return plot_in + 0.2 * -(-entries // 2)


def _log_axis(axis: Axis) -> None:
    """Log scale with plain tick labels at 1-2-5 steps (6 ms, not 6x10^0)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def latency_boxes(samples: pd.DataFrame, device_name: str, colors: dict) -> str | None:
    """Box plot of raw latency samples, one box per cell of one device (log x)."""
    if samples.empty:
        return None
    order = (
        samples.groupby("label")
        .agg(model=("model", "first"), backend=("backend", "first"), p50=("ms", "median"))
        .sort_values(["model", "p50"], ascending=[False, False])
    )
    data = [samples.loc[samples["label"] == label, "ms"].to_numpy() for label in order.index]
    fig, ax = _figure(max(2.2, 1.0 + 0.34 * len(order)))
    with mpl.rc_context(_RC):
        boxes = ax.boxplot(
            data,
            orientation="horizontal",
            tick_labels=[_text(label) for label in order.index],
            patch_artist=True,
            widths=0.6,
            whis=(5, 95),
            flierprops={"marker": ".", "markersize": 3, "alpha": 0.5},
            medianprops={"color": "black"},
        )
        for patch, backend in zip(boxes["boxes"], order["backend"], strict=True):
            patch.set_facecolor(colors.get(backend, "lightgrey"))
            patch.set_alpha(0.75)
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
        ax.set_title(_text(f"Latency spread per cell — {device_name}"))
        ax.set_xlabel("latency per call (ms, log scale); box = IQR, whiskers = p5-p95")
        ax.set_ylabel("cell")
    return to_svg(fig)


def depthwise_bars(table: pd.DataFrame, colors: dict, precision: bool = False) -> str | None:
    """MAC ratio beside wall-time ratio (standard_conv / mobilenet_v2) per device and backend
    (and precision, named in the labels with ``precision``)."""
    if table.empty:
        return None
    labels = [
        _text(
            f"{r.device_name or r.device_id} · {r.backend}/{r.mode} · "
            + (f"{r.precision} · " if precision else "")
            + f"b{r.batch:g} t{r.threads:g} · {r.run_key.rpartition('/')[2]}"
        )
        for r in table.itertuples()
    ]
    y = np.arange(len(table))[::-1]
    fig, ax = _figure(1.4 + 0.45 * len(table))
    with mpl.rc_context(_RC):
        ax.barh(y + 0.2, table["mac_ratio"], 0.38, color="0.75", label="MAC ratio")
        bars = ax.barh(
            y - 0.2,
            table["latency_ratio"],
            0.38,
            color=[colors.get(b, "C0") for b in table["backend"]],
            label="p50 latency ratio (colour = backend)",
        )
        for bar, ratio, pct in zip(
            bars, table["latency_ratio"], table["realised_pct"], strict=True
        ):
            ax.annotate(
                f" {ratio:.1f}× ({pct:.0f}% of the MAC ratio)",
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                va="center",
                fontsize=7,
            )
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_title("standard_conv ÷ mobilenet_v2: MACs vs wall time")
        ax.set_xlabel("standard_conv ÷ mobilenet_v2 (×, higher = depthwise saves more)")
        ax.set_ylabel(
            "device · backend/mode · "
            + ("precision · " if precision else "")
            + "batch, threads · run"
        )
        _legend(ax, "ratio")
    return to_svg(fig)


def latency_vs_macs(
    cells: pd.DataFrame, roofs: pd.DataFrame, colors: dict, precision: bool = False
) -> str | None:
    """p50 latency against MACs per call (log-log), one GEMM-peak line per device, precision
    and threads.

    ``roofs`` is :func:`harness.report.tables.roofs`: device, precision, threads,
    rate and library. With ``precision`` the points of each precision get their
    own marker and legend entry.
    """
    data = cells.dropna(subset=["latency_ms_p50", "macs"])
    if data.empty:
        return None
    gmac = data["macs"] * data["batch"].fillna(1) / 1e9
    device = data["device_name"].fillna(data["device_id"])
    kind = device + " · " + data["precision"].astype(str) if precision else device
    markers = _markers(kind)
    entries = len(data.groupby([data["backend"], kind])) + len(roofs)
    fig, ax = _figure(_legend_height(3.4, entries))
    with mpl.rc_context(_RC):
        for (backend, name), group in data.groupby([data["backend"], kind]):
            ax.scatter(
                gmac[group.index],
                group["latency_ms_p50"],
                color=colors.get(backend, "C0"),
                marker=markers[name],
                s=36,
                label=_text(f"{backend} · {name}"),
            )
        span = np.geomspace(gmac.min() / 1.5, gmac.max() * 1.5, 20)
        for i, roof in enumerate(roofs.to_dict(orient="records")):
            ax.plot(
                span,
                span / roof["gmacs_per_s"] * 1e3,
                ls="--",
                lw=1,
                color=f"{0.15 + 0.6 * i / max(len(roofs) - 1, 1):.2f}",
                label=_text(
                    f"GEMM peak {roof['gmacs_per_s']:.0f} GMAC/s · {roof['device_name']} · "
                    + peak_label(roof, precision)
                ),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axis(ax.xaxis)
        _log_axis(ax.yaxis)
        ax.set_title("Latency vs work per call")
        ax.set_xlabel("MACs per call (GMAC = MACs per image × batch / 1e9, log scale)")
        ax.set_ylabel("p50 latency (ms, log scale)")
        _legend(ax, "backend · device · precision" if precision else "backend · device")
    return to_svg(fig)


def memory_vs_latency(cells: pd.DataFrame, colors: dict, precision: bool = False) -> str | None:
    """Peak resident memory against p50 latency, colour = backend, marker = model
    (model and precision with ``precision``)."""
    data = cells.dropna(subset=["latency_ms_p50", "peak_rss_mb"])
    if data.empty:
        return None
    kind = data["model"] + " · " + data["precision"].astype(str) if precision else data["model"]
    markers = _markers(kind)
    fig, ax = _figure(_legend_height(3.0, len(data.groupby([data["backend"], kind]))))
    with mpl.rc_context(_RC):
        for (backend, name), group in data.groupby([data["backend"], kind]):
            ax.scatter(
                group["latency_ms_p50"],
                group["peak_rss_mb"],
                color=colors.get(backend, "C0"),
                marker=markers[name],
                s=36,
                label=_text(f"{backend} · {name}"),
            )
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
        ax.set_title("Peak memory vs latency")
        ax.set_xlabel("p50 latency (ms, log scale)")
        ax.set_ylabel("peak resident memory (MB)")
        _legend(ax, "backend · model · precision" if precision else "backend · model")
    return to_svg(fig)


def repeat_lines(long: pd.DataFrame) -> str | None:
    """Per-repeat p50 relative to repeat 0, one line per repeated cell: drift made visible."""
    if long.empty:
        return None
    fig, ax = _figure(3.8)
    with mpl.rc_context(_RC):
        for i, ((run_key, label), group) in enumerate(long.groupby(["run_key", "label"])):
            group = group.sort_values("repeat")
            rel = 100.0 * (group["p50_ms"] / group["p50_ms"].iloc[0] - 1.0)
            ax.plot(
                group["repeat"],
                rel,
                marker=_MARKERS[i % len(_MARKERS)],
                color=_COLORS[i % len(_COLORS)],
                label=_text(f"{label} · {run_key}"),
            )
        ax.axhline(0.0, color="0.4", lw=0.8)
        ax.set_xticks(sorted(long["repeat"].unique()))
        ax.set_title("Drift across repeats")
        ax.set_xlabel("repeat (index, in run order)")
        ax.set_ylabel("p50 change vs repeat 0 (%)")
        _legend(ax, "cell · run")
    return to_svg(fig)


def pareto(points: pd.DataFrame, device_name: str, colors: dict) -> str | None:
    """p50 latency (log x) against top-1 agreement, one panel per model of one device.

    ``points`` is :func:`harness.report.tables.pareto_points` for the device:
    colour = backend, marker = precision; the Pareto-optimal points (nothing is
    both faster and more accurate) are ringed, named and joined by a line.
    """
    if points.empty:
        return None
    models = sorted(points["model"].unique())
    markers = _precision_markers(points["precision"])
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(_WIDTH_IN, 4.0), layout="constrained")
        axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
        for ax, model in zip(axes, models, strict=True):
            _pareto_panel(ax, points[points["model"] == model], markers, colors)
            ax.set_title(_text(model))
            ax.set_xlabel("p50 latency (ms, log scale)")
        axes[0].set_ylabel("top-1 agreement with PyTorch fp32 (share of images)")
        fig.suptitle(_text(f"Latency vs top-1 agreement — {device_name}"), fontweight="bold")
        handles = [
            *(
                Line2D([], [], ls="", marker="o", color=colors.get(b, "C0"), label=_text(b))
                for b in sorted(points["backend"].unique())
            ),
            *(
                Line2D([], [], ls="", marker=m, color="0.45", label=_text(p))
                for p, m in markers.items()
            ),
            Line2D([], [], color="0.2", marker="o", mfc="none", label="Pareto front"),
        ]
        fig.legend(
            handles=handles,
            title="colour = backend, marker = precision",
            loc="outside lower center",
            ncols=min(len(handles), 8),
            fontsize=8,
        )
    return to_svg(fig)


def _pareto_panel(ax: Axes, points: pd.DataFrame, markers: dict, colors: dict) -> None:
    """One model's points; the front's named and joined from fastest to most accurate."""
    for row in points.itertuples():
        ax.scatter(
            row.latency_ms_p50,
            row.top1_agree,
            color=colors.get(row.backend, "C0"),
            marker=markers[str(row.precision)],
            s=64 if row.pareto else 36,
            edgecolors="black" if row.pareto else "none",
            linewidths=1.2,
            zorder=3,
        )
    front = points[points["pareto"]].sort_values("latency_ms_p50")
    for row in front.itertuples():
        ax.annotate(
            _text(f"{row.backend} {row.precision}"),
            (row.latency_ms_p50, row.top1_agree),
            xytext=(5, -10),
            textcoords="offset points",
            fontsize=7,
        )
    ax.plot(front["latency_ms_p50"], front["top1_agree"], color="0.2", lw=1, zorder=2)
    ax.set_xscale("log")
    _log_axis(ax.xaxis)
    span = points["latency_ms_p50"]
    ax.set_xlim(span.min() / 1.3, span.max() * 1.6)
    ax.set_ylim(min(-0.02, points["top1_agree"].min() - 0.05), 1.05)
