"""Compressed indexes for banks beyond RAM, reported next to exact search, never instead of it.

``lvmbench eval --ann ivfpq`` builds FAISS ``IVF<nlist>,PQ<m>`` over the same
pool, searches the model's predictions, and reports what the compression
costs: recall@10 against the exact top-10 (same exclusions), Hit@K through
the compressed index, its code size and timings.  The headline numbers stay
those of the exact search: an ANN index can lose the target, and a score that
depends on the index's luck is not the model's.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import faiss
import numpy as np

from lvmbench.errors import UsageError
from lvmbench.evaluate.index import Pool
from lvmbench.evaluate.queries import Queries
from lvmbench.evaluate.ranking import FaissRanks, first_kept

KINDS = ("ivfpq",)
NPROBE = 16
TRAIN_PER_CENTROID = 39  # FAISS warns below 39 training points per centroid


def ivfpq_spec(n: int, dim: int) -> tuple[int, int, int]:
    """``(nlist, m, nbits)`` for ``n`` vectors: nlist ~ 4 sqrt(n), ~8 dims per sub-quantizer, 8-bit codes.

    Small pools get fewer lists and bits so that k-means has enough points
    per centroid (PQ needs 2**nbits centroids per sub-space).
    """
    nlist = max(1, min(int(4 * math.sqrt(n)), n // TRAIN_PER_CENTROID))
    m = max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
    nbits = max(1, min(8, int(math.log2(max(2, n // TRAIN_PER_CENTROID)))))
    return nlist, m, nbits


def _sample_rows(pool: Pool, count: int, seed: int) -> np.ndarray:
    rows = np.sort(np.random.default_rng(seed).choice(pool.size, size=min(count, pool.size), replace=False))
    shard = pool.shard_of(rows)
    return np.concatenate([pool.shards[j][rows[shard == j] - pool.starts[j]] for j in np.unique(shard)])


def ann_report(
    kind: str, pool: Pool, queries: Queries, pred: np.ndarray, exact: FaissRanks, ks: list[int], seed: int,
    log: Callable[[str], None] = print, nprobe: int = NPROBE,
) -> dict[str, Any]:
    """Build the compressed index over ``pool``, search ``pred``, compare with the exact result."""
    if kind not in KINDS:
        raise UsageError(f"--ann {kind!r}: unknown index (choose from {', '.join(KINDS)})")
    nlist, m, nbits = ivfpq_spec(pool.size, pool.dim)
    spec = f"IVF{nlist},PQ{m}x{nbits}"
    log(f"ann: building {spec} over {pool.size:,} vectors (recall reported against exact search)")
    t0 = time.perf_counter()
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(pool.dim), pool.dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.pq.cp.seed = seed
    train_n = max(nlist, 2**nbits) * TRAIN_PER_CENTROID * 4
    index.train(_sample_rows(pool, train_n, seed))
    for _, shard in pool.blocks():
        for s in range(0, len(shard), 65_536):
            index.add(np.ascontiguousarray(shard[s : s + 65_536]))
    build_s = time.perf_counter() - t0
    index.nprobe = min(nprobe, nlist)
    n_excl = queries.excl_hi - queries.excl_lo
    kmax = max(ks + [10])
    k = int(min(pool.size, kmax + (n_excl.max() if len(n_excl) else 0)))
    t0 = time.perf_counter()
    _, ids = index.search(np.ascontiguousarray(pred, dtype=np.float32), k)
    search_s = time.perf_counter() - t0
    excluded = (ids >= queries.excl_lo[:, None]) & (ids < queries.excl_hi[:, None]) | (ids < 0)
    top = first_kept(ids, excluded, kmax)
    exact10, ann10 = exact.top[:, :10], top[:, :10]
    overlap = np.array([len(np.intersect1d(a[a >= 0], b[b >= 0])) for a, b in zip(ann10, exact10)])
    denom = np.maximum((exact10 >= 0).sum(axis=1), 1)
    hit_pos = np.where(
        top == queries.target_pos[:, None], np.arange(1, top.shape[1] + 1), np.iinfo(np.int64).max
    ).min(axis=1)
    return {
        "index": spec,
        "nprobe": int(min(nprobe, nlist)),
        "code_bytes": int(pool.size * math.ceil(m * nbits / 8)),
        "flat_bytes": int(pool.size * pool.dim * 4),
        "recall@10": float((overlap / denom).mean()) if len(overlap) else float("nan"),
        **{f"hit@{kk}": float((hit_pos <= kk).mean()) if len(hit_pos) else float("nan") for kk in ks},
        **{f"exact_hit@{kk}": float((exact.rank <= kk).mean()) if len(exact.rank) else float("nan") for kk in ks},
        "build_s": build_s,
        "search_s": search_s,
        "note": "reported only; the headline metrics come from exact search",
    }
