"""Predictions of one predictor -> ranks -> metrics, and the proof that two rankers agree.

* :func:`predict_all` runs ``predict()`` over the queries and refuses rows
  that are not finite unit vectors;
* :func:`score_predictions` ranks them with FAISS
  (:func:`lvmbench.evaluate.ranking.faiss_ranks`) and summarises every metric;
* :func:`check_consistency` compares the training loop's ranks (torch) with
  what the index returned, query by query.  Two BLAS kernels may differ in the
  last bits, so a disagreement is allowed only where the target's score is
  within ``tie_tol`` of a competitor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lvmbench.config import Recipe
from lvmbench.data.prepare import Prepared
from lvmbench.data.samples import Samples, gather_batch
from lvmbench.errors import DegeneratePredictions, ModelOutputError
from lvmbench.evaluate import metrics
from lvmbench.evaluate.index import Pool
from lvmbench.evaluate.queries import Queries
from lvmbench.evaluate.ranking import FaissRanks, exact_ranks, faiss_ranks
from lvmbench.models.predict import bad_rows, explain, predicts_delta, reconstruct


def predict_all(
    model: nn.Module,
    unit: torch.Tensor,
    samples: Samples,
    context_len: int,
    batch: int = 256,
    check: bool = True,
) -> torch.Tensor:
    """``predict()`` for every sample, in order, in eval mode: ``[n, D]`` unit vectors.

    With ``check``, raises :class:`DegeneratePredictions` (naming the first
    bad query and what happened to it) when any row is not a finite unit
    vector: such a row ties every candidate and cannot be ranked.  The
    training loop's validation passes ``check=False`` and counts them itself.
    """
    return predict_many({"": model}, unit, samples, context_len, batch, check)[""]


@torch.no_grad()
def predict_many(
    models: dict[str, nn.Module],
    unit: torch.Tensor,
    samples: Samples,
    context_len: int,
    batch: int = 256,
    check: bool = True,
) -> dict[str, torch.Tensor]:
    """:func:`predict_all` for several models at once: each batch of contexts is gathered once for all of them.

    Gathering ``[batch, T, D]`` contexts costs more than most baselines'
    arithmetic, so the baselines of a run share it.  A degenerate output
    raises for the first model (in ``models``' order) that has one, with
    ``exc.model`` set to its name.
    """
    was_training = {name: m.training for name, m in models.items()}
    for m in models.values():
        m.eval()
        if hasattr(m, "reset"):
            m.reset()  # seeded baselines restart their stream: same queries, same predictions
    out: dict[str, list[torch.Tensor]] = {name: [] for name in models}
    bad: dict[str, list[Any]] = {name: [0, None] for name in models}
    try:
        for s in range(0, len(samples), batch):
            ctx, lengths, _ = gather_batch(unit, samples.target[s : s + batch], samples.start[s : s + batch],
                                           context_len)
            for name, model in models.items():
                raw = reconstruct(model, ctx, lengths)
                pred = F.normalize(raw, dim=-1, eps=1e-12).float()  # exactly predict(), then float32
                out[name].append(pred)
                if check:
                    _count_bad(bad[name], pred, raw, s, predicts_delta(model))
    finally:
        for name, m in models.items():
            m.train(was_training[name])
    for name, (count, first) in bad.items():
        if first is not None:
            exc = DegeneratePredictions(f"query {first[0]}: {first[1]} ({count} of {len(samples)} predictions are "
                                        "not finite unit vectors once normalised)", first[0], first[1], count)
            exc.model = name
            raise exc
    return {name: torch.cat(p) if p else torch.empty(0, unit.shape[1]) for name, p in out.items()}


def _count_bad(tally: list[Any], pred: torch.Tensor, raw: torch.Tensor, offset: int, delta: bool) -> None:
    rows = bad_rows(pred)
    if len(rows) and tally[1] is None:
        tally[1] = (offset + int(rows[0]), explain(raw[int(rows[0])], delta))
    tally[0] += len(rows)


def check_consistency(
    torch_rank: np.ndarray,
    torch_gap: np.ndarray,
    retrieved: np.ndarray,
    ks: list[int],
    tie_tol: float = 1e-5,
) -> dict[str, Any]:
    """In-loop Hit@K (torch ranks) versus what the index returned, query by query.

    A query agrees when, for every K, "torch rank <= K" equals "FAISS returned
    the target among its first K non-excluded results".  A disagreeing query is
    excused only if the target's score lies within ``tie_tol`` of another
    candidate's (a float near-tie).  Anything else is a mismatch: ``ok`` False.
    """
    torch_rank = np.asarray(torch_rank)
    retrieved = np.asarray(retrieved)
    agree = np.ones(len(torch_rank), dtype=bool)
    for k in ks:
        in_torch = torch_rank <= k
        in_faiss = (retrieved >= 1) & (retrieved <= k)
        agree &= in_torch == in_faiss
    near = ~agree & (np.asarray(torch_gap) <= tie_tol)
    mismatch = ~agree & ~near
    return {
        "n_queries": int(len(torch_rank)),
        "n_agree": int(agree.sum()),
        "n_near_ties": int(near.sum()),
        "n_mismatch": int(mismatch.sum()),
        "mismatched_queries": np.flatnonzero(mismatch)[:20].tolist(),
        "ks": list(ks),
        "tie_tol": tie_tol,
        "ok": bool(mismatch.sum() == 0),
    }


@dataclass
class Scored:
    """One predictor scored on one set of queries."""

    name: str
    pred: np.ndarray
    faiss: FaissRanks
    metrics: dict[str, Any]
    metrics_with_context: dict[str, Any]
    cos_target: np.ndarray
    cos_last: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


def score_predictions(
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
) -> Scored:
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
    return Scored(name, pred, fr, m, mc, cos_t, cos_l, extra)


def without_exclusion(q: Queries) -> Queries:
    """The same queries with nothing excluded (``eval.exclude_context = false``)."""
    return Queries(q.samples, q.target_pos, q.excl_lo, q.excl_lo.copy(), q.context_rows, q.copies, q.context_len)


def score_vectors(name: str, pred: np.ndarray, prep: Prepared, recipe: Recipe, pool: Pool, queries: Queries,
                  retrieval: bool = True) -> Scored:
    """Ranks and every metric of ``[n, D]`` unit-vector predictions for ``queries`` (see ``score_predictions``)."""
    e = recipe.eval
    q = queries if e.exclude_context else without_exclusion(queries)
    # score_predictions also fills metrics_with_context from the unfiltered ranks
    depth = e.search_depth or max(e.ks)
    return score_predictions(name, pred, pool, q, prep.unit, e.ks, depth, e.bootstrap, recipe.seed,
                             retrieval=retrieval)


def predict_queries(name: str, model: torch.nn.Module, unit_t: torch.Tensor, queries: Queries, recipe: Recipe,
                    split: str) -> torch.Tensor:
    """``predict()`` every query; a model whose output cannot be ranked is an integrity failure naming it."""
    return predict_named({name: model}, unit_t, queries, recipe, split)[name]


def predict_named(models: dict[str, torch.nn.Module], unit_t: torch.Tensor, queries: Queries, recipe: Recipe,
                  split: str) -> dict[str, torch.Tensor]:
    """``predict()`` every query with each model (contexts gathered once); errors name the model and the query."""
    try:
        return predict_many(models, unit_t, queries.samples, recipe.data.context_len, recipe.train.eval_batch)
    except DegeneratePredictions as exc:
        q, name = exc.index, exc.model
        raise DegeneratePredictions(
            f"{name}: {split} query {q} (target row {int(queries.samples.target[q])}): {exc.reason}; {exc.count} of "
            f"{len(queries)} {split} predictions are not finite unit vectors once normalised and would tie every "
            "candidate, so they cannot be scored", q, exc.reason, exc.count, name) from None
    except ModelOutputError as exc:
        raise ModelOutputError(f"model '{', '.join(models)}': while predicting the {split} queries: {exc}") from None
