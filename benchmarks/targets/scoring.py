"""Target 1, scoring overhead: lvmbench's test-split scoring (``predict_and_summarise``) <= 1.10 x a bare
model forward + ``IndexFlatIP.search`` over the same pool, timed interleaved in one process."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from benchmarks.targets.common import Log, Result, default_store, interleaved, result
from lvmbench.config import Recipe
from lvmbench.data.prepare import prepare
from lvmbench.data.samples import gather_batch
from lvmbench.data.store import ChainStore
from lvmbench.data.synth import write_synth
from lvmbench.evaluate import metrics
from lvmbench.evaluate.index import search
from lvmbench.evaluate.queries import make_queries
from lvmbench.evaluate.ranking import faiss_ranks
from lvmbench.evaluate.inference import predict_all
from lvmbench.models.predict import predict
from lvmbench.evaluate.evaluation import pool_for, predict_and_summarise
from lvmbench.models.build import build_model


def scoring_case(label: str, store: ChainStore, model_name: str, rounds: int) -> dict[str, Any]:
    recipe = Recipe()
    prep = prepare(store, recipe)
    torch.manual_seed(recipe.seed)
    model = build_model(model_name, prep, recipe).eval()
    unit_t = torch.from_numpy(prep.unit)
    pool = pool_for(prep, recipe, "test")
    queries = make_queries(prep.samples["test"], pool, recipe.data.context_len)
    n = len(queries)
    n_excl = int((queries.excl_hi - queries.excl_lo).max())
    depth = recipe.eval.search_depth
    k_eq = int(min(pool.size, depth + n_excl))
    T, B = recipe.data.context_len, recipe.train.eval_batch
    s = queries.samples
    batches = [gather_batch(unit_t, s.target[i : i + B], s.start[i : i + B], T)[:2] for i in range(0, n, B)]

    @torch.no_grad()
    def bare_forward() -> np.ndarray:
        return torch.cat([predict(model, c, ln) for c, ln in batches]).numpy()

    pred = np.ascontiguousarray(bare_forward(), dtype=np.float32)
    fr = faiss_ranks(pool, queries, pred, depth=depth)
    # the bare side: a plain IndexFlatIP over the same vectors (lvmbench itself searches the pool
    # arrays with faiss.knn, BLAS kernel pinned, and keeps no index copy)
    bare_index = faiss.IndexFlatIP(pool.dim)
    bare_index.add(pool.vectors)
    cand = queries.candidates(True, pool.size)
    e = recipe.eval
    fns = {
        "lvmbench_predict_and_summarise": lambda: predict_and_summarise(model_name, model, prep, recipe, unit_t, pool,
                                                                        queries),
        "bare_forward": bare_forward,
        "bare_search_k_equal": lambda: bare_index.search(pred, k_eq),
        "bare_search_k10": lambda: bare_index.search(pred, 10),
        "part_lvmbench_search_k_equal": lambda: search(pool, pred, k_eq),
        "part_predict_all": lambda: predict_all(model, unit_t, s, T, B),
        "part_faiss_ranks": lambda: faiss_ranks(pool, queries, pred, depth=depth),
        "part_summarize_x1": lambda: metrics.summarize(fr.rank, cand, e.ks, e.bootstrap, recipe.seed),
    }
    t = interleaved(fns, rounds)
    bare_eq = t["bare_forward"] + t["bare_search_k_equal"]
    bare_10 = t["bare_forward"] + t["bare_search_k10"]
    return {
        "case": label, "model": model_name, "dataset": store.name, "queries": n, "pool": pool.size,
        "k_equal": k_eq, "exact_fallback_queries": fr.exact_fallback, "seconds": t,
        "ratio_vs_k_equal": t["lvmbench_predict_and_summarise"] / bare_eq,
        "ratio_vs_k10": t["lvmbench_predict_and_summarise"] / bare_10,
        "overhead_s_vs_k_equal": t["lvmbench_predict_and_summarise"] - bare_eq,
    }


def target_scoring(rounds: int, log: Log) -> list[Result]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        synth = write_synth(Path(tmp) / "synth400", n_chains=400, dim=384, seed=0)
        cases = [
            ("python-docs test split, memory_gru", default_store(log), "memory_gru"),
            ("synth 400 chains test split, memory_gru", synth, "memory_gru"),
            ("python-docs test split, amn (cheap model: worst case for overhead)", default_store(log), "amn"),
        ]
        for label, store, model_name in cases:
            log(f"[scoring] {label}")
            c = scoring_case(label, store, model_name, rounds)
            log(f"  ratio vs k={c['k_equal']}: {c['ratio_vs_k_equal']:.3f}; vs k=10: {c['ratio_vs_k10']:.3f}; "
                + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in c["seconds"].items()))
            out.append(result("1 scoring overhead", c["case"], c["ratio_vs_k_equal"], 1.10, "lower", c))
    return out


def run(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_scoring(args.rounds, log)
