"""The arithmetic of a result row: derived numbers, flags for a second look, skip reasons.

Pure functions of a row's measured values (and the device facts handed in);
the runner calls them, tests drive them directly. Definitions are in
docs/architecture.md ("Measurement definitions").
"""

from __future__ import annotations

from typing import Any

from harness.formats import get_format
from harness.measure.stats import summarize
from harness.measure.timing import ci_within
from harness.parity import NO_REFERENCE, within_tolerance

#: cpu_util above threads * factor + margin is reported in ``reason``.
THREAD_MARGIN = (1.2, 0.2)
#: Memory a cell needs, roughly: framework baseline + a multiple of the artifact size.
MEMORY_BASE_MB = 400
MEMORY_PER_ARTIFACT_MB = 3


def skip_reason(cls: Any, mode: str, batch: int = 1) -> str | None:
    """Why a backend's mode cannot run here: the mode, exporting its artifact, or the batch."""
    ok, reason = cls.mode_available(mode)
    if not ok:
        return reason
    fmt = get_format(cls.artifact_format)
    if batch > fmt.max_batch:
        return f"batch {batch} is above the {fmt.max_batch} the {fmt.name} file accepts"
    return fmt.missing()


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

    ``peak_gmacs`` is the device's GEMM peak at the row's thread count.
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


def flags(row: dict[str, Any], samples: list[float], target_ci_pct: float | None) -> list[str]:
    """Why an ok row's numbers deserve a second look.

    ``target_ci_pct`` is the run's ``--target-ci``: the same precision the
    timing loop aimed for is the one a row is held to (None: not checked).
    """
    found = []
    if row.get("rel_l2_err") is None:
        found.append(NO_REFERENCE)
    elif not within_tolerance(row):
        found.append(
            f"parity out of tolerance (rel_l2_err {row['rel_l2_err']:.2g}, "
            f"top1_agree {row['top1_agree']:.2f})"
        )
    factor, margin = THREAD_MARGIN
    if row["cpu_util"] > row["threads"] * factor + margin:
        found.append(f"used {row['cpu_util']:.1f} cores with --threads {row['threads']}")
    if row.get("gmacs_per_s") and row.get("roofline_pct") is None:
        found.append("no roofline: the device's GEMM peak was not measured at this thread count")
    if (row.get("roofline_pct") or 0) > 100:
        found.append(
            "above the device's measured GEMM peak at its thread count "
            "(kernels faster than dense GEMM, or the peak was measured under load)"
        )
    if target_ci_pct and not ci_within(samples, target_ci_pct):
        found.append(f"noisy: 95% CI of the median wider than ±{target_ci_pct:g}%")
    return found
