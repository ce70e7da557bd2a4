"""Target 2, flat-search FLOP rate: lvmbench's batched exact search (``index.search``) >= 70 % of
the FLOP rate of a float32 matmul of the same shapes; FAISS's ``IndexFlatIP`` (default kernel
choice and BLAS forced) in the details, to show what pinning the BLAS kernel buys."""

from __future__ import annotations

import argparse
from typing import Any, Callable

import faiss
import numpy as np
import torch

from benchmarks._common import unit_rows
from benchmarks.targets.common import GB, Log, Result, interleaved, result
from lvmbench.evaluate.index import Pool, search

FLAT_SIZES = [(10_000, 384), (100_000, 384), (100_000, 768)]


def _forced_blas(index: faiss.IndexFlatIP, q: np.ndarray, k: int) -> Callable[[], Any]:
    """``index.search`` with FAISS's BLAS kernel forced for this one call (threshold restored after)."""
    default_threshold = faiss.cvar.distance_compute_blas_threshold

    def run() -> Any:
        faiss.cvar.distance_compute_blas_threshold = 1  # FAISS 1.15 compares it with nq * d
        try:
            return index.search(q, k)
        finally:
            faiss.cvar.distance_compute_blas_threshold = default_threshold
    return run


def flat_case(n: int, dim: int, nq: int, rounds: int) -> dict[str, Any]:
    """lvmbench's exact search (``index.search``: ``faiss.knn``, BLAS kernel pinned) next to
    FAISS's ``IndexFlatIP`` with its default kernel choice and with BLAS forced, and plain matmuls."""
    pool = unit_rows(n, dim, seed=0)
    q = unit_rows(nq, dim, seed=0, n_centres=max(1, n // 100), sample_seed=1)
    index = faiss.IndexFlatIP(dim)
    index.add(pool)
    lvm_pool = Pool("flat", np.arange(n, dtype=np.int64), [pool])  # one shard, no copy
    out_np = np.empty((nq, n), dtype=np.float32)
    pool_t, q_t = torch.from_numpy(pool), torch.from_numpy(q)
    out_t = torch.empty(nq, n)
    default_threshold = faiss.cvar.distance_compute_blas_threshold
    fns = {
        "lvmbench_k10": lambda: search(lvm_pool, q, 10),
        "lvmbench_k1000": lambda: search(lvm_pool, q, 1000),
        "faiss_k10": lambda: index.search(q, 10),
        "faiss_k1000": lambda: index.search(q, 1000),
        "faiss_k10_blas_forced": _forced_blas(index, q, 10),
        "numpy_matmul": lambda: np.matmul(q, pool.T, out=out_np),
        "torch_mm": lambda: torch.mm(q_t, pool_t.T, out=out_t),
    }
    t = interleaved(fns, rounds, warmup=2)
    flops = 2.0 * nq * n * dim
    rate = {k: flops / v / GB for k, v in t.items()}
    ref = max(rate["numpy_matmul"], rate["torch_mm"])
    d_def, i_def = index.search(q, 10)
    d_blas, i_blas = _forced_blas(index, q, 10)()
    d_lvm, i_lvm = search(lvm_pool, q, 10)
    return {"pool": n, "dim": dim, "queries": nq, "flops": flops, "seconds": t, "gflops_per_s": rate,
            "reference": "numpy_matmul" if rate["numpy_matmul"] >= rate["torch_mm"] else "torch_mm",
            "share_lvmbench_k10": rate["lvmbench_k10"] / ref, "share_lvmbench_k1000": rate["lvmbench_k1000"] / ref,
            "share_k10": rate["faiss_k10"] / ref, "share_k1000": rate["faiss_k1000"] / ref,
            "share_k10_blas_forced": rate["faiss_k10_blas_forced"] / ref,
            "blas_path_by_default": bool(nq * dim >= default_threshold),
            "lvmbench_bitwise_equal_blas_forced": bool(np.array_equal(i_lvm, i_blas) and np.array_equal(d_lvm, d_blas)),
            "lvmbench_same_ids_as_default": bool(np.array_equal(i_lvm, i_def)),
            "forced_blas_same_ids": bool(np.array_equal(i_def, i_blas)),
            "forced_blas_max_abs_score_diff": float(np.abs(d_def - d_blas).max()),
            "faiss_blas_database_bs": faiss.cvar.distance_compute_blas_database_bs,
            "faiss_blas_query_bs": faiss.cvar.distance_compute_blas_query_bs,
            "faiss_blas_threshold": faiss.cvar.distance_compute_blas_threshold}


def target_flat(rounds: int, log: Log, sizes: list[tuple[int, int]] | None = None,
                n_queries: int = 256) -> list[Result]:
    out = []
    for n, dim in sizes or FLAT_SIZES:
        c = flat_case(n, dim, n_queries, rounds)
        log(f"[flat] {n} x {dim}, {n_queries} queries: "
            + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in c["gflops_per_s"].items())
            + f"; lvmbench search / best matmul: k=10 {c['share_lvmbench_k10']:.2f}, "
            f"k=1000 {c['share_lvmbench_k1000']:.2f} "
            f"(bitwise = FAISS with BLAS forced: {c['lvmbench_bitwise_equal_blas_forced']}); FAISS default k=10 "
            f"{c['share_k10']:.2f}, k=1000 {c['share_k1000']:.2f}, BLAS forced k=10 {c['share_k10_blas_forced']:.2f} "
            f"(BLAS path by default: {c['blas_path_by_default']})")
        out.append(result("2 flat search FLOP rate",
                          f"lvmbench search, {n // 1000}k x {dim}, {n_queries} queries, k=10",
                          c["share_lvmbench_k10"], 0.70, "higher", c))
    return out


def run(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_flat(args.rounds, log)
