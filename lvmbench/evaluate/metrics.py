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
from dataclasses import dataclass
from typing import Any, Callable

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


def bootstrap_mean_ci(
    values: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
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


@dataclass(frozen=True)
class Metric:
    """One rank metric: how to compute it and how to read it.

    ``value(ranks, candidates, k)`` is the metric over all queries;
    ``per_query`` (when the metric is a mean of per-query values) gives those
    values, which is what an interval is taken over: ``wilson`` for 0/1 values
    (a proportion), ``bootstrap`` (seeded percentile) for any other mean.
    ``rate``: a fraction in [0, 1] where higher is better, i.e. something a
    deploy gate can hold against a threshold.
    """

    name: str
    value: Callable[[np.ndarray, np.ndarray, int | None], float]
    at_k: bool = False
    per_query: Callable[[np.ndarray, int | None], np.ndarray] | None = None
    interval: str | None = None
    higher_is_better: bool = True
    rate: bool = True
    needs_candidates: bool = False
    description: str = ""

    def key(self, k: int | None = None) -> str:
        return f"{self.name}@{k}" if self.at_k else self.name


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("hit", lambda r, c, k: hit_at_k(r, k), at_k=True, per_query=lambda r, k: r <= k, interval="wilson",
               description="share of queries whose target ranks <= K (trec_eval success.K)"),
        Metric("ndcg", lambda r, c, k: ndcg_at_k(r, k), at_k=True,
               description="mean 1[rank <= K] / log2(rank + 1)"),
        Metric("mrr", lambda r, c, k: mrr(r), per_query=lambda r, k: 1.0 / r.astype(np.float64),
               interval="bootstrap", description="mean 1/rank over the whole pool (untruncated)"),
        Metric("mean_percentile_rank", lambda r, c, k: mean_percentile_rank(r, c), needs_candidates=True,
               description="mean 1 - (rank - 1)/(candidates - 1) ('contrastive accuracy')"),
        Metric("median_rank", lambda r, c, k: float(np.median(r)) if len(r) else float("nan"),
               higher_is_better=False, rate=False, description="median rank of the target"),
    ]
}
"""The metric table: ``summarize``, the report, ``compare``, ``info``, ``sweep``
and the gate all read it.  A new metric is one function plus one line here."""


def parse_key(key: str) -> tuple[Metric, int | None]:
    """``'hit@5'`` -> (the hit metric, 5); ``'mrr'`` -> (mrr, None).  KeyError for anything else."""
    name, _, k = key.partition("@")
    metric = METRICS[name]
    if metric.at_k != bool(k) or (k and not k.isdigit()):
        raise KeyError(key)
    return metric, int(k) if k else None


def value(key: str, ranks: np.ndarray, candidates: np.ndarray | None = None) -> float:
    """One metric by its key (``hit@5``, ``mrr``...)."""
    metric, k = parse_key(key)
    return metric.value(np.asarray(ranks), candidates if candidates is not None else np.empty(0), k)


def interval(key: str, ranks: np.ndarray, bootstrap: int = 1000, seed: int = 0) -> tuple[float, float] | None:
    """The metric's 95 % interval (Wilson or seeded bootstrap), or None when it has none."""
    metric, k = parse_key(key)
    ranks = np.asarray(ranks)
    if metric.interval is None or metric.per_query is None:
        return None
    per_query = metric.per_query(ranks, k)
    if metric.interval == "wilson":
        return wilson_interval(int(np.sum(per_query)), len(ranks))
    return bootstrap_mean_ci(per_query, bootstrap, seed)


def keys(ks: list[int]) -> list[str]:
    """Every metric key for these K, in table order."""
    return [m.key(k) for m in METRICS.values() for k in (ks if m.at_k else [None])]


def summarize(
    ranks: np.ndarray, candidates: np.ndarray, ks: list[int], bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Every metric of the table for one ranking, with intervals and chance rates."""
    ranks = np.asarray(ranks)
    out: dict[str, Any] = {"n_queries": len(ranks)}
    ci: dict[str, Any] = {}
    for key in keys(ks):
        out[key] = value(key, ranks, candidates)
        bounds = interval(key, ranks, bootstrap, seed)
        if bounds is not None:
            ci[key] = list(bounds)
    out["ci"] = ci
    out["chance"] = {f"hit@{k}": chance_hit_at_k(k, candidates) for k in ks}
    return out
