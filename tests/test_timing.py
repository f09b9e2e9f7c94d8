import pytest

from harness.measure import timing
from harness.measure.timing import TimingConfig, loop_overhead_ns, time_call

STEP_NS = 125_000_000  # 0.125 s: exact in binary, so elapsed-time sums do not drift


class FakeTime:
    """A clock that only moves when the timed function runs."""

    def __init__(self):
        self.ns = 0
        self.cpu_ns = 0

    def perf_counter_ns(self):
        return self.ns

    def perf_counter(self):
        return self.ns / 1e9

    def process_time(self):
        return self.cpu_ns / 1e9


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(timing, "time", fake)
    return fake


@pytest.fixture
def fn(clock):
    """A call that takes 0.125 s of wall time and half of it on the CPU."""

    def call():
        call.count += 1
        clock.ns += STEP_NS
        clock.cpu_ns += STEP_NS // 2

    call.count = 0
    return call


def test_counts_first_warmup_and_steady_calls(fn):
    config = TimingConfig(warmup_time_s=0, warmup_iters=3, min_iters=5, min_time_s=0)

    result = time_call(fn, config)

    assert result.warmup_iters == 3
    assert len(result.samples_ms) == 5
    assert fn.count == 1 + 3 + 5


def test_each_sample_times_exactly_one_call(fn):
    result = time_call(fn, TimingConfig(warmup_time_s=0, warmup_iters=0, min_iters=4, min_time_s=0))

    assert result.first_ms == 125.0
    assert result.samples_ms == [125.0] * 4
    assert result.wall_time_s == pytest.approx(0.5)
    assert result.cpu_time_s == pytest.approx(0.25)
    assert result.cpu_util == pytest.approx(0.5)


def test_min_time_keeps_sampling_after_min_iters(fn):
    config = TimingConfig(warmup_time_s=0, warmup_iters=0, min_iters=2, min_time_s=1.0)

    assert len(time_call(fn, config).samples_ms) == 8  # 8 x 0.125 s = 1 s


def test_min_iters_keeps_sampling_after_min_time(fn):
    config = TimingConfig(warmup_time_s=0, warmup_iters=0, min_iters=20, min_time_s=0.25)

    assert len(time_call(fn, config).samples_ms) == 20


def test_max_time_caps_the_steady_loop(fn):
    config = TimingConfig(
        warmup_time_s=0, warmup_iters=0, min_iters=1000, min_time_s=5.0, max_time_s=0.5
    )

    assert len(time_call(fn, config).samples_ms) == 4


def test_zero_max_time_still_takes_one_sample(fn):
    config = TimingConfig(warmup_time_s=0, warmup_iters=0, min_iters=10, max_time_s=0)

    assert len(time_call(fn, config).samples_ms) == 1


def test_warmup_runs_until_both_time_and_count(fn):
    by_time = TimingConfig(warmup_time_s=0.5, warmup_iters=1, min_iters=1, min_time_s=0)
    by_count = TimingConfig(warmup_time_s=0.25, warmup_iters=6, min_iters=1, min_time_s=0)

    assert time_call(fn, by_time).warmup_iters == 4
    assert time_call(fn, by_count).warmup_iters == 6


def test_warmup_is_capped_at_ten_times_its_time(fn):
    config = TimingConfig(warmup_time_s=0.125, warmup_iters=1000, min_iters=1, min_time_s=0)

    assert time_call(fn, config).warmup_iters == 10  # 10 x 0.125 s


def test_negative_config_is_rejected():
    with pytest.raises(ValueError, match="min_time_s"):
        TimingConfig(min_time_s=-1)


def test_real_clock_smoke():
    calls = []
    config = TimingConfig(
        warmup_time_s=0.01, warmup_iters=2, min_iters=5, min_time_s=0.01, max_time_s=5
    )

    result = time_call(lambda: calls.append(1), config)

    assert result.warmup_iters >= 2
    assert len(result.samples_ms) >= 5
    assert len(calls) == 1 + result.warmup_iters + len(result.samples_ms)
    assert all(ms >= 0 for ms in result.samples_ms)
    assert result.wall_time_s > 0
    assert result.cpu_util >= 0


def test_loop_overhead_is_positive():
    assert loop_overhead_ns(1000) > 0


def test_loop_overhead_rejects_zero_iterations():
    with pytest.raises(ValueError, match="n must be"):
        loop_overhead_ns(0)


def test_ci_within():
    assert timing.ci_within([10.0] * 30, 3.0)
    assert not timing.ci_within([10.0, 20.0] * 15, 3.0)


def test_target_ci_keeps_sampling_until_the_median_is_tight(clock):
    """Noisy first samples, steady later: the loop runs past min_iters until the CI closes."""
    durations = iter([STEP_NS, 3 * STEP_NS] * 10 + [2 * STEP_NS] * 1000)

    def call():
        clock.ns += next(durations)

    config = TimingConfig(
        warmup_time_s=0, warmup_iters=0, min_iters=10, min_time_s=0, max_time_s=1e6,
        target_ci_pct=3.0,
    )  # fmt: skip
    result = time_call(call, config)
    assert len(result.samples_ms) > 20
    assert timing.ci_within(result.samples_ms, 3.0)
    without = time_call(call, TimingConfig(warmup_time_s=0, warmup_iters=0, min_iters=10,
                                           min_time_s=0, max_time_s=1e6))  # fmt: skip
    assert len(without.samples_ms) == 10


def test_target_ci_is_capped_by_max_time(clock):
    def call():
        call.n += 1
        clock.ns += STEP_NS * (1 + call.n % 2)  # never settles

    call.n = 0
    config = TimingConfig(
        warmup_time_s=0, warmup_iters=0, min_iters=5, min_time_s=0, max_time_s=5,
        target_ci_pct=3.0,
    )  # fmt: skip
    result = time_call(call, config)
    assert sum(result.samples_ms) / 1000 <= 5 + 0.25 + 1e-9
