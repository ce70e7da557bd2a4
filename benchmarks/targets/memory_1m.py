"""Target 4 at scale: scoring against a 1M x 768 float32 pool peaks below 1.5 x the pool's bytes
(~7 GB RAM; not in 'all').  Measured in a fresh process (``_memory-1m``) for a clean peak RSS."""

from __future__ import annotations

import argparse
import json
import subprocess
from typing import Any

import numpy as np
import torch

from benchmarks._common import available_cores, reset_peak_rss, rss_bytes, set_threads, timed, unit_rows
from benchmarks.targets.common import GB, Log, Result, child_argv, last_json_line, result
from lvmbench.config import Recipe
from lvmbench.data.samples import make_samples
from lvmbench.evaluate.index import build_pool
from lvmbench.evaluate.queries import make_queries
from lvmbench.evaluate.ranking import torch_ranks
from lvmbench.evaluate.summary import rank_and_summarise

CHILD = "memory-1m"


def _memory_1m(n: int, dim: int, n_queries: int) -> dict[str, Any]:
    """Run in a fresh process: RSS of each phase of scoring against an n x dim pool (pool = every vector).

    The pool holds its vectors once (``build_pool`` shares ``unit``; search runs ``faiss.knn`` on
    the array, no ``IndexFlatIP`` copy), so ``build_pool`` should add next to nothing."""
    phases: dict[str, Any] = {"start": rss_bytes()}
    unit = unit_rows(n, dim, seed=0)  # stands for prep.unit (float32, L2-normalised, every vector)
    chain_len = 100
    offsets = np.arange(0, n + 1, chain_len, dtype=np.int64)
    phases["unit"] = rss_bytes()
    reset_peak_rss()
    pool = build_pool(unit, offsets, np.arange(len(offsets) - 1), "full")
    phases["build_pool"] = rss_bytes()
    samples = make_samples(offsets, np.arange(len(offsets) - 1), 1)
    keep = np.sort(np.random.default_rng(0).choice(len(samples), size=n_queries, replace=False))
    samples = samples.subset(keep)
    queries = make_queries(samples, pool, 100)
    rng = np.random.default_rng(1)
    # a noisy copy of the target (cos ~0.45): most targets rank high, some need the exact fallback
    noise = rng.standard_normal((n_queries, dim), dtype=np.float32) * np.float32(2.0 / np.sqrt(dim))
    pred = unit[samples.target] + noise
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    recipe = Recipe()
    e = recipe.eval
    reset_peak_rss()
    t, scored = timed(lambda: rank_and_summarise("m", pred, pool, queries, unit, e.ks, e.search_depth, e.bootstrap, 0))
    phases["rank_and_summarise"] = {**rss_bytes(), "seconds": t, "exact_fallback": scored.faiss.exact_fallback,
                                   "hit@5": scored.metrics["hit@5"]}
    reset_peak_rss()
    t, (rank, _) = timed(lambda: torch_ranks(torch.from_numpy(pred), torch.from_numpy(pool.vectors), queries))
    phases["torch_ranks"] = {**rss_bytes(), "seconds": t, "block": min(n_queries, max(1, (1 << 28) // (n * 4)), 1024),
                             "ranks_equal_faiss": bool(np.array_equal(rank, scored.faiss.rank))}
    pool_bytes = n * dim * 4
    peak = max(p["peak_rss"] for p in phases.values())
    return {"n": n, "dim": dim, "queries": n_queries, "pool_bytes": pool_bytes, "phases": phases,
            "peak_rss": peak, "peak_over_pool": peak / pool_bytes,
            "scoring_peak_minus_unit_over_pool": (peak - phases["unit"]["rss"]) / pool_bytes,
            "pool_vectors_aliases_unit": bool(np.shares_memory(pool.vectors, unit))}


def child_main(args: list[str]) -> str:
    """``_memory-1m N DIM QUERIES``: the child's one JSON line."""
    set_threads(available_cores())
    return json.dumps(_memory_1m(int(args[0]), int(args[1]), int(args[2])))


def target_memory_1m(log: Log, n: int = 1_000_000, dim: int = 768, n_queries: int = 1024) -> list[Result]:
    proc = subprocess.run(child_argv(CHILD, str(n), str(dim), str(n_queries)), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"memory-1m child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    c = last_json_line(proc.stdout)
    ph = c["phases"]
    log(f"[memory-1m] pool {c['pool_bytes'] / GB:.2f} GB; RSS: start {ph['start']['rss'] / GB:.2f}, +unit "
        f"{ph['unit']['rss'] / GB:.2f}, +build_pool {ph['build_pool']['rss'] / GB:.2f}, peak in rank_and_summarise "
        f"{ph['rank_and_summarise']['peak_rss'] / GB:.2f}, peak in torch_ranks ({ph['torch_ranks']['block']} "
        f"queries/block) {ph['torch_ranks']['peak_rss'] / GB:.2f} GB; peak / pool = {c['peak_over_pool']:.2f} "
        f"(no index copy: the pool is prep.unit itself: {c['pool_vectors_aliases_unit']})")
    return [result("4 scoring memory at 1M x 768", "peak RSS / pool bytes", c["peak_over_pool"], 1.5, "lower", c)]


def run(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_memory_1m(log)
