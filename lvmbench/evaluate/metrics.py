"""Ranks -> metrics, as small pure functions over numpy arrays.

Each query has exactly one relevant item (its true next vector), so:

* Hit@K = share of queries with rank <= K.  It is trec_eval's ``success.K``,
  ranx/MTEB's ``hit_rate@k``, BEIR's ``Accuracy@K`` and FAISS's "1-recall@K",
  and equals Recall@K only because there is one relevant item per query.
* MRR here is *untruncated*: mean 1/rank over the whole pool (trec_eval's
  ``recip_rank`` over a top-N run differs when the target falls outside N).
* nDCG@K = mean(1[rank <= K] / log2(rank + 1)).
* Rank = 1 + number of candidates scoring strictly higher than the target;
  ties are counted separately and never help or hurt the target.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def hit_at_k(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(np.asarray(ranks) <= k)) if len(ranks) else float("nan")


def mrr(ranks: np.ndarray) -> float:
    return float(np.mean(1.0 / np.asarray(ranks, dtype=np.float64))) if len(ranks) else float("nan")


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    r = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0))) if len(r) else float("nan")


def mean_percentile_rank(ranks: np.ndarray, candidates: np.ndarray) -> float:
    """1 − (rank − 1)/(candidates − 1): 'contrastive accuracy' over the whole pool."""
    r = np.asarray(ranks, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    return float(np.mean(1.0 - (r - 1.0) / np.maximum(c - 1.0, 1.0)))


def chance_hit_at_k(k: int, candidates: np.ndarray) -> float:
    """Expected Hit@K of a predictor that ranks the candidates at random.

    ``candidates`` is each query's candidate count (pool minus excluded
    context); with nothing excluded this is K / pool size.
    """
    c = np.asarray(candidates, dtype=np.float64)
    return float(np.mean(np.minimum(k / c, 1.0)))


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95 % interval for a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At p = 0 or 1 the bound is exactly 0 or 1; floating point lands a hair inside,
    # which would put the interval below its own point estimate.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


def bootstrap_mean_ci(values: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Seeded percentile bootstrap interval of a mean."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for i in range(0, n_resamples, 100):  # chunks keep memory at 100 x n
        m = min(100, n_resamples - i)
        means[i : i + m] = v[rng.integers(0, len(v), size=(m, len(v)))].mean(axis=1)
    alpha = (1.0 - level) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def mcnemar_exact(hits_a: np.ndarray, hits_b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value (binomial on the discordant pairs)."""
    a, b = np.asarray(hits_a, bool), np.asarray(hits_b, bool)
    n01, n10 = int(np.sum(~a & b)), int(np.sum(a & ~b))
    n = n01 + n10
    if n == 0:
        return 1.0
    k = min(n01, n10)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return float(min(1.0, 2.0 * tail))


def summarize(
    ranks: np.ndarray, candidates: np.ndarray, ks: list[int], bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Every headline metric of one ranking, with intervals and chance rates."""
    ranks = np.asarray(ranks)
    n = len(ranks)
    out: dict[str, Any] = {"n_queries": n}
    ci: dict[str, Any] = {}
    chance: dict[str, float] = {}
    for k in ks:
        out[f"hit@{k}"] = hit_at_k(ranks, k)
        ci[f"hit@{k}"] = list(wilson_interval(int(np.sum(ranks <= k)), n))
        chance[f"hit@{k}"] = chance_hit_at_k(k, candidates)
        out[f"ndcg@{k}"] = ndcg_at_k(ranks, k)
    out["mrr"] = mrr(ranks)
    ci["mrr"] = list(bootstrap_mean_ci(1.0 / ranks.astype(np.float64), bootstrap, seed))
    out["mean_percentile_rank"] = mean_percentile_rank(ranks, candidates)
    out["median_rank"] = float(np.median(ranks)) if n else float("nan")
    out["ci"] = ci
    out["chance"] = chance
    return out
