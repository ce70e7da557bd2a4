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
