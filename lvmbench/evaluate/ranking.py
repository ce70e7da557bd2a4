"""Predictions -> ranks, two independent ways, by the tie rule of :mod:`lvmbench.evaluate.ties`.

* :func:`torch_ranks` is the training loop's way: one matrix product of the
  predictions against the pool tensor.
* :func:`faiss_ranks` is index retrieval: ``IndexFlatIP.search`` over the same
  pool; the headline numbers come from here.

Both count rank = 1 + the candidates scoring at least the target's score, the
target's own copies left out, so a tie never helps the target;
:func:`lvmbench.evaluate.consistency.check_consistency` compares the two query by
query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from lvmbench.evaluate.index import RESCORE_TOL, Pool, pair_scores, search, shard_index
from lvmbench.evaluate.queries import Queries, copies_in
from lvmbench.evaluate.ties import TargetCopies, member


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


LISTED_ABOVE = 65_536
"""Pools above this many candidates are re-ranked by torch over FAISS's returned lists plus a random probe
(:func:`torch_ranks_listed`), not over every candidate: a second full pass would cost more than the search
it checks."""


@torch.no_grad()
def torch_ranks_listed(pred: torch.Tensor, pool: Pool, queries: Queries, returned: np.ndarray,
                       exclude: bool = True, probe: int = 4096, block: int = 256,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """The training loop's ranks over the candidates FAISS returned, and a random probe of the rest.

    Torch scores each query's returned candidates and its target with its
    own arithmetic and counts, by the tie rule, those at or above the target:
    for a target inside the list this is its rank, and for one beyond it at
    least the list's length, which is all the Hit@K check needs.  FAISS could
    still have left out a candidate that belongs in the list; every query
    block also scores ``probe`` seeded random candidates, and one that is not
    in a query's list but scores above the list's lowest score (by more than
    a rounding difference) is counted as missed (and, if it beats the target,
    in the rank).  Returns (ranks, gaps to the nearest scored competitor,
    candidates missed).
    """
    copies = copies_in(queries, list(pool.blocks()))
    n, dev = len(queries), pred.device
    rank, gap, missed = np.zeros(n, np.int64), np.zeros(n, np.float64), 0
    rng = np.random.default_rng(seed)
    for s in range(0, n, block):
        e = min(s + block, n)
        ids = returned[s:e]
        p = pred[s:e]
        cand = torch.from_numpy(pool.rows(np.maximum(ids, 0).ravel()).reshape(len(ids), ids.shape[1], -1)).to(dev)
        tvec = torch.from_numpy(pool.rows(queries.target_pos[s:e])).to(dev)
        ts = (p * tvec).sum(dim=1, keepdim=True)
        scores = torch.bmm(cand, p[:, :, None])[:, :, 0]
        listed = (ids >= 0) & ~copies.mask(s, ids) & (ids != queries.target_pos[s:e, None])
        if exclude:
            listed &= ~((ids >= queries.excl_lo[s:e, None]) & (ids < queries.excl_hi[s:e, None]))
        d = torch.where(torch.from_numpy(listed).to(dev), scores - ts, torch.tensor(float("-inf"), device=dev))
        count = (~(d < 0)).sum(dim=1)
        gap[s:e] = d.abs().nan_to_num(nan=float("inf")).min(dim=1).values.double().cpu().numpy()
        if probe and pool.size > ids.shape[1]:
            extra, lost = _probe(pred[s:e], pool, queries, ids, scores, ts, exclude, copies, s,
                                 rng.choice(pool.size, size=min(probe, pool.size), replace=False))
            count += extra
            missed += lost
        rank[s:e] = 1 + count.cpu().numpy()
    return rank, gap, missed


def _probe(p: torch.Tensor, pool: Pool, queries: Queries, ids: np.ndarray, scores: torch.Tensor, ts: torch.Tensor,
           exclude: bool, copies: TargetCopies, first: int, positions: np.ndarray) -> tuple[torch.Tensor, int]:
    """Random candidates FAISS did not return that score above a query's lowest returned one: missed."""
    dev = p.device
    vecs = torch.from_numpy(pool.rows(positions)).to(dev)
    sc = p @ vecs.T  # [b, m]
    pos = np.broadcast_to(positions[None, :], (len(ids), len(positions)))
    rows = np.arange(len(ids), dtype=np.int64)[:, None] * pool.size
    rival = ~member(pos + rows, np.sort((ids + rows).ravel()))
    rival &= pos != queries.target_pos[first : first + len(ids), None]
    rival &= ~copies.mask(first, pos)
    if exclude:
        rival &= ~((pos >= queries.excl_lo[first : first + len(ids), None])
                   & (pos < queries.excl_hi[first : first + len(ids), None]))
    # a top-k list leaves out only candidates scoring at most its lowest entry (whatever that entry is)
    lowest = torch.where(torch.from_numpy(ids >= 0).to(dev), scores, torch.tensor(float("inf"), device=dev))
    lowest = lowest.min(dim=1).values[:, None]
    rival_t = torch.from_numpy(rival).to(dev)
    lost = (sc > lowest + RESCORE_TOL) & rival_t
    above = (~(sc < ts)) & rival_t
    return above.sum(dim=1), int(lost.sum())


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
    retrieved: np.ndarray  # 1-based position of the target in FAISS's returned list, excluded ids and copies
    # dropped (0 = not in it)
    ties: np.ndarray  # non-excluded candidates of another vector scoring exactly the target's score
    depth: int  # results FAISS returned per query (0: no list, ranks only)
    top: np.ndarray  # int64 [n, <= keep] pool positions of the first non-excluded results (-1: none)
    copies: np.ndarray  # non-excluded candidates bit-identical to the target (as good a hit as it)
    returned: np.ndarray | None = None  # int64 [n, depth] every pool position FAISS returned (-1 pads)


def faiss_ranks(
    pool: Pool, queries: Queries, pred: np.ndarray, depth: int = 10, block: int = 1024, keep: int = 10
) -> FaissRanks:
    """Exact ranks by the tie rule, and FAISS's retrieved list (:func:`lvmbench.evaluate.index.search`).

    The ranks are exact counts (:func:`exact_ranks`): every candidate is
    scored, blockwise, and those within a rounding difference of the target
    are compared by FAISS's per-pair scores.  The index is then searched for
    the top ``max(depth, keep)`` results per query plus room for the excluded
    window; ``retrieved`` is the target's place in that list, what the
    consistency check holds against the training loop's ranks.  A deep top-k
    list is never needed for a rank, and it was most of the cost.
    Queries are searched in groups of up to ~16M result entries, so a sharded
    or memory-mapped pool is streamed through once per group.
    """
    n, size = len(queries), pool.size
    out = exact_ranks(pool, queries, pred)
    n_excl = queries.excl_hi - queries.excl_lo
    k = int(min(size, max(depth, keep) + (n_excl.max() if n else 0)))
    out.depth, out.top = k, np.full((n, min(keep, k)), -1, dtype=np.int64)
    out.returned = np.full((n, k), -1, dtype=np.int64)
    copies = copies_in(queries, list(pool.blocks()))
    group = max(block, (1 << 24) // max(k, 1))
    for g in range(0, n, group):
        g_scores, g_ids = search(pool, pred[g : g + group], k)
        for s in range(g, min(g + group, n), block):
            e = min(s + block, n)
            _retrieved_block(out, s, e, g_ids[s - g : e - g], queries, copies)
        out.returned[g : g + group] = g_ids
    return out


def exact_ranks(pool: Pool, queries: Queries, pred: np.ndarray) -> FaissRanks:
    """Every query's rank by counting, without a retrieved list (``retrieved`` 0, ``top`` -1, ``depth`` 0).

    One blockwise matrix product per query block; candidates near the
    target are compared by their per-pair scores, as a returned list
    compares them, so these are the ranks a full flat search gives.
    """
    n = len(queries)
    copies = copies_in(queries, list(pool.blocks()))
    out = FaissRanks(*(np.zeros(n, dtype=np.int64) for _ in range(4)), 0, np.full((n, 0), -1, dtype=np.int64),
                     copies.per_query(n, queries.excl_lo, queries.excl_hi))
    if n:
        _exact_counts(pool, queries, copies, pred, np.arange(n), out)
    return out


def _retrieved_block(out: FaissRanks, s: int, e: int, ids: np.ndarray, queries: Queries,
                     copies: TargetCopies) -> None:
    """Queries ``s:e``: the target's 1-based place in the returned list (excluded ids and copies dropped)."""
    rows = np.arange(e - s)
    lo, hi = queries.excl_lo[s:e, None], queries.excl_hi[s:e, None]
    excluded = (ids >= lo) & (ids < hi)
    found = ids == queries.target_pos[s:e, None]
    copy = copies.mask(s, ids)
    has = found.any(axis=1)
    before = np.cumsum(~excluded & ~copy, axis=1)  # 1-based position among non-excluded, non-copy results
    out.retrieved[s:e] = np.where(has, before[rows, found.argmax(axis=1)], 0)
    out.top[s:e] = first_kept(ids, excluded, out.top.shape[1])


def first_kept(ids: np.ndarray, excluded: np.ndarray, keep: int) -> np.ndarray:
    """The first ``keep`` returned ids of each row that are not excluded, in their order (-1 pads)."""
    first = np.argsort(excluded, axis=1, kind="stable")[:, :keep]  # non-excluded first, order kept
    return np.where(np.take_along_axis(excluded, first, 1), -1, np.take_along_axis(ids, first, 1))


def _exact_counts(pool: Pool, queries: Queries, copies: TargetCopies, pred: np.ndarray, todo: np.ndarray,
                  out: FaissRanks) -> None:
    """Exact rank by counting, shard by shard, for the queries ``todo``.

    A BLAS product may score a pair a few ulps away from the per-pair kernel
    that scores the returned lists, and under the tie rule an ulp decides a
    tie; so candidates within ``RESCORE_TOL`` of the target are compared by
    their per-pair scores, exactly as a returned list compares them.  Every
    other candidate is counted from one comparison of the block, and the
    excluded window's share is taken from a running sum of that comparison,
    so no block-sized mask is built beyond it.
    """
    p = np.ascontiguousarray(pred[todo], dtype=np.float32)
    tpos, lo, hi = queries.target_pos[todo], queries.excl_lo[todo], queries.excl_hi[todo]
    sub = copies.subset(todo)
    t_pair = pair_scores(p, pool.rows(tpos))
    counts = np.zeros((3, len(todo)), dtype=np.int64)  # at least (excluded left out), at least (all), ties

    def visit(s: int, e: int, j: int, scores: np.ndarray, ts: np.ndarray) -> None:
        start, width = int(pool.starts[j]), scores.shape[1]
        d = np.subtract(scores, ts[:, None], out=scores)  # in place: the product is not used again
        above = ~(d < 0)  # >= the target's score, or NaN: never a win for the target
        total = np.count_nonzero(above, axis=1)
        lo_b, hi_b = np.clip(lo[s:e] - start, 0, width), np.clip(hi[s:e] - start, 0, width)
        excl = np.zeros(e - s, dtype=np.int64)
        for i in np.flatnonzero(hi_b > lo_b):
            excl[i] = np.count_nonzero(above[i, lo_b[i] : hi_b[i]])
        r, c = np.nonzero(np.abs(d, out=d) <= RESCORE_TOL)
        # near the target's score (the target, its copies, rare rivals): decided by the per-pair scores, as a
        # returned list decides; the target and its copies are no rivals at all
        qs, ps = sub.in_range(s, e)
        mine = _pairs_in(r, c + start, np.concatenate([np.arange(e - s), qs]), np.concatenate([tpos[s:e], ps]))
        pp = pair_scores(p[s:e][r], pool.shards[j][c]) if len(r) else np.empty(0, np.float32)
        near_at_least, near_equal = ~(pp < t_pair[s:e][r]), (pp == t_pair[s:e][r]) & ~mine
        was = above[r, c]
        fix = np.bincount(r, weights=near_at_least & ~mine, minlength=e - s) - np.bincount(r, weights=was,
                                                                                               minlength=e - s)
        in_window = (c + start >= lo[s:e][r]) & (c + start < hi[s:e][r])
        fix_window = (np.bincount(r[in_window], weights=(near_at_least & ~mine)[in_window], minlength=e - s)
                      - np.bincount(r[in_window], weights=was[in_window], minlength=e - s))
        counts[1, s:e] += total + fix.astype(np.int64)
        counts[0, s:e] += total - excl + (fix - fix_window).astype(np.int64)
        counts[2, s:e] += np.bincount(r[near_equal & ~in_window], minlength=e - s)

    _by_shard(len(todo), [len(x) for x in pool.shards], pool.starts, tpos, 1024,
              lambda s, e, j: p[s:e] @ pool.shards[j].T, visit)
    out.rank[todo] = 1 + counts[0]
    out.rank_with_context[todo] = 1 + counts[1]
    out.ties[todo] = counts[2]


def _pairs_in(r: np.ndarray, c: np.ndarray, qs: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """bool like ``r``: whether (r[i], c[i]) is one of the pairs (qs, ps) (row, pool position)."""
    width = int(max(c.max(initial=0), ps.max(initial=0))) + 1
    return member(r.astype(np.int64) * width + c, np.sort(qs.astype(np.int64) * width + ps))
