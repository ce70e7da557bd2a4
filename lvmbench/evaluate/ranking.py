"""Predictions -> ranks, two independent ways, by the tie rule of :mod:`lvmbench.evaluate.ties`.

* :func:`torch_ranks` is the training loop's way: one matrix product of the
  predictions against the pool tensor.
* :func:`faiss_ranks` is index retrieval: ``IndexFlatIP.search`` over the same
  pool; the headline numbers come from here.

Both count rank = 1 + the candidates scoring at least the target's score, the
target's own copies left out, so a tie never helps the target;
:func:`lvmbench.evaluate.scoring.check_consistency` compares the two query by
query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from lvmbench.evaluate.index import RESCORE_TOL, Pool, pair_scores, search, shard_index
from lvmbench.evaluate.queries import Queries, copies_in
from lvmbench.evaluate.ties import TargetCopies


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

    Rank = 1 + #(candidates scoring >= the target's score), the target, its
    copies and (with ``exclude``) its excluded window left out; a NaN score
    counts against the target.  ``pool_vectors`` is one tensor, or ``(first
    position, tensor)`` shards of a sharded pool.  Queries go in blocks of at
    most ``block``, fewer for pools above 65,536 candidates so one block's
    score matrix stays near 256 MB (~5 bytes per (query, candidate) pair in
    all): a 1M pool gets 67 queries a block.
    """
    shards = pool_vectors if isinstance(pool_vectors, list) else [(0, pool_vectors)]
    copies = copies_in(queries, shards)
    n = pred.shape[0]
    starts = np.array([s for s, _ in shards] + [shards[-1][0] + len(shards[-1][1])], dtype=np.int64)
    dev = shards[0][1].device
    pred = pred.to(dev)
    count = torch.zeros(n, dtype=torch.int64, device=dev)
    gap = torch.full((n,), float("inf"), dtype=torch.float64, device=dev)

    def visit(s: int, e: int, j: int, scores: torch.Tensor, ts_np: np.ndarray) -> None:
        start, vecs = shards[j]
        end = start + len(vecs)
        d = scores.sub_(torch.from_numpy(ts_np).to(dev)[:, None])  # in place: the product is not reused
        if exclude:
            # a query's excluded context is one contiguous range of pool positions; -inf there
            # counts as neither at-or-above nor near (a gather-free mask, no [block, pool] bool array)
            lo = np.clip(queries.excl_lo[s:e] - start, 0, end - start)
            hi = np.clip(queries.excl_hi[s:e] - start, 0, end - start)
            for i in np.flatnonzero(hi > lo):
                d[i, lo[i] : hi[i]] = float("-inf")
        _mask_target_and_copies(d, queries.target_pos[s:e], copies.in_range(s, e), start, end)
        count[s:e] += (~(d < 0)).sum(dim=1)  # >= 0, or NaN: a tie or an unorderable score is not a win
        gap[s:e] = torch.minimum(gap[s:e], d.abs_().nan_to_num_(nan=float("inf")).min(dim=1).values.double())

    _by_shard(n, [len(t) for _, t in shards], starts, queries.target_pos, block,
              lambda s, e, j: pred[s:e] @ shards[j][1].T, visit)
    return (1 + count).cpu().numpy(), gap.cpu().numpy()


def _mask_target_and_copies(d: torch.Tensor, target_pos: np.ndarray, pairs: tuple[np.ndarray, np.ndarray],
                            start: int, end: int) -> None:
    """-inf at each query's own target and its copies in this shard: neither competes with the target."""
    rows = np.arange(len(target_pos))
    q, pos = np.concatenate([rows, pairs[0]]), np.concatenate([target_pos, pairs[1]])
    inside = (pos >= start) & (pos < end)
    if inside.any():
        r, c = (torch.from_numpy(x[inside]).to(d.device) for x in (q, pos - start))
        d[r, c] = float("-inf")


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
    rank: np.ndarray  # 1 + #(non-excluded candidates, copies aside, scoring >= the target), the tie rule
    rank_with_context: np.ndarray  # the same with nothing excluded
    retrieved: np.ndarray  # 1-based position of the target in the returned list, excluded ids and copies
    # dropped (0 = not returned)
    ties: np.ndarray  # non-excluded candidates of another vector scoring exactly the target's score
    exact_fallback: int  # queries whose rank needed the blockwise exact count
    depth: int
    top: np.ndarray  # int64 [n, <= keep] pool positions of the first non-excluded results (-1: none)
    copies: np.ndarray  # non-excluded candidates bit-identical to the target (as good a hit as it)


def faiss_ranks(
    pool: Pool, queries: Queries, pred: np.ndarray, depth: int = 1000, block: int = 1024, keep: int = 10
) -> FaissRanks:
    """Ranks from FAISS exact search (:func:`lvmbench.evaluate.index.search`), by the tie rule.

    The search returns ``depth`` neighbours plus room for the excluded context.
    A target found there, with every candidate that could tie or beat it, gets
    its rank from the returned scores; any other (rare for a useful model)
    gets an exact count from a blockwise matrix product against the pool.
    Queries are searched in groups of up to ~16M result entries (rather than
    blocks of 1,024), so a sharded or memory-mapped pool is streamed through
    once per group.
    """
    n, size = len(queries), pool.size
    copies = copies_in(queries, list(pool.blocks()))
    n_excl = queries.excl_hi - queries.excl_lo
    k = int(min(size, depth + (n_excl.max() if n else 0)))
    out = FaissRanks(*(np.zeros(n, dtype=np.int64) for _ in range(4)), 0, k,
                     np.full((n, min(keep, k)), -1, dtype=np.int64),
                     copies.per_query(n, queries.excl_lo, queries.excl_hi))
    pending: list[np.ndarray] = []
    group = max(block, (1 << 24) // max(k, 1))
    for g in range(0, n, group):
        g_scores, g_ids = search(pool, pred[g : g + group], k)
        for s in range(g, min(g + group, n), block):
            e = min(s + block, n)
            todo = _rank_block(out, s, e, g_scores[s - g : e - g], g_ids[s - g : e - g], queries, copies,
                               complete_list=k == size)
            pending.append(todo + s)
    todo = np.concatenate(pending) if pending else np.empty(0, dtype=np.int64)
    if len(todo):
        _exact_counts(pool, queries, copies, pred, todo, out)
    out.exact_fallback = int(len(todo))
    return out


def _rank_block(out: FaissRanks, s: int, e: int, scores: np.ndarray, ids: np.ndarray, queries: Queries,
                copies: TargetCopies, complete_list: bool) -> np.ndarray:
    """Fill queries ``s:e`` of ``out`` from their returned lists; the indices (from s) that need an exact count."""
    rows = np.arange(e - s)
    tpos = queries.target_pos[s:e]
    lo, hi = queries.excl_lo[s:e, None], queries.excl_hi[s:e, None]
    excluded = (ids >= lo) & (ids < hi)
    found = ids == tpos[:, None]
    copy = copies.mask(s, ids)
    has = found.any(axis=1)
    col = found.argmax(axis=1)
    ts = scores[rows, col][:, None]
    # complete = every candidate that could tie or beat the target was returned (the list's
    # last score is below the target's by more than a BLAS/per-pair rounding difference)
    complete = has & (complete_list | (scores[:, -1] < ts[:, 0] - RESCORE_TOL))
    rival = ~found & ~copy & (ids >= 0)
    at_least = ~(scores < ts) & rival  # >= the target's score, or NaN: never a win for the target
    out.rank[s:e] = 1 + (at_least & ~excluded).sum(axis=1)
    out.rank_with_context[s:e] = 1 + at_least.sum(axis=1)
    out.ties[s:e] = ((scores == ts) & rival & ~excluded).sum(axis=1)
    before = np.cumsum(~excluded & ~copy, axis=1)  # 1-based position among non-excluded, non-copy results
    out.retrieved[s:e] = np.where(has, before[rows, col], 0)
    out.top[s:e] = first_kept(ids, excluded, out.top.shape[1])
    return np.flatnonzero(~complete)


def first_kept(ids: np.ndarray, excluded: np.ndarray, keep: int) -> np.ndarray:
    """The first ``keep`` returned ids of each row that are not excluded, in their order (-1 pads)."""
    first = np.argsort(excluded, axis=1, kind="stable")[:, :keep]  # non-excluded first, order kept
    return np.where(np.take_along_axis(excluded, first, 1), -1, np.take_along_axis(ids, first, 1))


def _exact_counts(pool: Pool, queries: Queries, copies: TargetCopies, pred: np.ndarray, todo: np.ndarray,
                  out: FaissRanks) -> None:
    """Exact rank by brute force, shard by shard, for the queries the top-k did not settle.

    A BLAS product may score a pair a few ulps away from the per-pair kernel
    that scored the returned lists, and under the tie rule an ulp decides a
    tie; so candidates within ``RESCORE_TOL`` of the target are compared by
    their per-pair scores, exactly as a returned list compares them.
    """
    p = np.ascontiguousarray(pred[todo], dtype=np.float32)
    tpos, lo, hi = queries.target_pos[todo], queries.excl_lo[todo], queries.excl_hi[todo]
    sub = copies.subset(todo)
    t_pair = pair_scores(p, pool.rows(tpos))
    counts = np.zeros((3, len(todo)), dtype=np.int64)  # at least (excluded left out), at least (all), ties

    def visit(s: int, e: int, j: int, scores: np.ndarray, ts: np.ndarray) -> None:
        start = int(pool.starts[j])
        end = start + len(pool.shards[j])
        rival = np.ones(scores.shape, dtype=bool)
        qs, ps = sub.in_range(s, e)
        for q, pos in ((np.arange(e - s), tpos[s:e]), (qs, ps)):  # the target and its copies are no rivals
            inside = (pos >= start) & (pos < end)
            rival[q[inside], pos[inside] - start] = False
        at_least, equal = _near_rescored(scores, ts, t_pair[s:e], p[s:e], pool.shards[j])
        at_least &= rival
        equal &= rival
        counts[1, s:e] += at_least.sum(axis=1)
        lo_b, hi_b = lo[s:e], hi[s:e]
        if bool(((lo_b < end) & (hi_b > start) & (hi_b > lo_b)).any()):
            pos = np.arange(start, end)[None, :]
            kept = ~((pos >= lo_b[:, None]) & (pos < hi_b[:, None]))
            at_least &= kept
            equal &= kept
        counts[0, s:e] += at_least.sum(axis=1)
        counts[2, s:e] += equal.sum(axis=1)

    _by_shard(len(todo), [len(x) for x in pool.shards], pool.starts, tpos, 256,
              lambda s, e, j: p[s:e] @ pool.shards[j].T, visit)
    out.rank[todo] = 1 + counts[0]
    out.rank_with_context[todo] = 1 + counts[1]
    out.ties[todo] = counts[2]


def _near_rescored(scores: np.ndarray, ts: np.ndarray, ts_pair: np.ndarray, q: np.ndarray,
                   shard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(at least the target's score, exactly it) per candidate: BLAS far from the target, per-pair near it."""
    at_least = ~(scores < ts[:, None])
    equal = np.zeros(scores.shape, dtype=bool)
    r, c = np.nonzero(np.abs(scores - ts[:, None]) <= RESCORE_TOL)
    if len(r):
        pp = pair_scores(q[r], shard[c])
        at_least[r, c] = ~(pp < ts_pair[r])
        equal[r, c] = pp == ts_pair[r]
    return at_least, equal
