"""Metric functions against hand-computed values."""

import numpy as np
import pytest

from lvmbench.evaluate import metrics, stats


def test_hit_mrr_ndcg_by_hand():
    ranks = np.array([1, 2, 5, 6, 11])
    assert metrics.hit_at_k(ranks, 1) == pytest.approx(1 / 5)
    assert metrics.hit_at_k(ranks, 5) == pytest.approx(3 / 5)
    assert metrics.hit_at_k(ranks, 10) == pytest.approx(4 / 5)
    assert metrics.mrr(ranks) == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 6 + 1 / 11) / 5)
    expected = (1 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(6)) / 5
    assert metrics.ndcg_at_k(ranks, 5) == pytest.approx(expected)


def test_wilson_interval_known_values():
    lo, hi = metrics.wilson_interval(55, 100)
    # Wilson 95 % for 55/100 (textbook value 0.4521 .. 0.6441)
    assert lo == pytest.approx(0.4521, abs=1e-3)
    assert hi == pytest.approx(0.6441, abs=1e-3)
    assert metrics.wilson_interval(0, 10)[0] == 0.0
    assert metrics.wilson_interval(10, 10)[1] == 1.0  # exactly: the interval must contain p = 1
    assert metrics.wilson_interval(4, 4)[1] == 1.0


def test_chance_rate_accounts_for_exclusion():
    assert metrics.chance_hit_at_k(5, np.array([100, 100])) == pytest.approx(0.05)
    assert metrics.chance_hit_at_k(5, np.array([50, 100])) == pytest.approx((0.1 + 0.05) / 2)
    assert metrics.chance_hit_at_k(5, np.array([3])) == 1.0


def test_mcnemar_exact():
    a = np.array([1] * 10 + [0] * 5, bool)
    b = np.array([0] * 10 + [1] * 5, bool)
    # 10 discordant one way, 5 the other: two-sided binomial(15, .5) tail at 5
    from math import comb

    tail = sum(comb(15, i) for i in range(6)) / 2**15
    assert stats.mcnemar_exact(a, b) == pytest.approx(2 * tail)
    assert stats.mcnemar_exact(a, a) == 1.0


def test_mcnemar_exact_with_thousands_of_discordant_pairs():
    """A suite task has thousands of queries: 2**n must not overflow a float."""
    a = np.array([1] * 1500 + [0] * 1500, bool)
    assert stats.mcnemar_exact(a, ~a) == 1.0  # 1,500 discordant each way
    b = np.array([1] * 1300 + [0] * 1700, bool)
    p = stats.mcnemar_exact(b, ~b)  # 1,300 vs 1,700 of 3,000 discordant pairs
    assert 0.0 < p < 1e-10


def test_bootstrap_is_seeded_and_brackets_the_mean():
    v = np.random.default_rng(1).random(500)
    a = metrics.bootstrap_mean_ci(v, 500, seed=3)
    b = metrics.bootstrap_mean_ci(v, 500, seed=3)
    assert a == b
    assert a[0] < v.mean() < a[1]


def test_summarize_keys():
    s = metrics.summarize(np.array([1, 3, 7]), np.array([10, 10, 10]), [1, 5, 10], bootstrap=100)
    assert s["hit@5"] == pytest.approx(2 / 3)
    assert set(s["ci"]) == {"hit@1", "hit@5", "hit@10", "mrr", "ca"}
    assert s["chance"]["hit@5"] == pytest.approx(0.5)
