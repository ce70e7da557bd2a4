"""Ranks -> metrics, as small pure functions over numpy arrays.

Each query has exactly one relevant item (its true next vector), so:

* Hit@K = share of queries with rank <= K.  It is trec_eval's ``success.K``,
  ranx/MTEB's ``hit_rate@k``, BEIR's ``Accuracy@K`` and FAISS's "1-recall@K",
  and equals Recall@K only because there is one relevant item per query.
* MRR here is *untruncated*: mean 1/rank over the whole pool (trec_eval's
  ``recip_rank`` over a top-N run differs when the target falls outside N).
* nDCG@K = mean(1[rank <= K] / log2(rank + 1)).
* CA (contrastive accuracy) and PAR (paraphrasing) are the next-concept
  metrics of Meta's Large Concept Model; see their entries below.
* Rank = 1 + the candidates scoring at least the target's score, its copies
  left out (:mod:`lvmbench.evaluate.ties`): a tie never helps the target.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=4)
def _resamples(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """The seeded resamples as weights ``[n_resamples, n]``: how often each query is drawn, over n.

    Drawn once per (n, resamples, seed) and shared by every interval of a
    run - every metric, predictor and split resamples the same queries - so
    an interval is one matrix-vector product instead of a gather per
    resample.  The draw is the one ``rng.integers(0, n, (n_resamples, n))``
    makes; the means equal ``v[idx].mean(axis=1)`` up to the order of the sum.
    """
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    counts = np.bincount((idx + np.arange(n_resamples)[:, None] * n).ravel(), minlength=n_resamples * n)
    w = counts.reshape(n_resamples, n).astype(np.float64) / n
    w.setflags(write=False)
    return w


def bootstrap_means(values: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """The means of ``n_resamples`` seeded resamples (with replacement) of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    return _resamples(len(v), n_resamples, seed) @ v


def bootstrap_mean_ci(
    values: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Seeded percentile bootstrap interval of a mean."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    means = bootstrap_means(values, n_resamples, seed)
    alpha = (1.0 - level) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def contrastive_accuracy(ranks: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Per query: the share of the *other* candidates that score below the target (LCM's CA; 0.5 = random).

    Under the tie rule a candidate tied with the target is not below it, so a
    prediction that ties everything gets 0, never 1.  ``candidates`` counts
    the target too, hence ``candidates - rank`` below it out of ``candidates - 1``.
    """
    r = np.asarray(ranks, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    return (c - r) / np.maximum(c - 1.0, 1.0)


def paraphrasing(pred_max: np.ndarray, true_max: np.ndarray) -> float:
    """LCM's PAR as a ratio of means: mean max cos(prediction, its context) / mean max cos(target, that context).

    Above 1: the predictions sit closer to their own context than the true
    next vectors do (copying the context).  The per-query ratio LCM states
    blows up where the target's best context cosine nears 0, so lvmbench
    takes the ratio of the two means over the queries.
    """
    den = float(np.mean(true_max)) if len(true_max) else float("nan")
    return float(np.mean(pred_max)) / den if len(pred_max) and den > 0 else float("nan")


def bootstrap_ratio_ci(num: np.ndarray, den: np.ndarray, n_resamples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Seeded percentile bootstrap interval of mean(num) / mean(den), queries resampled together."""
    a, b = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if len(a) == 0:
        return (float("nan"), float("nan"))
    w = _resamples(len(a), n_resamples, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (w @ a) / (w @ b)
    alpha = (1.0 - level) / 2
    return (float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha)))


@dataclass(frozen=True)
class Metric:
    """One metric: how to compute it, how to read it, and how a gate may hold it.

    Rank metrics (``vectors=False``): ``value(ranks, candidates, k)`` over all
    queries; ``per_query(ranks, candidates, k)`` (for a mean of per-query
    values) is what an interval is taken over: ``wilson`` for 0/1 values,
    ``bootstrap`` (seeded percentile) for any other mean.  A vector metric
    (``vectors=True``, PAR) is computed from the predictions and their context
    by :mod:`lvmbench.evaluate.summary` and has the same record.  ``gate``:
    ``"min"`` for a rate in [0, 1] where higher is better (a deploy gate holds
    it against a minimum), ``"max"`` for one held against a maximum, None for
    a number no gate may use.  ``label`` and ``show`` decide the tables: every
    metric with ``show`` is a column of the run table, ``compare``, the suite
    and sweep tables (one per K of ``eval.ks`` for an ``at_k`` metric), headed
    by ``label`` (:mod:`lvmbench.report.columns`); every gateable metric is shown.
    """

    name: str
    value: Callable[[np.ndarray, np.ndarray, int | None], float] | None
    at_k: bool = False
    per_query: Callable[[np.ndarray, np.ndarray, int | None], np.ndarray] | None = None
    interval: str | None = None
    higher_is_better: bool = True
    gate: str | None = "min"
    needs_candidates: bool = False
    vectors: bool = False
    label: str = ""
    show: bool = True
    description: str = ""

    def key(self, k: int | None = None) -> str:
        return f"{self.name}@{k}" if self.at_k else self.name

    def heading(self, k: int | None = None) -> str:
        return f"{self.label}@{k}" if self.at_k else self.label

    @property
    def rate(self) -> bool:
        return self.gate == "min"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("hit", lambda r, c, k: hit_at_k(r, k), at_k=True, per_query=lambda r, c, k: r <= k,
               interval="wilson", label="Hit",
               description="share of queries whose target ranks <= K (trec_eval success.K)"),
        Metric("ndcg", lambda r, c, k: ndcg_at_k(r, k), at_k=True, label="nDCG",
               description="mean 1[rank <= K] / log2(rank + 1)"),
        Metric("mrr", lambda r, c, k: mrr(r), per_query=lambda r, c, k: 1.0 / r.astype(np.float64),
               interval="bootstrap", label="MRR", description="mean 1/rank over the whole pool (untruncated)"),
        Metric("ca", lambda r, c, k: float(np.mean(contrastive_accuracy(r, c))) if len(r) else float("nan"),
               per_query=lambda r, c, k: contrastive_accuracy(r, c), interval="bootstrap", needs_candidates=True,
               label="CA", description="contrastive accuracy (LCM): mean share of the other candidates scoring "
               "below the target; 0.5 = random"),
        Metric("par", None, interval="bootstrap", higher_is_better=False, gate="max", vectors=True, label="PAR",
               description="paraphrasing (LCM): mean max cos(prediction, its context) / mean max cos(target, "
               "that context); above 1 = closer to the context than the truth is"),
        Metric("median_rank", lambda r, c, k: float(np.median(r)) if len(r) else float("nan"),
               higher_is_better=False, gate=None, label="median rank", show=False,
               description="median rank of the target"),
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
    """One rank metric by its key (``hit@5``, ``mrr``...)."""
    metric, k = parse_key(key)
    if metric.value is None:
        raise KeyError(f"{key} is computed from vectors, not ranks")
    return metric.value(np.asarray(ranks), candidates if candidates is not None else np.empty(0), k)


def interval(key: str, ranks: np.ndarray, bootstrap: int = 1000, seed: int = 0,
             candidates: np.ndarray | None = None) -> tuple[float, float] | None:
    """A rank metric's 95 % interval (Wilson or seeded bootstrap), or None when it has none."""
    metric, k = parse_key(key)
    ranks = np.asarray(ranks)
    if metric.interval is None or metric.per_query is None:
        return None
    if metric.needs_candidates and candidates is None:
        return None
    per_query = metric.per_query(ranks, candidates if candidates is not None else np.empty(0), k)
    if metric.interval == "wilson":
        return wilson_interval(int(np.sum(per_query)), len(ranks))
    return bootstrap_mean_ci(per_query, bootstrap, seed)


def keys(ks: list[int], vectors: bool = False, shown: bool = False) -> list[str]:
    """Every rank metric key for these K, in table order (``vectors``: PAR too; ``shown``: table columns only)."""
    return [m.key(k) for m in METRICS.values() if (vectors or not m.vectors) and (m.show or not shown)
            for k in (ks if m.at_k else [None])]


def summarize(
    ranks: np.ndarray, candidates: np.ndarray, ks: list[int], bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Every rank metric of the table for one ranking, with intervals and chance rates."""
    ranks = np.asarray(ranks)
    out: dict[str, Any] = {"n_queries": len(ranks)}
    ci: dict[str, Any] = {}
    for key in keys(ks):
        out[key] = value(key, ranks, candidates)
        bounds = interval(key, ranks, bootstrap, seed, candidates)
        if bounds is not None:
            ci[key] = list(bounds)
    out["ci"] = ci
    out["chance"] = {f"hit@{k}": chance_hit_at_k(k, candidates) for k in ks}
    return out


def summarize_par(pred_max: np.ndarray, true_max: np.ndarray, bootstrap: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """PAR and its bootstrap interval, as ``summarize`` records a metric."""
    return {"par": paraphrasing(pred_max, true_max),
            "ci": {"par": list(bootstrap_ratio_ci(pred_max, true_max, bootstrap, seed))}}
