"""Paired comparisons of two rankings of the same queries.

The one place where "is A better than B?" is answered, for ``run`` (the
model against every baseline), ``compare`` (each run against the best
baseline) and the suite: per-query wins/ties/losses, the lift in each metric,
an exact McNemar test on Hit@K and whether the Wilson intervals separate;
Holm's step-down correction when several models are tested at once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lvmbench.evaluate import metrics

PAIRED_K = 5
"""McNemar runs on Hit@5, the recipe's headline and gate metric."""


def mcnemar_exact(hits_a: np.ndarray, hits_b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value (binomial on the discordant pairs)."""
    a, b = np.asarray(hits_a, bool), np.asarray(hits_b, bool)
    n01, n10 = int(np.sum(~a & b)), int(np.sum(a & ~b))
    n = n01 + n10
    if n == 0:
        return 1.0
    k = min(n01, n10)
    # exact integers, one correctly rounded division: 2.0**n overflows a float beyond 1,023 discordant pairs
    tail = sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)
    return float(min(1.0, 2.0 * tail))


def holm(pvalues: list[float] | np.ndarray) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    Sorted ascending, the i-th smallest (0-based) gets (m − i)·p, made
    monotone non-decreasing with a running maximum and capped at 1.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        adjusted[j] = running
    return adjusted.tolist()


def lift_interval(a: np.ndarray, b: np.ndarray, metric: str, candidates: np.ndarray, margin: float | None,
                  resamples: int) -> dict[str, Any]:
    """The paired bootstrap interval of a rank metric's lift (and the non-inferiority p-value at ``margin``)."""
    m, k = metrics.parse_key(metric)
    if m.per_query is None:
        raise ValueError(f"{metric}: no per-query values, so no paired interval")
    diff = (m.per_query(a, candidates, k).astype(np.float64) - m.per_query(b, candidates, k).astype(np.float64))
    means = metrics.bootstrap_means(diff, resamples, 0)
    out: dict[str, Any] = {"lift_metric": metric, "lift": float(diff.mean()),
                           "lift_ci": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))],
                           "lift_means": means}
    if margin is not None:
        out["noninferiority_p"] = float((1 + np.sum(means <= -margin)) / (1 + len(means)))
    return out


def win_tie_loss(rank_a: np.ndarray, rank_b: np.ndarray) -> tuple[int, int, int]:
    """Per-query counts of a ranking the target better (lower), equal, worse than b."""
    a, b = np.asarray(rank_a), np.asarray(rank_b)
    return int(np.sum(a < b)), int(np.sum(a == b)), int(np.sum(a > b))


BOOTSTRAP = 1000
"""Resamples (seed 0) of the paired bootstrap interval of the Hit@K lift."""


def paired(
    rank_a: np.ndarray, rank_b: np.ndarray, lift_keys: tuple[str, ...] = ("hit@5", "mrr"), k: int = PAIRED_K,
    ci_metric: str | None = None, candidates: np.ndarray | None = None, margin: float | None = None,
    bootstrap: int | None = None,
) -> dict[str, Any]:
    """A against B on the same queries, in the same order.

    Returns the lift (A − B) in each of ``lift_keys``, its paired percentile
    bootstrap 95 % interval for Hit@``k`` (queries resampled together, so the
    interval is of the difference, not of each rate), the exact McNemar
    p-value on Hit@``k`` (``mcnemar_p_hit@k``), whether the two Wilson 95 %
    intervals of Hit@``k`` separate and in which direction, and per-query
    wins/ties/losses (lower rank wins).  With ``ci_metric`` (any rank metric;
    ``candidates`` for CA) also ``lift_ci``, the paired interval of that
    metric's lift, and with ``margin`` the one-sided non-inferiority p-value
    ``noninferiority_p``: the share of resampled lifts at or below −margin
    (``(1 + count) / (1 + resamples)``), what a deploy gate's regression
    criterion holds.
    """
    a, b = np.asarray(rank_a), np.asarray(rank_b)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same queries: {a.shape} vs {b.shape}")
    key = f"hit@{k}"
    a_lo, a_hi = metrics.interval(key, a)
    b_lo, b_hi = metrics.interval(key, b)
    wins, ties, losses = win_tie_loss(a, b)
    c = candidates if candidates is not None else np.empty(0)
    out: dict[str, Any] = {m: metrics.value(m, a, c) - metrics.value(m, b, c) for m in lift_keys}
    if ci_metric is not None:
        out.update(lift_interval(a, b, ci_metric, c, margin, bootstrap or BOOTSTRAP))
    out.update({
        f"lift_ci_{key}": list(metrics.bootstrap_mean_ci((a <= k).astype(np.float64) - (b <= k), BOOTSTRAP, 0)),
        f"mcnemar_p_{key}": mcnemar_exact(a <= k, b <= k),
        # Wilson 95 % intervals that do not overlap: the lift is outside the noise
        "intervals_separate": bool(a_lo > b_hi or a_hi < b_lo),
        "direction": "better" if a_lo > b_hi else "worse" if a_hi < b_lo else "overlapping",
        "wins": wins, "ties": ties, "losses": losses,
    })
    return out
