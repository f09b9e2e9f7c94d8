"""Compare two runs cell by cell: the regression gate behind ``mobilebench compare``.

Cells match on CELL_KEY (precision included: an int8 cell is only ever compared
with the int8 cell of the other run) with all repeats pooled. Latency changes
are judged on the ratio of medians new/base with a 95% bootstrap interval from
the raw samples: ``regressed`` only when the whole interval lies above
1 + threshold, ``improved`` only when it lies wholly below 1 - threshold. The
accuracy of both runs (top1_agree, rel_l2_err) is shown beside the latency
change; changed MACs, params, accuracy (top1_agree dropping by more than
:data:`TOP1_DROP`, rel_l2_err crossing its precision's tolerance) and peak memory
(beyond the threshold) are flagged beside the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from harness.formats import FP32
from harness.measure.stats import ratio_ci
from harness.parity import TOLERANCES
from harness.report.load import key_tuple, load_runs
from harness.results import as_number

N_BOOT = 2000
#: Verdicts that make :func:`exit_code` return 1.
FAILING = ("regressed", "broken")
_ORDER = ("regressed", "broken", "improved", "fixed", "unchanged", "no samples", "not measured")
#: Row columns naming what produced a cell's numbers: a change is flagged (accuracy
#: on other weights or images is not comparable).
ORIGIN_COLUMNS = ("weights", "inputs")
#: A fall of top1_agree larger than this (a share of the evaluation images) is flagged.
TOP1_DROP = 0.05

Key = tuple[str, ...]


@dataclass(frozen=True)
class CellChange:
    """One cell present in both runs and what happened to it."""

    cell: str
    backend: str
    verdict: str
    base_p50_ms: float | None
    new_p50_ms: float | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    flags: tuple[str, ...] = ()
    precision: str = FP32
    base_top1_agree: float | None = None
    new_top1_agree: float | None = None
    base_rel_l2_err: float | None = None
    new_rel_l2_err: float | None = None

    @property
    def top1_drop(self) -> bool:
        """Whether top1_agree fell by more than :data:`TOP1_DROP`."""
        base, new = self.base_top1_agree, self.new_top1_agree
        return base is not None and new is not None and base - new > TOP1_DROP


@dataclass(frozen=True)
class CompareResult:
    """Every matched cell, the cells found on one side only, and load problems."""

    base: str
    new: str
    threshold_pct: float
    cells: tuple[CellChange, ...]
    only_base: tuple[str, ...] = ()
    only_new: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    #: The precision of each one-sided cell, by its label.
    one_sided_precision: Mapping[str, str] = field(default_factory=dict)

    @property
    def regressed(self) -> tuple[CellChange, ...]:
        """Cells that got slower beyond the threshold, or stopped running (``broken``)."""
        return tuple(c for c in self.cells if c.verdict in FAILING)

    @property
    def accuracy_dropped(self) -> tuple[CellChange, ...]:
        """Cells whose top1_agree fell by more than :data:`TOP1_DROP` (flagged, not failing)."""
        return tuple(c for c in self.cells if c.top1_drop)

    def counts(self) -> dict[str, int]:
        """How many cells got each verdict, plus the one-sided ones and accuracy drops."""
        out = {v: sum(c.verdict == v for c in self.cells) for v in _ORDER}
        out["only in base"] = len(self.only_base)
        out["only in new"] = len(self.only_new)
        out["top-1 agreement drop"] = len(self.accuracy_dropped)
        return {k: n for k, n in out.items() if n}


def compare_runs(base_dir: Path, new_dir: Path, threshold_pct: float = 5.0) -> CompareResult:
    """Compare the run at ``new_dir`` against the run at ``base_dir``.

    Each path must hold exactly one run (a run folder or a pytest-benchmark
    JSON file); otherwise ValueError with a one-line message.
    """
    base_results, base_samples, base_key, base_problems = _load_one(base_dir)
    new_results, new_samples, new_key, new_problems = _load_one(new_dir)
    result = compare_frames(
        base_results, base_samples, new_results, new_samples, threshold_pct=threshold_pct
    )
    return replace(result, base=base_key, new=new_key, problems=(*base_problems, *new_problems))


def compare_frames(
    base_results: pd.DataFrame,
    base_samples: pd.DataFrame,
    new_results: pd.DataFrame,
    new_samples: pd.DataFrame,
    *,
    threshold_pct: float = 5.0,
) -> CompareResult:
    """Compare two single-run frames (as from ``load_runs``); see :func:`compare_runs`."""
    base = _by_key(base_results, base_samples)
    new = _by_key(new_results, new_samples)
    limit = threshold_pct / 100.0
    cells = tuple(_compare_cell(base[k], new[k], limit) for k in base if k in new)
    return CompareResult(
        base=_run_label(base_results),
        new=_run_label(new_results),
        threshold_pct=threshold_pct,
        cells=tuple(sorted(cells, key=lambda c: (_ORDER.index(c.verdict), c.cell))),
        only_base=tuple(sorted(base[k].label for k in base if k not in new)),
        only_new=tuple(sorted(new[k].label for k in new if k not in base)),
        one_sided_precision={
            side[k].label: side[k].precision
            for side, other in ((base, new), (new, base))
            for k in side
            if k not in other
        },
    )


def exit_code(result: CompareResult) -> int:
    """1 when any cell regressed (or broke: ok before, failed now), else 0."""
    return 1 if result.regressed else 0


#: The number columns of :func:`compare_rows`.
NUMBER_COLUMNS = (
    "base_p50_ms",
    "new_p50_ms",
    "ratio",
    "ci95_low",
    "ci95_high",
    "change_pct",
    "base_top1_agree",
    "new_top1_agree",
    "top1_change",
    "base_rel_l2_err",
    "new_rel_l2_err",
)


def compare_rows(result: CompareResult) -> list[dict[str, Any]]:
    """Plain rows for a table: worst first, then the cells found on one side only."""
    rows: list[dict[str, Any]] = [
        {
            "cell": c.cell,
            "precision": c.precision,
            "verdict": c.verdict,
            "base_p50_ms": _round(c.base_p50_ms, 3),
            "new_p50_ms": _round(c.new_p50_ms, 3),
            "ratio": _round(c.ratio, 4),
            "ci95_low": _round(c.ci_low, 4),
            "ci95_high": _round(c.ci_high, 4),
            "change_pct": _round(None if c.ratio is None else 100.0 * (c.ratio - 1.0), 2),
            "base_top1_agree": c.base_top1_agree,
            "new_top1_agree": c.new_top1_agree,
            "top1_change": _round(_difference(c.new_top1_agree, c.base_top1_agree), 4),
            "base_rel_l2_err": c.base_rel_l2_err,
            "new_rel_l2_err": c.new_rel_l2_err,
            "flags": "; ".join(c.flags),
        }
        for c in result.cells
    ]
    empty = dict.fromkeys(NUMBER_COLUMNS)
    for verdict, cells in (("only in base", result.only_base), ("only in new", result.only_new)):
        rows += [
            {
                "cell": c,
                "precision": result.one_sided_precision.get(c, ""),
                "verdict": verdict,
                **empty,
                "flags": "",
            }
            for c in cells
        ]
    return rows


@dataclass(frozen=True)
class _Side:
    """One cell of one run, repeats pooled."""

    label: str
    backend: str
    precision: str
    status: str
    reason: str
    p50: float | None
    samples: tuple[float, ...]
    values: Mapping[str, float | None]
    #: Which weights and images produced it (``weights``, ``inputs``; None in older runs).
    origin: Mapping[str, str | None]


def _load_one(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, str, list[str]]:
    results, samples, envs, problems = load_runs([path])
    if len(envs) != 1:
        found = f"{len(envs)} runs" if envs else "no run"
        detail = f": {problems[0]}" if problems and not envs else ""
        raise ValueError(f"{path}: expected one run, found {found}{detail}")
    return results, samples, next(iter(envs)), problems


def _run_label(results: pd.DataFrame) -> str:
    keys = results["run_key"].dropna().unique() if "run_key" in results else ()
    return str(keys[0]) if len(keys) else ""


def _by_key(results: pd.DataFrame, samples: pd.DataFrame) -> dict[Key, _Side]:
    """Each cell of one run, keyed by its normalised CELL_KEY."""
    pooled = samples.groupby("cell_id")["ms"].apply(tuple).to_dict() if len(samples) else {}
    groups: dict[Key, list[dict[str, Any]]] = {}
    for row in results.to_dict(orient="records"):
        groups.setdefault(key_tuple(row), []).append(row)
    return {key: _side(key, rows, pooled) for key, rows in groups.items()}


def _side(key: Key, rows: Sequence[Mapping[str, Any]], pooled: Mapping[str, tuple]) -> _Side:
    ok = [r for r in rows if r.get("status") == "ok"]
    first = (ok or rows)[0]
    samples = tuple(
        ms for cid in dict.fromkeys(r.get("cell_id") for r in ok) for ms in pooled.get(cid, ())
    )
    p50s = [v for v in (as_number(r.get("latency_ms_p50")) for r in ok) if v is not None]
    median = (
        pd.Series(samples).median() if samples else (pd.Series(p50s).median() if p50s else None)
    )
    return _Side(
        label=str(first.get("cell_id") or "/".join(key)),
        backend=str(first.get("backend")),
        precision=str(first.get("precision") or FP32),
        status="ok" if ok else str(first.get("status")),
        reason=str(first.get("reason") or ""),
        p50=None if median is None else float(median),
        samples=samples,
        values={
            "macs": as_number(first.get("macs")),
            "params": as_number(first.get("params")),
            "peak_rss_mb": _extreme(ok, "peak_rss_mb", max),
            "top1_agree": _extreme(ok, "top1_agree", min),
            "rel_l2_err": _extreme(ok, "rel_l2_err", max),
        },
        origin={name: _text(first.get(name)) for name in ORIGIN_COLUMNS},
    )


def _compare_cell(base: _Side, new: _Side, limit: float) -> CellChange:
    flags = _flags(base, new, limit)
    ratio = lo = hi = None
    if base.status == "ok" and new.status == "ok":
        if base.samples and new.samples and base.p50:
            ratio, lo, hi = ratio_ci(base.samples, new.samples, n_boot=N_BOOT, seed=0)
            verdict = (
                "regressed" if lo > 1.0 + limit else "improved" if hi < 1.0 - limit else "unchanged"
            )
        else:
            if base.p50 and new.p50:
                ratio = new.p50 / base.p50
            verdict = "no samples"
    elif base.status == "ok":
        verdict = "broken"
        flags = (f"status ok → {new.status}: {new.reason}".rstrip(": "), *flags)
    elif new.status == "ok":
        verdict = "fixed"
        flags = (f"status {base.status} → ok", *flags)
    else:
        verdict = "not measured"
    return CellChange(
        cell=new.label,
        backend=new.backend,
        verdict=verdict,
        base_p50_ms=base.p50,
        new_p50_ms=new.p50,
        ratio=ratio,
        ci_low=lo,
        ci_high=hi,
        flags=flags,
        precision=new.precision,
        base_top1_agree=base.values["top1_agree"],
        new_top1_agree=new.values["top1_agree"],
        base_rel_l2_err=base.values["rel_l2_err"],
        new_rel_l2_err=new.values["rel_l2_err"],
    )


def _flags(base: _Side, new: _Side, limit: float) -> tuple[str, ...]:
    """What besides latency changed: weights or images, MACs, params, accuracy, memory."""
    b, n = base.values, new.values
    flags = [
        f"{name} {base.origin[name]} → {new.origin[name]}"
        for name in ORIGIN_COLUMNS
        if base.origin[name] and new.origin[name] and base.origin[name] != new.origin[name]
    ]
    for name in ("macs", "params"):
        if b[name] is not None and n[name] is not None and b[name] != n[name]:
            flags.append(f"{name} {b[name]:,.0f} → {n[name]:,.0f}")
    top_b, top_n = b["top1_agree"], n["top1_agree"]
    if top_b is not None and top_n is not None and top_b - top_n > TOP1_DROP:
        flags.append(f"top1_agree {top_b:.3f} → {top_n:.3f} (drop > {TOP1_DROP:g})")
    err_b, err_n = b["rel_l2_err"], n["rel_l2_err"]
    bound = TOLERANCES.get(new.precision, TOLERANCES[FP32]).rel_l2
    if err_b is not None and err_n is not None and (err_b > bound) != (err_n > bound):
        flags.append(f"rel_l2_err {err_b:.1e} → {err_n:.1e} (crosses {bound:g})")
    if b["peak_rss_mb"] and n["peak_rss_mb"] is not None:
        change = n["peak_rss_mb"] / b["peak_rss_mb"] - 1.0
        if abs(change) > limit:
            flags.append(
                f"peak_rss_mb {b['peak_rss_mb']:.1f} → {n['peak_rss_mb']:.1f} ({change:+.1%})"
            )
    return tuple(flags)


def _text(value: Any) -> str | None:
    """A text cell, None when empty (NaN in a frame)."""
    return None if value is None or value != value or value == "" else str(value)


def _extreme(rows: Sequence[Mapping[str, Any]], column: str, pick: Any) -> float | None:
    values = [v for v in (as_number(r.get(column)) for r in rows) if v is not None]
    return pick(values) if values else None


def _difference(new: float | None, base: float | None) -> float | None:
    return None if new is None or base is None else new - base


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
