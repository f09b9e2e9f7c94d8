"""The arithmetic of a result row: derived numbers, flags for a second look, skip reasons.

Pure functions of a row's measured values (and the device facts handed in);
the runner calls them, tests drive them directly. Definitions are in
docs/architecture.md ("Measurement definitions").
"""

from __future__ import annotations

from typing import Any

from harness.formats import FP32, get_format
from harness.measure.stats import summarize
from harness.measure.timing import ci_within
from harness.parity import NO_REFERENCE, tolerance

#: cpu_util above threads * factor + margin is reported in ``reason``.
THREAD_MARGIN = (1.2, 0.2)
#: Memory a cell needs, roughly: framework baseline + a multiple of the artifact size.
MEMORY_BASE_MB = 400
MEMORY_PER_ARTIFACT_MB = 3


def skip_reason(
    cls: Any, mode: str, batch: int = 1, precision: str = FP32, compile_ok: bool = True
) -> str | None:
    """Why a cell cannot run here: its mode, its precision (no such file, no native
    arithmetic, a JIT compile step the run excludes), its batch, or exporting its file."""
    ok, reason = cls.mode_available(mode)
    if not ok:
        return reason
    fmt = get_format(cls.artifact_format)
    if precision != FP32:
        absent = fmt.absent_reason(precision)
        if absent:
            return absent
        ok, reason = cls.precision_available(precision)
        if ok:
            ok, reason = cls.mode_precision_available(mode, precision)
        if not ok:
            return reason
        compiles = fmt.variant(precision).compiles
        if compiles and not compile_ok:
            return (
                f"the {precision} {fmt.name} file runs through {compiles}, a JIT compile "
                "step this run leaves out (--no-compile)"
            )
    if batch > fmt.max_batch:
        return f"batch {batch} is above the {fmt.max_batch} the {fmt.name} file accepts"
    return fmt.missing(precision)


def memory_shortfall(artifact_bytes: int | None, available_mb: float | None) -> str | None:
    """A skip reason when ``available_mb`` clearly cannot hold the artifact's cell."""
    if available_mb is None or not artifact_bytes:
        return None
    need = MEMORY_PER_ARTIFACT_MB * artifact_bytes / 2**20 + MEMORY_BASE_MB
    if need <= available_mb:
        return None
    return f"needs about {need:.0f} MiB, only {available_mb:.0f} MiB available"


def derive(row: dict[str, Any], samples: list[float], peak_gmacs: float | None) -> dict[str, Any]:
    """Statistics and the numbers computed from them (throughput, GMAC/s, roofline, memory).

    ``peak_gmacs`` is the device's GEMM peak at the row's thread count and precision.
    """
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


def size_mb(artifact_bytes: int | None) -> float | None:
    """The artifact's size in MiB (an .mlpackage counts all its files)."""
    return artifact_bytes / 2**20 if artifact_bytes else None


def flags(
    row: dict[str, Any],
    samples: list[float],
    target_ci_pct: float | None,
    peak_reason: str | None = None,
) -> list[str]:
    """Why an ok row's numbers deserve a second look.

    ``target_ci_pct`` is the run's ``--target-ci``: the same precision the
    timing loop aimed for is the one a row is held to (None: not checked).
    ``peak_reason`` says why the device has no GEMM peak for the row.
    """
    found = []
    if row.get("compute_note"):
        found.append(row["compute_note"])
    limit = tolerance(row.get("precision") or FP32)
    if row.get("rel_l2_err") is None:
        found.append(NO_REFERENCE)
    elif not limit.holds(row):
        kind = "parity" if (row.get("precision") or FP32) == FP32 else "accuracy"
        found.append(
            f"{kind} out of tolerance (rel_l2_err {row['rel_l2_err']:.2g}, "
            f"top1_agree {row['top1_agree']:.2f}; {row.get('precision') or FP32} "
            f"needs {limit.describe()})"
        )
    factor, margin = THREAD_MARGIN
    if row["cpu_util"] > row["threads"] * factor + margin:
        found.append(f"used {row['cpu_util']:.1f} cores with --threads {row['threads']}")
    if row.get("gmacs_per_s") and row.get("roofline_pct") is None:
        found.append(
            "no roofline: "
            + (peak_reason or "the device's GEMM peak was not measured at this thread count")
        )
    if (row.get("roofline_pct") or 0) > 100:
        found.append(
            "above the device's measured GEMM peak at its thread count and precision "
            "(kernels faster than dense GEMM, or the peak was measured under load)"
        )
    if target_ci_pct and not ci_within(samples, target_ci_pct):
        found.append(f"noisy: 95% CI of the median wider than ±{target_ci_pct:g}%")
    return found
