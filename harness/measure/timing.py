"""The timing loop: one cold call, a warm-up, then a steady loop of raw samples."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.measure.stats import summarize

_WARMUP_CAP_FACTOR = 10
#: ``--target-ci``: the loop aims for this and a row wider than it is flagged noisy.
DEFAULT_TARGET_CI_PCT = 2.5


@dataclass(frozen=True)
class TimingConfig:
    """When to stop warming up and when to stop sampling (seconds / call counts).

    Warm-up ends once at least ``warmup_iters`` calls are done and
    ``warmup_time_s`` has elapsed, or after ``10 * warmup_time_s`` at the latest
    (when ``warmup_time_s`` > 0). The steady loop ends once ``min_iters`` samples
    and ``min_time_s`` are both reached, or at ``max_time_s``, with at least one
    sample in any case. With ``target_ci_pct`` set, the loop also goes on (up to
    ``max_time_s``) until both ends of the median's 95% CI lie within that
    percentage of the median.
    """

    warmup_time_s: float = 0.5
    warmup_iters: int = 3
    min_iters: int = 10
    min_time_s: float = 1.0
    max_time_s: float = 10.0
    target_ci_pct: float | None = None

    def __post_init__(self) -> None:
        for name in ("warmup_time_s", "warmup_iters", "min_iters", "min_time_s", "max_time_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"TimingConfig.{name} must be >= 0")


@dataclass
class TimingResult:
    """Raw timings of one cell; ``cpu_time_s`` and ``wall_time_s`` cover the steady loop."""

    first_ms: float
    samples_ms: list[float]
    warmup_iters: int
    cpu_time_s: float
    wall_time_s: float

    @property
    def cpu_util(self) -> float:
        """Process CPU time / wall time over the steady loop (~ busy threads)."""
        return self.cpu_time_s / self.wall_time_s if self.wall_time_s > 0 else 0.0


def _timed_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def _warm_up(fn: Callable[[], object], config: TimingConfig) -> int:
    cap_s = _WARMUP_CAP_FACTOR * config.warmup_time_s if config.warmup_time_s > 0 else math.inf
    start = time.perf_counter()
    iters = 0
    while True:
        elapsed = time.perf_counter() - start
        done = iters >= config.warmup_iters and elapsed >= config.warmup_time_s
        if done or elapsed >= cap_s:
            return iters
        fn()
        iters += 1


def ci_within(samples_ms: list[float], pct: float) -> bool:
    """Whether both ends of the median's 95% CI lie within ``pct`` % of the median."""
    stats = summarize(samples_ms)
    return stats.p50 * (1 - pct / 100) <= stats.ci95_low and stats.ci95_high <= stats.p50 * (
        1 + pct / 100
    )


def _steady(
    fn: Callable[[], object],
    min_iters: int,
    min_time_s: float,
    max_time_s: float,
    target_ci_pct: float | None = None,
) -> tuple[list[float], float, float]:
    """Sample ``fn`` until the stopping rule holds; return (samples_ms, cpu_s, wall_s)."""
    samples: list[float] = []
    next_check = 0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    while True:
        samples.append(_timed_ms(fn))
        elapsed = time.perf_counter() - wall0
        if elapsed >= max_time_s:
            break
        if len(samples) >= min_iters and elapsed >= min_time_s:
            if target_ci_pct is None:
                break
            # Checking the CI costs a sort: do it every ~10% more samples.
            if len(samples) >= next_check:
                if ci_within(samples, target_ci_pct):
                    break
                next_check = len(samples) + max(5, len(samples) // 10)
    wall = time.perf_counter() - wall0
    return samples, time.process_time() - cpu0, wall


def time_call(fn: Callable[[], object], config: TimingConfig) -> TimingResult:
    """Time ``fn``: the first (cold) call alone, a warm-up, then the steady loop.

    Each sample is ``time.perf_counter_ns`` around exactly one call.
    """
    start = time.perf_counter_ns()
    fn()
    first_ms = (time.perf_counter_ns() - start) / 1e6
    warmup_iters = _warm_up(fn, config)
    samples, cpu_s, wall_s = _steady(
        fn, config.min_iters, config.min_time_s, config.max_time_s, config.target_ci_pct
    )
    return TimingResult(
        first_ms=first_ms,
        samples_ms=samples,
        warmup_iters=warmup_iters,
        cpu_time_s=cpu_s,
        wall_time_s=wall_s,
    )


def _noop() -> None:
    return None


def loop_overhead_ns(n: int = 10000) -> float:
    """Mean wall time (ns) of one steady-loop iteration around an empty function."""
    if n < 1:
        raise ValueError("n must be >= 1")
    samples, _, wall_s = _steady(_noop, min_iters=n, min_time_s=0.0, max_time_s=math.inf)
    return wall_s * 1e9 / len(samples)
