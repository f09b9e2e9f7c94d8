import math

import numpy as np
import pytest

from harness.measure import stats
from harness.measure.stats import LatencyStats, median_ci_ranks, ratio_ci, summarize


def test_summarize_one_to_ten_matches_hand_computed_values():
    s = summarize([float(v) for v in range(10, 0, -1)])  # order must not matter

    assert s.n == 10
    assert s.mean == pytest.approx(5.5)
    assert s.std == pytest.approx(math.sqrt(55 / 6))  # sum((x - 5.5)^2) = 82.5, / 9
    assert (s.min, s.max) == (1.0, 10.0)
    assert s.p50 == pytest.approx(5.5)
    assert s.p90 == pytest.approx(9.1)  # rank 0.9 * 9 = 8.1 -> 9 + 0.1
    assert s.p99 == pytest.approx(9.91)
    assert s.iqr == pytest.approx(7.75 - 3.25)
    # n = 10: j = floor(5 - 3.10) = 1, k = ceil(6 + 3.10) = 10
    assert (s.ci95_low, s.ci95_high) == (1.0, 10.0)


@pytest.mark.parametrize(
    ("n", "ranks"),
    [
        (1, (1, 1)),
        (5, (1, 5)),  # below 6: the whole sample
        (6, (1, 6)),  # floor(3 - 2.40) = 0 and ceil(4 + 2.40) = 7, clamped
        (10, (1, 10)),
        (100, (40, 61)),  # floor(50 - 9.8), ceil(51 + 9.8)
        (1000, (469, 532)),  # floor(500 - 30.99), ceil(501 + 30.99)
    ],
)
def test_median_ci_ranks(n, ranks):
    assert median_ci_ranks(n) == ranks


def test_ci_of_the_median_picks_the_order_statistics():
    rng = np.random.default_rng(1)
    samples = rng.permutation(np.arange(1, 101, dtype=float))

    s = summarize(samples)

    assert (s.ci95_low, s.ci95_high) == (40.0, 61.0)
    assert s.ci95_low <= s.p50 <= s.ci95_high


def test_small_samples_use_min_and_max_as_the_interval():
    s = summarize([3.0, 1.0, 2.0])

    assert (s.ci95_low, s.ci95_high) == (1.0, 3.0)
    assert s.std == pytest.approx(1.0)


def test_single_sample_has_zero_std():
    s = summarize([4.2])

    assert s.n == 1
    assert s.std == 0.0
    assert s.p50 == s.p99 == s.ci95_low == s.ci95_high == 4.2


def test_empty_input_raises():
    with pytest.raises(ValueError, match="non-empty"):
        summarize([])


def test_to_dict_has_every_field_as_plain_numbers():
    d = summarize([1.0, 2.0, 4.0]).to_dict()

    assert list(d) == list(LatencyStats.__dataclass_fields__)
    assert all(isinstance(v, int | float) for v in d.values())


def test_ratio_ci_on_identical_samples_contains_one():
    samples = np.random.default_rng(2).lognormal(mean=1.0, sigma=0.1, size=200)

    ratio, low, high = ratio_ci(samples, samples)

    assert ratio == pytest.approx(1.0)
    assert low <= 1.0 <= high


def test_ratio_ci_on_one_and_a_half_times_slower_samples():
    rng = np.random.default_rng(3)
    base = 10.0 + rng.normal(0.0, 0.5, size=300)
    new = 15.0 + rng.normal(0.0, 0.75, size=300)

    ratio, low, high = ratio_ci(base, new)

    assert ratio == pytest.approx(1.5, abs=0.03)
    assert low < ratio < high
    assert low > 1.4
    assert high < 1.6


def test_ratio_ci_is_reproducible_and_seed_dependent():
    rng = np.random.default_rng(4)
    base, new = rng.normal(10, 1, 50), rng.normal(11, 1, 50)

    assert ratio_ci(base, new, seed=7) == ratio_ci(base, new, seed=7)
    assert ratio_ci(base, new, seed=7) != ratio_ci(base, new, seed=8)


def test_ratio_ci_chunked_bootstrap_gives_the_same_answer(monkeypatch):
    rng = np.random.default_rng(5)
    base, new = rng.normal(10, 1, 64), rng.normal(12, 1, 64)
    whole = ratio_ci(base, new, n_boot=300)

    monkeypatch.setattr(stats, "_BOOT_CHUNK_ENTRIES", 64 * 7)  # 7 resamples per chunk

    assert ratio_ci(base, new, n_boot=300) == pytest.approx(whole)


@pytest.mark.parametrize(
    ("base", "new", "kwargs", "match"),
    [
        ([], [1.0], {}, "non-empty"),
        ([1.0], [], {}, "non-empty"),
        ([0.0, 0.0], [1.0], {}, "positive"),
        ([1.0], [1.0], {"n_boot": 0}, "n_boot"),
    ],
)
def test_ratio_ci_rejects_bad_input(base, new, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ratio_ci(base, new, **kwargs)
