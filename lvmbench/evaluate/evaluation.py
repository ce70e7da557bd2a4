"""Evaluate a model, or predictions made elsewhere, and every baseline on one split.

The pool, the queries and their excluded context are fixed here for every
caller — ``run``, ``eval``, the training loop's validation, ``data info``
and ``sweep`` — so no two commands can disagree on what a query's candidates
are (:func:`pool_for`, :func:`queries_for`).  :func:`evaluate_model` ranks and
summarises a model and every baseline through the same ``predict()`` -> FAISS
path (:mod:`lvmbench.evaluate.summary`), checks the training loop's ranks
against FAISS (:mod:`lvmbench.evaluate.consistency`) and compares the model
with each baseline on the same queries; :func:`evaluate_predictions` does the
same for predictions already made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from lvmbench.config import Recipe, exclusion_len
from lvmbench.data.prepare import Prepared
from lvmbench.errors import ConfigError
from lvmbench.io import sha256_arrays
from lvmbench.evaluate import diagnostics, latency
from lvmbench.evaluate.index import Bank, Pool, build_pool, shard_rows
from lvmbench.evaluate.queries import Queries, make_queries, without_exclusion
from lvmbench.evaluate.baseline_summaries import BaselineSummary, direction_row, summarise_baselines
from lvmbench.evaluate.consistency import rerank_and_check
from lvmbench.evaluate.inference import predict_queries
from lvmbench.evaluate.summary import Summary, headline_rank, rank_and_summarise_by_recipe
from lvmbench.evaluate.stats import paired
from lvmbench.models import registry
from lvmbench.progress import Progress

Log = Callable[[str], None]


def pool_for(prep: Prepared, recipe: Recipe, split: str, bank: Bank | None = None, shard_size: int = 0) -> Pool:
    """The contract's pool: the scored split's chains, or every chain with pool='full'; plus a bank's vectors."""
    if recipe.eval.pool == "full":
        chains = np.arange(prep.store.n_chains)
        return build_pool(prep.unit, prep.store.offsets, chains, "full", bank, shard_size)
    return build_pool(prep.unit, prep.store.offsets, prep.split.chains[split], split, bank, shard_size)


def queries_for(prep: Prepared, recipe: Recipe, split: str, pool: Pool) -> Queries:
    """The split's queries against ``pool``, with the scoring contract's exclusion window."""
    q = make_queries(prep.samples[split], pool, exclusion_len(recipe))
    q.context_len = recipe.data.context_len
    return q


def check_ks(prep: Prepared, recipe: Recipe, split: str, extra: int = 0) -> None:
    """Refuse a K larger than the pool before anything is trained or written (Hit@K would be trivially 1)."""
    lengths = np.diff(prep.store.offsets)
    chains = np.arange(prep.store.n_chains) if recipe.eval.pool == "full" else prep.split.chains[split]
    size = int(lengths[chains].sum()) + extra
    too_big = [k for k in recipe.eval.ks if k > size]
    if too_big:
        raise ConfigError(
            f"{prep.store.path}: eval.ks {too_big} larger than the {split} pool of {size} candidates "
            f"(pool '{recipe.eval.pool}'); choose K <= {size}"
        )


def predict_and_summarise(
    name: str, model: torch.nn.Module, prep: Prepared, recipe: Recipe, unit_t: torch.Tensor,
    pool: Pool, queries: Queries, split: str = "test", retrieval: bool = True,
) -> tuple[Summary, torch.Tensor]:
    """``predict()`` every query with ``model``, then rank and summarise them (``rank_and_summarise_by_recipe``)."""
    pred_t = predict_queries(name, model, unit_t, queries, recipe, split)
    pred = pred_t.cpu().numpy().astype(np.float32)
    return rank_and_summarise_by_recipe(name, pred, prep, recipe, pool, queries, retrieval), pred_t


def check_val_consistency(
    model: torch.nn.Module, prep: Prepared, recipe: Recipe, device: torch.device, recorded_hit5: float | None
) -> dict[str, Any]:
    """Recorded in-loop val Hit@5 of the best epoch versus FAISS retrieval on the val pool."""
    unit_t = torch.from_numpy(prep.unit).to(device)
    pool = pool_for(prep, recipe, "val")
    queries = queries_for(prep, recipe, "val", pool)
    summary, pred_t = predict_and_summarise("val", model, prep, recipe, unit_t, pool, queries, "val")
    report, _, _ = rerank_and_check(pred_t, pool, queries, summary, recipe, device)
    report["recorded_val_hit@5"] = recorded_hit5
    report["faiss_val_hit@5"] = summary.metrics["hit@5"]
    return report


def pool_info(pool: Pool, recipe: Recipe, summary: Summary, bank: Bank | None, shard_size: int) -> dict[str, Any]:
    """results.json 'pool': what the candidates were, so a reader can tell two pools apart."""
    return {
        "split": pool.split,
        "size": pool.size,
        "exclude_context": recipe.eval.exclude_context,
        "exclude_len": exclusion_len(recipe) if recipe.eval.exclude_context else 0,
        "sha256": pool.sha256(),
        "target_in_pool": True,
        "search_depth": summary.faiss.depth,
        "shards": len(pool.shards),
        "shard_size": shard_rows(shard_size),
        "bank": bank.info() if bank is not None else None,
        "ties": "rank = 1 + #(candidates scoring >= the target's score): a tie counts against the target",
        "duplicates": "a candidate bit-identical to the target is a copy of it: as good a hit, left out of its rank",
    }


def _directions(name: str, kind: str, main: Summary, base: dict[str, BaselineSummary], prep: Prepared,
                queries: Queries) -> dict[str, Any]:
    """Direction diagnostics of the model, each baseline and the oracle / copy_last bounds."""
    samples = queries.samples
    chain_end = prep.store.offsets[samples.chain + 1]
    rows = {name: {"kind": kind, **direction_row(main.pred, prep, queries)}}
    for b, summary in base.items():
        rows.setdefault(b, {"kind": "baseline", **summary.direction})
    rows.update(diagnostics.bounds(prep.unit, samples.target, samples.start, chain_end,
                                   copy_last="copy_last" not in rows))
    return diagnostics.summary(rows)


def excluded_rows(queries: Queries, pool: Pool, recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """Each query's excluded candidates as global rows ``[lo, hi)`` (the rows just before its target)."""
    width = queries.excl_hi - queries.excl_lo if recipe.eval.exclude_context else np.zeros(len(queries), np.int64)
    hi = queries.samples.target.astype(np.int64)
    return hi - width, hi.copy()


def _arrays(main: Summary, queries: Queries, pool: Pool, recipe: Recipe,
            t_rank: np.ndarray, t_gap: np.ndarray) -> dict[str, np.ndarray]:
    """predictions.npz: enough per query to recompute any metric and re-check consistency."""
    lo, hi = excluded_rows(queries, pool, recipe)
    return {
        "queries": main.pred,
        "target_ids": queries.samples.target,
        "pool_ids": pool.ids,
        "context_ids": queries.context_rows,
        "excluded": np.array(recipe.eval.exclude_context),
        "exclude_lo": lo,
        "exclude_hi": hi,
        "rank": main.faiss.rank,
        "rank_with_context": main.faiss.rank_with_context,
        "retrieved": main.faiss.retrieved,
        "torch_rank": t_rank,
        "torch_gap": t_gap,
        "copies": main.faiss.copies,
        "candidates": queries.candidates(recipe.eval.exclude_context, pool.size),
        "par_pred": main.extra["par_pred"],
        "par_true": main.extra["par_true"],
    }


@dataclass
class EvalSplit:
    """The fixed side of evaluating on one split: the pool and queries every predictor is ranked against."""

    prep: Prepared
    recipe: Recipe
    device: torch.device
    split: str
    pool: Pool
    queries: Queries
    unit_t: torch.Tensor
    bank: Bank | None = None
    shard_size: int = 0
    t0: float = field(default_factory=time.perf_counter)


def make_eval_split(prep: Prepared, recipe: Recipe, device: torch.device, split: str = "test",
                    bank: Bank | None = None, shard_size: int = 0) -> EvalSplit:
    """The split's pool (plus a bank's vectors, searched in shards of ``shard_size``) and its queries."""
    pool = pool_for(prep, recipe, split, bank, shard_size)
    return EvalSplit(prep, recipe, device, split, pool, queries_for(prep, recipe, split, pool),
                     torch.from_numpy(prep.unit).to(device), bank, shard_size)


def evaluate_model(
    model_name: str,
    model: torch.nn.Module,
    prep: Prepared,
    recipe: Recipe,
    device: torch.device,
    split: str = "test",
    log: Log = print,
    bank: Bank | None = None,
    shard_size: int = 0,
    ann: str | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Evaluate a model and every baseline on ``split``; return results and per-query arrays.

    ``bank`` adds an external bank's vectors to the pool as extra candidates;
    ``shard_size`` searches the pool in shards (same ranks as one flat index);
    ``ann`` ('ivfpq') also reports a compressed index's recall against the
    exact search, which stays the headline.
    """
    s = make_eval_split(prep, recipe, device, split, bank, shard_size)
    pred_t = predict_queries(model_name, model, s.unit_t, s.queries, recipe, split)
    entry = registry.REGISTRY.get(model_name)
    return evaluate_predictions(model_name, pred_t, s, log, ann, kind=entry.kind if entry else "model", model=model)


def evaluate_predictions(
    name: str, pred_t: torch.Tensor, s: EvalSplit, log: Log = print, ann: str | None = None, kind: str = "model",
    model: torch.nn.Module | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Predictions ``[n, D]`` (unit vectors, one per query of ``s``) and every baseline, evaluated the same way.

    The model's path and ``lvmbench score`` (predictions made elsewhere, ``model`` None: no model
    latency) both end here.
    """
    recipe, pool, queries = s.recipe, s.pool, s.queries
    log(f"scoring {name} and {len(recipe.eval.baselines)} baselines on {len(queries)} {s.split} queries "
        f"against a pool of {pool.size:,} ({recipe.eval.pool}"
        + (f" + bank of {s.bank.size:,}" if s.bank is not None else "")
        + (f"; {len(pool.shards)} shards" if len(pool.shards) > 1 else "") + ")")
    progress = Progress(2 + len(recipe.eval.baselines), "scoring", log, "steps")
    main = rank_and_summarise_by_recipe(name, pred_t.cpu().numpy().astype(np.float32), s.prep, recipe, pool, queries)
    progress.update()
    cons, t_rank, t_gap = rerank_and_check(pred_t, pool, queries, main, recipe, s.device)
    progress.update()
    progress.set_postfix(last="consistency check")
    arrays = _arrays(main, queries, pool, recipe, t_rank, t_gap)
    base = summarise_baselines(s.prep, recipe, s.unit_t, pool, queries, s.device, s.split, progress, log)
    progress.close()
    arrays.update({f"rank__{b}": sc.rank for b, sc in base.items()})
    arrays.update({f"par_pred__{b}": sc.par_pred for b, sc in base.items()})
    results: dict[str, Any] = {
        "pool": pool_info(pool, recipe, main, s.bank, s.shard_size),
        "metrics": main.metrics,
        "metrics_with_context": main.metrics_with_context,
        "baselines": {b: sc.metrics for b, sc in base.items()},
        "consistency": cons,
        "diagnostics": _directions(name, kind, main, base, s.prep, queries),
        **_lifts(main, base, recipe),
    }
    if "copies_against" in main.extra:
        results["copies"] = {
            "queries": main.metrics["queries_with_copies"],
            "rule": "a candidate bit-identical to the target is as good a hit as the target (left out of its rank)",
            "metrics_copies_against": main.extra["copies_against"],
        }
    if ann is not None:
        from lvmbench.evaluate.ann import ann_report

        q = queries if recipe.eval.exclude_context else without_exclusion(queries)
        results["ann"] = ann_report(ann, pool, q, main.pred, main.faiss, recipe.eval.ks, recipe.seed, log)
    results["queries"] = query_record(queries, s.split)
    # predictions made elsewhere have no model to time, and their search latency is the pool's, not theirs
    results["latency"] = _latency(model, main.pred, s) if recipe.eval.latency_calls and model is not None else None
    results["timings"] = {"score_s": time.perf_counter() - s.t0}
    return results, arrays


def query_record(queries: Queries, split: str) -> dict[str, Any]:
    """results.json 'queries': which split they come from, how many, and the hash of their target rows."""
    return {"split": split, "n": len(queries), "sha256": sha256_arrays(queries.samples.target.astype(np.int64))}


def _latency(model: torch.nn.Module | None, pred: np.ndarray, s: EvalSplit) -> dict[str, Any]:
    e = s.recipe.eval
    return latency.measure(model, s.unit_t, s.queries.samples, s.pool, pred, s.recipe.data.context_len,
                           (1, s.recipe.train.eval_batch), e.latency_calls, e.latency_warmup, e.latency_seconds)


def _lifts(main: Summary, base: dict[str, BaselineSummary], recipe: Recipe) -> dict[str, Any]:
    """The best baseline by Hit@5 and the lift over it, plus the paired test against every baseline."""
    if not base:
        return {}
    best = max(base, key=lambda b: base[b].metrics["hit@5"])
    mine = headline_rank(main, recipe)
    over = {b: paired(mine, sc.rank) for b, sc in base.items()}
    return {"best_baseline": {"name": best, "hit@5": base[best].metrics["hit@5"]},
            "lift": {"over": best, **over[best]}, "lift_over": over}
