"""One predictor's predictions -> ranks -> every metric: :class:`Summary`.

:func:`rank_and_summarise` ranks ``[n, D]`` unit-vector predictions with FAISS
(:func:`lvmbench.evaluate.ranking.faiss_ranks`, or by counting alone:
:func:`lvmbench.evaluate.ranking.exact_ranks`) and summarises every metric,
with intervals, the cosines and PAR; :func:`rank_and_summarise_by_recipe` does
the same with the recipe's ``eval`` settings.  The same code for models,
baselines and predictions made elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lvmbench.config import Recipe
from lvmbench.data.prepare import Prepared
from lvmbench.evaluate import metrics
from lvmbench.evaluate.index import Pool
from lvmbench.evaluate.queries import Queries, without_exclusion
from lvmbench.evaluate.ranking import FaissRanks, exact_ranks, faiss_ranks


@dataclass
class Summary:
    """One predictor ranked and summarised on one set of queries."""

    name: str
    pred: np.ndarray
    faiss: FaissRanks
    metrics: dict[str, Any]
    metrics_with_context: dict[str, Any]
    cos_target: np.ndarray
    cos_last: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


def rank_and_summarise(
    name: str,
    pred: np.ndarray,
    pool: Pool,
    queries: Queries,
    unit: np.ndarray,
    ks: list[int],
    depth: int,
    bootstrap: int,
    seed: int,
    exclude: bool = True,
    retrieval: bool = True,
) -> Summary:
    """Ranks + every metric of one predictor.  The same code for models and baselines.

    ``retrieval``: rank through FAISS's returned lists (the model: the
    consistency check compares them with the training loop's ranks);
    otherwise by counting alone (:func:`lvmbench.evaluate.ranking.exact_ranks`,
    the baselines), which gives the same ranks.
    """
    fr = faiss_ranks(pool, queries, pred, depth=depth) if retrieval else exact_ranks(pool, queries, pred)
    headline = fr.rank if exclude else fr.rank_with_context
    m = metrics.summarize(headline, queries.candidates(exclude, pool.size), ks, bootstrap, seed)
    mc = metrics.summarize(fr.rank_with_context, queries.candidates(False, pool.size), ks, bootstrap, seed)
    mc.pop("ci", None)
    target = unit[queries.samples.target]
    last = unit[queries.samples.target - 1]
    cos_t = np.einsum("ij,ij->i", pred, target)
    cos_l = np.einsum("ij,ij->i", pred, last)
    m["mean_cos"] = float(cos_t.mean()) if len(cos_t) else float("nan")
    m["margin"] = float((cos_t - cos_l).mean()) if len(cos_t) else float("nan")
    m["queries_with_ties"] = int((fr.ties > 0).sum())
    m["queries_with_copies"] = int((fr.copies > 0).sum())
    par_pred = queries.context_max(pred, unit)
    par_true = queries.true_context_max(unit)
    par = metrics.summarize_par(par_pred, par_true, bootstrap, seed)
    m["par"], m["ci"]["par"] = par["par"], par["ci"]["par"]
    extra: dict[str, Any] = {"par_pred": par_pred, "par_true": par_true}
    if m["queries_with_copies"]:  # the ranks a tool that counts every tie as a loss reports
        strict = metrics.summarize(headline + fr.copies, queries.candidates(exclude, pool.size), ks, bootstrap, seed)
        extra["copies_against"] = {k: strict[k] for k in metrics.keys(ks)}
    return Summary(name, pred, fr, m, mc, cos_t, cos_l, extra)


def rank_and_summarise_by_recipe(name: str, pred: np.ndarray, prep: Prepared, recipe: Recipe, pool: Pool,
                                 queries: Queries, retrieval: bool = True) -> Summary:
    """:func:`rank_and_summarise` of ``[n, D]`` unit-vector predictions with the recipe's ``eval`` settings."""
    e = recipe.eval
    q = queries if e.exclude_context else without_exclusion(queries)
    # rank_and_summarise also fills metrics_with_context from the unfiltered ranks
    depth = e.search_depth or max(e.ks)
    return rank_and_summarise(name, pred, pool, q, prep.unit, e.ks, depth, e.bootstrap, recipe.seed,
                              retrieval=retrieval)


def headline_rank(summary: Summary, recipe: Recipe) -> np.ndarray:
    """The ranks the headline metrics count: the query's context excluded, unless the recipe keeps it."""
    return summary.faiss.rank if recipe.eval.exclude_context else summary.faiss.rank_with_context
