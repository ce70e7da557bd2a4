"""Predictions -> ranks, two independent ways, and the proof that they agree.

* :func:`torch_ranks` is the training loop's way: one matrix product of the
  predictions against the pool tensor, rank = 1 + #(score > target score).
* :func:`faiss_ranks` is index retrieval: ``IndexFlatIP.search`` over the same
  pool; the headline numbers come from here.
* :func:`check_consistency` compares them query by query.  Two BLAS kernels
  may differ in the last bits, so a disagreement is allowed only where the
  target's score is within ``tie_tol`` of a competitor's.

Context exclusion: a query's own context vectors are consecutive rows of its
chain, hence one contiguous range of pool positions ``[lo, hi)``; excluding
them is a range test, never a gather.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lvmbench.data.samples import Samples, context_index, gather_batch
from lvmbench.evaluate import metrics
from lvmbench.evaluate.index import RESCORE_TOL, Pool, search, shard_index
from lvmbench.models.predict import predict


@dataclass
class Queries:
    """The scored queries of one split against one pool."""

    samples: Samples
    target_pos: np.ndarray  # int64 [n] pool position of each target
    excl_lo: np.ndarray  # int64 [n] first excluded pool position
    excl_hi: np.ndarray  # int64 [n] one past the last excluded position (lo == hi: none)
    context_rows: np.ndarray  # int64 [n, T] global context rows, -1 padded

    def __len__(self) -> int:
        return len(self.target_pos)

    def subset(self, keep: np.ndarray) -> "Queries":
        return Queries(self.samples.subset(keep), self.target_pos[keep], self.excl_lo[keep], self.excl_hi[keep],
                       self.context_rows[keep])

    def candidates(self, exclude: bool, pool_size: int) -> np.ndarray:
        return pool_size - (self.excl_hi - self.excl_lo if exclude else 0)


def make_queries(samples: Samples, pool: Pool, context_len: int) -> Queries:
    """Map targets and contexts into pool positions, asserting the target is there."""
    target_pos = pool.positions(samples.target)  # raises if a target is missing
    rows, lengths = context_index(samples.target, samples.start, context_len)
    first = samples.target - lengths
    lo = pool.positions(first) if len(first) else first
    hi = lo + lengths
    # the range trick needs the context rows contiguous in the pool
    if len(lo) and not np.array_equal(pool.ids[hi - 1], samples.target - 1):
        raise AssertionError("context rows are not contiguous in the pool")
    return Queries(samples=samples, target_pos=target_pos, excl_lo=lo, excl_hi=hi, context_rows=rows)


@torch.no_grad()
def predict_all(
    model: nn.Module,
    unit: torch.Tensor,
    samples: Samples,
    context_len: int,
    batch: int = 256,
) -> torch.Tensor:
    """``predict()`` for every sample, in order, in eval mode: ``[n, D]``."""
    was_training = model.training
    model.eval()
    if hasattr(model, "reset"):
        model.reset()  # seeded baselines restart their stream: same queries, same predictions
    out = []
    for s in range(0, len(samples), batch):
        ctx, lengths, _ = gather_batch(unit, samples.target[s : s + batch], samples.start[s : s + batch], context_len)
        out.append(predict(model, ctx, lengths).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, unit.shape[1])


PoolTensors = torch.Tensor | list[tuple[int, torch.Tensor]]


@torch.no_grad()
def torch_ranks(
    pred: torch.Tensor,
    pool_vectors: PoolTensors,
    queries: Queries,
    exclude: bool = True,
    block: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """The training loop's ranks and each target's score gap to its nearest competitor.

    ``pool_vectors`` is one tensor, or ``(first position, tensor)`` shards of a
    sharded pool.  Queries go in blocks of at most ``block``, fewer for pools
    above 65,536 candidates so one block's score matrix stays near 256 MB
    (~5 bytes per (query, candidate) pair in all): a 1M pool gets 67 queries
    a block.
    """
    shards = pool_vectors if isinstance(pool_vectors, list) else [(0, pool_vectors)]
    n = pred.shape[0]
    starts = np.array([s for s, _ in shards] + [shards[-1][0] + len(shards[-1][1])], dtype=np.int64)
    dev = shards[0][1].device
    pred = pred.to(dev)
    tpos = torch.from_numpy(queries.target_pos).to(dev)
    count = torch.zeros(n, dtype=torch.int64, device=dev)
    gap = torch.full((n,), float("inf"), dtype=torch.float64, device=dev)

    def visit(s: int, e: int, j: int, scores: torch.Tensor, ts_np: np.ndarray) -> None:
        start, vecs = shards[j]
        end = start + len(vecs)
        d = scores.sub_(torch.from_numpy(ts_np).to(dev)[:, None])  # in place: the product is not reused
        if exclude:
            # a query's excluded context is one contiguous range of pool positions; -inf there
            # counts as neither greater nor near (a gather-free mask, no [block, pool] bool array)
            lo = np.clip(queries.excl_lo[s:e] - start, 0, end - start)
            hi = np.clip(queries.excl_hi[s:e] - start, 0, end - start)
            for i in np.flatnonzero(hi > lo):
                d[i, lo[i] : hi[i]] = float("-inf")
        count[s:e] += (d > 0).sum(dim=1)
        d = d.abs_()
        t_b = tpos[s:e]
        inside = ((t_b >= start) & (t_b < end)).nonzero().flatten()
        d[inside, t_b[inside] - start] = float("inf")  # the target is not its own competitor
        gap[s:e] = torch.minimum(gap[s:e], d.min(dim=1).values.double())

    _by_shard(n, [len(t) for _, t in shards], starts, queries.target_pos, block,
              lambda s, e, j: pred[s:e] @ shards[j][1].T, visit)
    return (1 + count).cpu().numpy(), gap.cpu().numpy()


def _block_rows(shard_rows: int, cap: int) -> int:
    """Queries per block so one block's float32 score matrix against a shard stays near 256 MB."""
    return max(1, min(cap, (1 << 28) // max(shard_rows * 4, 1)))


def _by_shard(
    n: int, shard_rows: list[int], starts: np.ndarray, target_pos: np.ndarray, cap: int,
    product: Callable[[int, int, int], Any], visit: Callable[[int, int, int, Any, np.ndarray], None],
) -> None:
    """Drive an exact ranking shard by shard: ``visit(s, e, j, scores, target_scores)`` per (query block, shard).

    ``product(s, e, j)`` is queries ``s:e`` scored against shard ``j``.  A
    target's score must come from the very product that ranks it (a separate
    dot product can differ in the last bit and let the target outrank
    itself), and the same call on the same operands gives the same bits; so
    with several shards a first pass takes each target's score from its own
    shard, with the same query blocks as the counting pass.  Shards are the
    outer loop, so each is read once per pass however many query blocks
    there are (a memory-mapped bank bigger than RAM is read from disk twice
    at most, not once per block).  One shard: one pass, as before sharding.
    """
    shard = shard_index(starts, target_pos)

    def gather(scores: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if isinstance(scores, torch.Tensor):
            r, c = (torch.from_numpy(x).to(scores.device) for x in (rows, cols))
            return scores[r, c].cpu().numpy()
        return scores[rows, cols]

    ts = np.empty(n, dtype=np.float32)
    if len(shard_rows) > 1:
        for j in np.unique(shard):
            step = _block_rows(shard_rows[j], cap)
            for s in range(0, n, step):
                rows = np.flatnonzero(shard[s : s + step] == j)
                if len(rows):
                    sc = product(s, min(s + step, n), int(j))
                    ts[s + rows] = gather(sc, rows, target_pos[s + rows] - starts[j])
    for j, size in enumerate(shard_rows):
        step = _block_rows(size, cap)
        for s in range(0, n, step):
            e = min(s + step, n)
            sc = product(s, e, j)
            if len(shard_rows) == 1:
                ts[s:e] = gather(sc, np.arange(e - s), target_pos[s:e])
            visit(s, e, j, sc, ts[s:e])


@dataclass
class FaissRanks:
    rank: np.ndarray  # 1 + #(non-excluded score > target score)
    rank_with_context: np.ndarray  # the same with nothing excluded
    retrieved: np.ndarray  # 1-based position of the target in the returned, filtered list (0 = not returned)
    ties: np.ndarray  # non-excluded candidates scoring exactly the target's score
    exact_fallback: int  # queries whose rank needed the blockwise exact count
    depth: int
    top: np.ndarray  # int64 [n, <= keep] pool positions of the first non-excluded results (-1: none)


def faiss_ranks(
    pool: Pool, queries: Queries, pred: np.ndarray, depth: int = 1000, block: int = 1024, keep: int = 10
) -> FaissRanks:
    """Ranks from FAISS exact search (:func:`lvmbench.evaluate.index.search`).

    The search returns ``depth`` neighbours plus room for the excluded context.
    A target found there gets its rank from the returned scores; one ranked
    deeper (rare for a useful model) gets an exact count from a blockwise
    matrix product against the pool.  Queries are searched in groups of up to
    ~16M result entries (rather than blocks of 1,024), so a sharded or
    memory-mapped pool is streamed through once per group.
    """
    n, size = len(queries), pool.size
    n_excl = queries.excl_hi - queries.excl_lo
    k = int(min(size, depth + (n_excl.max() if n else 0)))
    rank = np.zeros(n, dtype=np.int64)
    rank_ctx = np.zeros(n, dtype=np.int64)
    retrieved = np.zeros(n, dtype=np.int64)
    ties = np.zeros(n, dtype=np.int64)
    top = np.full((n, min(keep, k)), -1, dtype=np.int64)
    pending: list[np.ndarray] = []
    group = max(block, (1 << 24) // max(k, 1))
    for g in range(0, n, group):
        g_scores, g_ids = search(pool, pred[g : g + group], k)
        for s in range(g, min(g + group, n), block):
            e = min(s + block, n)
            scores, ids = g_scores[s - g : e - g], g_ids[s - g : e - g]
            tpos = queries.target_pos[s:e]
            lo, hi = queries.excl_lo[s:e, None], queries.excl_hi[s:e, None]
            excluded = (ids >= lo) & (ids < hi)
            found = ids == tpos[:, None]
            has = found.any(axis=1)
            col = found.argmax(axis=1)
            ts = scores[np.arange(e - s), col][:, None]
            # complete = every candidate that could tie or beat the target was returned (the list's
            # last score is below the target's by more than a BLAS/per-pair rounding difference)
            complete = has & ((k == size) | (scores[:, -1] < ts[:, 0] - RESCORE_TOL))
            greater = scores > ts
            rank[s:e] = 1 + (greater & ~excluded).sum(axis=1)
            rank_ctx[s:e] = 1 + greater.sum(axis=1)
            ties[s:e] = ((scores == ts) & ~excluded & ~found).sum(axis=1)
            before = np.cumsum(~excluded, axis=1)  # 1-based position among non-excluded results
            retrieved[s:e] = np.where(has, before[np.arange(e - s), col], 0)
            top[s:e] = first_kept(ids, excluded, top.shape[1])
            pending.append(np.flatnonzero(~complete) + s)
    todo = np.concatenate(pending) if pending else np.empty(0, dtype=np.int64)
    if len(todo):
        _exact_counts(pool, queries, pred, todo, rank, rank_ctx, ties)
    return FaissRanks(rank, rank_ctx, retrieved, ties, int(len(todo)), k, top)


def first_kept(ids: np.ndarray, excluded: np.ndarray, keep: int) -> np.ndarray:
    """The first ``keep`` returned ids of each row that are not excluded, in their order (-1 pads)."""
    first = np.argsort(excluded, axis=1, kind="stable")[:, :keep]  # non-excluded first, order kept
    return np.where(np.take_along_axis(excluded, first, 1), -1, np.take_along_axis(ids, first, 1))


def _exact_counts(
    pool: Pool, queries: Queries, pred: np.ndarray, todo: np.ndarray,
    rank: np.ndarray, rank_ctx: np.ndarray, ties: np.ndarray,
) -> None:
    """Exact rank by brute force, shard by shard, for the queries the top-k did not settle."""
    p = np.ascontiguousarray(pred[todo], dtype=np.float32)
    tpos, lo, hi = queries.target_pos[todo], queries.excl_lo[todo, None], queries.excl_hi[todo, None]
    greater = np.zeros(len(todo), dtype=np.int64)
    greater_ctx = np.zeros(len(todo), dtype=np.int64)
    tied = np.zeros(len(todo), dtype=np.int64)

    def visit(s: int, e: int, j: int, scores: np.ndarray, ts: np.ndarray) -> None:
        start = int(pool.starts[j])
        end = start + len(pool.shards[j])
        above = scores > ts[:, None]
        equal = scores == ts[:, None]
        t_b = tpos[s:e]
        inside = np.flatnonzero((t_b >= start) & (t_b < end))
        equal[inside, t_b[inside] - start] = False  # the target does not tie with itself
        greater_ctx[s:e] += above.sum(axis=1)
        lo_b, hi_b = lo[s:e, 0], hi[s:e, 0]
        if bool(((lo_b < end) & (hi_b > start) & (hi_b > lo_b)).any()):
            pos = np.arange(start, end)[None, :]
            excluded = (pos >= lo_b[:, None]) & (pos < hi_b[:, None])
            greater[s:e] += (above & ~excluded).sum(axis=1)
            tied[s:e] += (equal & ~excluded).sum(axis=1)
        else:
            greater[s:e] += above.sum(axis=1)
            tied[s:e] += equal.sum(axis=1)

    _by_shard(len(todo), [len(x) for x in pool.shards], pool.starts, tpos, 256,
              lambda s, e, j: p[s:e] @ pool.shards[j].T, visit)
    rank[todo] = 1 + greater
    rank_ctx[todo] = 1 + greater_ctx
    ties[todo] = tied


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
) -> Scored:
    """FAISS ranks + every metric of one predictor.  The same code for models and baselines."""
    fr = faiss_ranks(pool, queries, pred, depth=depth)
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
    m["exact_fallback"] = fr.exact_fallback
    return Scored(name, pred, fr, m, mc, cos_t, cos_l)
