"""Latency statistics from raw samples: pure numpy, no I/O, no ML framework.

Renderers and the regression gate only see the plain dict from ``to_dict()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

# z for a two-sided 95% interval; z/2 * sqrt(n) is the half-width in ranks.
_Z95 = 1.96
# Below this the order-statistic interval cannot reach 95% coverage.
_MIN_N_RANK_CI = 6
# Bound the bootstrap's index matrix to about this many entries per chunk.
_BOOT_CHUNK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one cell's steady-state samples; every value in milliseconds."""

    n: int
    mean: float
    std: float
    min: float
    max: float
    p50: float
    p90: float
    p99: float
    iqr: float
    ci95_low: float
    ci95_high: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def to_columns(self) -> dict[str, float | int]:
        """The results-row columns: ``latency_ms_<stat>`` and ``n_iter``."""
        return {
            ("n_iter" if key == "n" else f"latency_ms_{key}"): value
            for key, value in asdict(self).items()
        }


def median_ci_ranks(n: int) -> tuple[int, int]:
    """1-based ranks (j, k) of the order statistics bounding the median's 95% CI.

    j = floor(n/2 - 1.96*sqrt(n)/2), k = ceil(1 + n/2 + 1.96*sqrt(n)/2), clamped
    to [1, n]; for n < 6 the interval is the whole sample, (1, n).
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    if n < _MIN_N_RANK_CI:
        return 1, n
    half = _Z95 * math.sqrt(n) / 2
    j = math.floor(n / 2 - half)
    k = math.ceil(1 + n / 2 + half)
    return max(j, 1), min(k, n)


def summarize(samples_ms: Sequence[float]) -> LatencyStats:
    """Summarise latency samples (ms).

    ``std`` is the sample standard deviation (ddof=1, 0.0 for one sample).
    Percentiles use numpy's default linear interpolation; ``iqr`` = p75 - p25.
    The 95% confidence interval of the median is distribution-free: the order
    statistics x_(j), x_(k) of the sorted sample with ranks from the binomial
    (normal-approximated) distribution of the number of samples below the
    median, see :func:`median_ci_ranks`; for n < 6 it is [min, max].
    """
    x = np.sort(np.asarray(samples_ms, dtype=np.float64))
    if x.ndim != 1 or x.size == 0:
        raise ValueError("summarize() needs a non-empty 1-D sequence of samples")
    n = int(x.size)
    p25, p50, p75, p90, p99 = np.percentile(x, [25, 50, 75, 90, 99])
    j, k = median_ci_ranks(n)
    return LatencyStats(
        n=n,
        mean=float(x.mean()),
        std=float(x.std(ddof=1)) if n > 1 else 0.0,
        min=float(x[0]),
        max=float(x[-1]),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        iqr=float(p75 - p25),
        ci95_low=float(x[j - 1]),
        ci95_high=float(x[k - 1]),
    )


def _boot_medians(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``n_boot`` resamples of ``x`` with replacement, in bounded chunks."""
    rows = max(1, _BOOT_CHUNK_ENTRIES // x.size)
    out = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(start + rows, n_boot)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        out[start:stop] = np.median(x[idx], axis=1)
    return out


def ratio_ci(
    base_ms: Sequence[float], new_ms: Sequence[float], n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Ratio of medians new/base with a 95% percentile-bootstrap interval.

    Both samples are resampled independently ``n_boot`` times with a
    ``numpy.random.default_rng(seed)`` generator, so the result is reproducible.
    Returns ``(ratio, ci_low, ci_high)``; a ratio above 1 means ``new`` is slower.
    """
    base = np.asarray(base_ms, dtype=np.float64)
    new = np.asarray(new_ms, dtype=np.float64)
    if base.size == 0 or new.size == 0:
        raise ValueError("ratio_ci() needs two non-empty samples")
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    if np.median(base) <= 0:
        raise ValueError("the base median must be positive")
    rng = np.random.default_rng(seed)
    ratios = _boot_medians(new, n_boot, rng) / _boot_medians(base, n_boot, rng)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(np.median(new) / np.median(base)), float(low), float(high)
