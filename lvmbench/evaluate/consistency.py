"""The consistency check: the training loop's ranks (torch) against what the index (FAISS) returned.

:func:`check_consistency` compares two rankings query by query.  Two BLAS
kernels may differ in the last bits, so a disagreement is allowed only where
the target's score is within ``tie_tol`` of a competitor's.
:func:`rerank_and_check` ranks a predictor's queries again with torch and
checks them against its :class:`~lvmbench.evaluate.summary.Summary`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from lvmbench.config import Recipe
from lvmbench.evaluate.index import Pool
from lvmbench.evaluate.queries import Queries
from lvmbench.evaluate.ranking import LISTED_ABOVE, torch_ranks, torch_ranks_listed
from lvmbench.evaluate.summary import Summary, headline_rank


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


def rerank_and_check(
    pred_t: torch.Tensor, pool: Pool, queries: Queries, summary: Summary, recipe: Recipe, device: torch.device
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Rank ``pred_t`` again the way the training loop does (torch) and :func:`check_consistency` it
    against what FAISS returned for ``summary``; returns the report and the torch ranks and gaps."""
    excl = recipe.eval.exclude_context
    if pool.size > LISTED_ABOVE and summary.faiss.returned is not None:
        t_rank, t_gap, missed = torch_ranks_listed(pred_t.to(device), pool, queries, summary.faiss.returned, excl)
        report = check_consistency(t_rank, t_gap, summary.faiss.retrieved, recipe.eval.ks, recipe.eval.tie_tol)
        report.update({"scope": "torch over FAISS's returned lists plus a random probe of 4,096 candidates per "
                       "block of 256 queries", "probe_missed": missed, "ok": report["ok"] and missed == 0})
        return report, t_rank, t_gap
    with warnings.catch_warnings():  # a memory-mapped bank is read-only; torch only reads it
        warnings.filterwarnings("ignore", message=".*not writable.*")
        pool_t = [(start, torch.from_numpy(shard).to(device)) for start, shard in pool.blocks()]
    t_rank, t_gap = torch_ranks(pred_t.to(device), pool_t, queries, exclude=excl)
    report = check_consistency(t_rank, t_gap, summary.faiss.retrieved, recipe.eval.ks, recipe.eval.tie_tol)
    report["rank_equal"] = int((t_rank == headline_rank(summary, recipe)).sum())
    report["scope"] = "torch over every candidate"
    return report, t_rank, t_gap
