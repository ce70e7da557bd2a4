"""Every baseline of a run, ranked and summarised through the model's path and cached by what defines it.

The baselines' predictions come from one pass over the queries (each batch
of contexts gathered once for all of them) and their ranks from counting
(:func:`lvmbench.evaluate.ranking.exact_ranks`: the same ranks a top-k search
gives, without the search).  Their summaries depend only on the benchmark and
the recipe fields that build and score them, so they are cached
(:mod:`lvmbench.evaluate.baseline_cache`, verified on every read) and a later
``run``, ``eval`` or ``score`` on the same benchmark reuses them.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from lvmbench.config import Recipe
from lvmbench.data.prepare import Prepared
from lvmbench.evaluate import baseline_cache as cache
from lvmbench.evaluate import diagnostics
from lvmbench.evaluate.baseline_cache import BaselineSummary
from lvmbench.evaluate.index import Pool
from lvmbench.evaluate.queries import Queries
from lvmbench.evaluate.summary import rank_and_summarise_by_recipe
from lvmbench.evaluate.inference import predict_queries_many
from lvmbench.models.build import build_model
from lvmbench.progress import Progress

Log = Callable[[str], None]


def cache_inputs(prep: Prepared, recipe: Recipe, pool: Pool, queries: Queries, split: str,
                 device: torch.device) -> dict[str, Any]:
    """Everything the baselines' summaries depend on (the cache key hashes it with the code and libraries)."""
    r = recipe.to_dict()
    ev = {k: v for k, v in r["eval"].items() if not k.startswith("latency")}
    return {"dataset": prep.store.sha256, "split": prep.report["split"]["sha256"], "scored_split": split,
            "pool": pool.sha256(), "queries": cache.queries_hash(queries.samples.target, queries.excl_lo,
                                                                 queries.excl_hi),
            "data": r["data"], "eval": ev, "seed": recipe.seed, "eval_batch": recipe.train.eval_batch,
            "device": device.type}


def direction_row(pred: np.ndarray, prep: Prepared, queries: Queries) -> dict[str, Any]:
    samples = queries.samples
    return diagnostics.direction(pred, prep.unit, samples.target, samples.start, prep.store.offsets[samples.chain + 1])


def summarise_baselines(prep: Prepared, recipe: Recipe, unit_t: torch.Tensor, pool: Pool, queries: Queries,
                        device: torch.device, split: str, progress: Progress | None = None,
                        log: Log | None = None) -> dict[str, BaselineSummary]:
    """Every baseline of ``eval.baselines`` on the same queries and pool (from the cache when it holds them)."""
    names = list(recipe.eval.baselines)
    if not names:
        return {}
    key = cache.key(cache_inputs(prep, recipe, pool, queries, split, device)) if cache.enabled() else None
    cached = cache.load(key, len(queries)) if key else None
    if cached is not None and list(cached) == names:
        if log is not None:
            log(f"baselines: {len(names)} reused from the cache (entry {key[:12]}, verified)")
        return cached
    out = _compute(names, prep, recipe, unit_t, pool, queries, device, split, progress)
    if key:
        cache.store(key, out)
    return out


def _compute(names: list[str], prep: Prepared, recipe: Recipe, unit_t: torch.Tensor, pool: Pool, queries: Queries,
             device: torch.device, split: str, progress: Progress | None) -> dict[str, BaselineSummary]:
    models = {name: build_model(name, prep, recipe).to(device) for name in names}
    preds = predict_queries_many(models, unit_t, queries, recipe, split)
    out: dict[str, BaselineSummary] = {}
    for name, model in models.items():
        pred = preds[name].cpu().numpy().astype(np.float32)
        sc = rank_and_summarise_by_recipe(name, pred, prep, recipe, pool, queries, retrieval=False)
        if hasattr(model, "describe"):  # a fitted baseline records its coefficients
            sc.metrics["fit"] = model.describe()
        out[name] = BaselineSummary(sc.metrics, sc.faiss.rank, sc.extra["par_pred"], direction_row(pred, prep, queries))
        if progress is not None:
            progress.update()
            progress.set_postfix(last=name)
    return out

