"""FAISS search over L2-normalised pools: exact flat, IVF-Flat and HNSW.

Timed the FAISS/ann-benchmarks way: threads fixed and recorded, indexes built
and warmed up outside the timing, one query per call (latency p50/p99 from
every round; FAISS searches a single query on one core) and batches of 256
(throughput; above 20 queries FAISS's flat search switches to its BLAS path).
ANN indexes record recall@10 against the exact flat index on 1,000 held-out
queries.  Pools are clustered random vectors (``unit_rows``, 100 per centre,
``SPREAD`` 1.5: a vector's cosine to its centre is ~0.55, to a cluster mate
~0.3): uniform random vectors have no neighbourhood structure and would
understate ANN recall, tight clusters would make every index look perfect.

Default: 10k x 384.  ``--bench-full`` adds D = 768, 100k and 1M pools (1M x 768
is 3 GB per index copy; HNSW construction at 1M takes a long time on 2 cores).

``test_lvmbench_search_sharded`` (default suite): lvmbench's own exact search
(``evaluate.index.search``: ``faiss.knn`` on the pool arrays, BLAS kernel
pinned, shards searched one after another and their top-k merged) over one
100k x 384 pool held whole or in shards of 32,768, 256 queries, k = 10 and
1,000; ``extra_info`` records whether the sharded result is bit for bit the
unsharded one (asserted) and the recall@10 of both against an ``IndexFlatIP``.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import pytest

from benchmarks._common import percentile, stats_of, thread_info, timed, unit_rows
from lvmbench.evaluate.index import build_pool, search

K = 10
BATCH = 256
N_EVAL = 1000  # held-out queries for recall@10
SINGLE_BUDGET_S = 2.0  # timed seconds per single-query benchmark (rounds derived from a probe)
BATCH_BUDGET_S = 3.0
IVF_NPROBE = 16
HNSW_M = 32
HNSW_EF_SEARCH = 64
HNSW_EF_CONSTRUCTION = 40
SPREAD = 1.5

SIZES = [(10_000, 384), (10_000, 768), (100_000, 384), (100_000, 768), (1_000_000, 384), (1_000_000, 768)]
KINDS = ["flat", "ivf_flat", "hnsw"]
MODES = ["single", f"batch{BATCH}"]


@dataclass
class Built:
    key: tuple[int, int, str]
    index: faiss.Index
    params: dict[str, Any]
    build_s: float
    recall_at_10: float | None


_pool: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_index: dict[tuple[int, int, str], Built] = {}


def pool_data(n: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pool, queries, exact top-10 ids of the queries); only the latest size is kept in memory."""
    key = (n, dim)
    if key not in _pool:
        _pool.clear()
        _index.clear()
        pool = unit_rows(n, dim, seed=0, spread=SPREAD)
        # queries from the same distribution, never in the pool
        queries = unit_rows(N_EVAL + BATCH, dim, seed=0, n_centres=max(1, n // 100), sample_seed=1, spread=SPREAD)
        flat = faiss.IndexFlatIP(dim)
        flat.add(pool)
        _, truth = flat.search(queries[:N_EVAL], K)
        _pool[key] = (pool, queries, truth)
    return _pool[key]


def build(n: int, dim: int, kind: str) -> Built:
    key = (n, dim, kind)
    if key in _index:
        return _index[key]
    _index.clear()  # one index in memory at a time (1M x 768 is 3 GB per copy)
    pool, queries, truth = pool_data(n, dim)
    t0 = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(pool)
        params: dict[str, Any] = {}
    elif kind == "ivf_flat":
        nlist = int(math.sqrt(n))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = pool[np.random.default_rng(2).choice(n, size=min(n, 50 * nlist), replace=False)]
        index.train(sample)
        index.add(pool)
        index.nprobe = IVF_NPROBE
        params = {"nlist": nlist, "nprobe": IVF_NPROBE, "train_points": len(sample)}
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(pool)
        index.hnsw.efSearch = HNSW_EF_SEARCH
        params = {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}
    else:
        raise ValueError(kind)
    build_s = time.perf_counter() - t0
    recall = None
    if kind != "flat":
        _, got = index.search(queries[:N_EVAL], K)
        recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(got.tolist(), truth.tolist())]))
    _index[key] = Built(key, index, params, build_s, recall)
    return _index[key]


CASES = [
    pytest.param(n, dim, kind, mode, id=f"{kind}-{mode}-{n // 1000}k-D{dim}",
                 marks=[pytest.mark.bench_full] if (n, dim) != (10_000, 384) else [])
    for (n, dim), kind, mode in itertools.product(SIZES, KINDS, MODES)
]


@pytest.mark.parametrize(("n", "dim", "kind", "mode"), CASES)
def test_search(benchmark, n: int, dim: int, kind: str, mode: str, bench_threads: int) -> None:
    built = build(n, dim, kind)
    _, queries, _ = pool_data(n, dim)
    single = mode == "single"
    if single:
        stream = itertools.cycle(range(N_EVAL))

        def setup():
            return (queries[next(stream)][None, :], K), {}
    else:
        batch = np.ascontiguousarray(queries[N_EVAL : N_EVAL + BATCH])

        def setup():
            return (batch, K), {}
    # warm up, then size the rounds to a time budget from a probe
    for _ in range(3):
        built.index.search(*setup()[0])
    probe = min(timed(lambda: built.index.search(*setup()[0]))[0] for _ in range(3))
    if single:
        rounds = int(min(2000, max(50, SINGLE_BUDGET_S / max(probe, 1e-6))))
    else:
        rounds = int(min(200, max(5, BATCH_BUDGET_S / max(probe, 1e-6))))

    benchmark.group = f"search {n // 1000}k x {dim} {mode}"
    benchmark.extra_info.update({
        "index": kind,
        "pool": n,
        "dim": dim,
        "queries_per_call": 1 if single else BATCH,
        "k": K,
        "threads": bench_threads,
        **thread_info(),
        "build_s": built.build_s,
        **built.params,
        "recall@10_vs_flat": 1.0 if kind == "flat" else built.recall_at_10,
        "data": f"clustered random unit vectors (100 per centre, spread {SPREAD}), queries from the same distribution",
    })
    scores, ids = benchmark.pedantic(built.index.search, setup=setup, rounds=rounds, warmup_rounds=1)
    assert ids.shape == (1 if single else BATCH, K)
    stats = stats_of(benchmark)
    if stats:
        times = stats.data
        if single:
            benchmark.extra_info["latency_p50_ms"] = percentile(times, 50) * 1e3
            benchmark.extra_info["latency_p99_ms"] = percentile(times, 99) * 1e3
        benchmark.extra_info["queries_per_s"] = (1 if single else BATCH) / stats.median
        if kind == "flat":
            benchmark.extra_info["gflops_per_s"] = 2.0 * n * dim * (1 if single else BATCH) / stats.median / 1e9


SHARD_POOL = (100_000, 384)
SHARD_SIZE = 32_768
_sharded: dict[str, Any] = {}


def sharded_data() -> dict[str, Any]:
    """The 100k x 384 pool, 256 queries, the unsharded lvmbench results and an IndexFlatIP top-10."""
    if not _sharded:
        n, dim = SHARD_POOL
        pool = unit_rows(n, dim, seed=0, spread=SPREAD)
        queries = unit_rows(BATCH, dim, seed=0, n_centres=max(1, n // 100), sample_seed=1, spread=SPREAD)
        whole = build_pool(pool, np.array([0, n]), np.array([0]), "full")
        flat = faiss.IndexFlatIP(dim)
        flat.add(pool)
        _sharded.update(pool=pool, queries=queries, truth=flat.search(queries, K)[1],
                        ref={k: search(whole, queries, k) for k in (K, 1000)})
    return _sharded


@pytest.mark.parametrize("k", [K, 1000])
@pytest.mark.parametrize("shard_size", [0, SHARD_SIZE], ids=["one-shard", f"shards-{SHARD_SIZE}"])
def test_lvmbench_search_sharded(benchmark, shard_size: int, k: int, bench_threads: int) -> None:
    d = sharded_data()
    n, dim = SHARD_POOL
    pool = build_pool(d["pool"], np.array([0, n]), np.array([0]), "full", shard_size=shard_size)
    q = d["queries"]
    search(pool, q, k)
    probe = min(timed(lambda: search(pool, q, k))[0] for _ in range(2))
    rounds = int(min(50, max(3, BATCH_BUDGET_S / max(probe, 1e-6))))
    benchmark.group = f"lvmbench search {n // 1000}k x {dim}, {BATCH} queries, k={k}"
    scores, ids = benchmark.pedantic(search, args=(pool, q, k), rounds=rounds, warmup_rounds=0)
    ref_s, ref_i = d["ref"][k]
    identical = bool(np.array_equal(scores, ref_s) and np.array_equal(ids, ref_i))
    recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids[:, :K].tolist(), d["truth"].tolist())]))
    benchmark.extra_info.update({
        "index": "lvmbench.evaluate.index.search (faiss.knn, BLAS pinned)",
        "pool": n, "dim": dim, "queries_per_call": BATCH, "k": k, "threads": bench_threads, **thread_info(),
        "shard_size": shard_size, "shards": len(pool.shards),
        "bitwise_equal_to_one_shard": identical, "recall@10_vs_IndexFlatIP": recall,
        "data": f"clustered random unit vectors (100 per centre, spread {SPREAD}), queries from the same distribution",
    })
    stats = stats_of(benchmark)
    if stats:
        benchmark.extra_info["queries_per_s"] = BATCH / stats.median
        benchmark.extra_info["gflops_per_s"] = 2.0 * n * dim * BATCH / stats.median / 1e9
    assert identical, "a sharded search must return the unsharded result bit for bit"
    assert recall >= 0.999  # IndexFlatIP's own kernel choice may order a last-bit tie differently
