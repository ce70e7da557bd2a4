"""The tie rule: a prediction gains nothing from scoring many candidates alike.

A query's **rank** is 1 + the number of its candidates (pool minus its
excluded window) that score *at least* the target's score, not counting the
target itself and not counting **copies** of the target: candidates whose
vector is bit-identical to the target's (a paragraph repeated under another
row id).  So

* a tie with any candidate whose vector differs from the target's counts
  against the target: a model whose output is zero, constant, overflowed to
  zero or NaN ties every candidate and ranks last, never first;
* a copy of the target is as good a hit as the target: retrieving the same
  vector under another id is retrieving the answer.  It is neither above nor
  below the target, so it is left out of the count.

This is the pessimistic (worst-case) tie order, made exact for copies.
trec_eval breaks ties by document id, ranx and FAISS by index order, so each
of them can rank a tied target first for one id layout and last for another;
the worst case is the only order no id layout can flatter.  The expected
rank under random tie-breaking (ties counted as halves) is the other
defensible rule; it gives fractional hits, which Wilson intervals, McNemar and
the query-by-query consistency check do not take, and for real models exact
ties between different vectors do not occur, so the two agree there.
Because copies count as hits, lvmbench also records, per query, how many
non-excluded copies the target has, and reports the metrics with every copy
counted against the target (what a tool that treats every tie as a loss
reports) wherever the two differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class TargetCopies:
    """Every (query, pool position) pair whose candidate is bit-identical to that query's target (not the target).

    ``query`` is ascending; most queries have none, so this is a short list.
    """

    query: np.ndarray  # int64 [m]
    pos: np.ndarray  # int64 [m]
    size: int  # pool size (for pair codes)
    _codes: np.ndarray | None = field(default=None, init=False, repr=False)

    def codes(self) -> np.ndarray:
        """Sorted int64 codes ``query * size + pos``, for vectorised membership tests."""
        if self._codes is None:
            self._codes = np.sort(self.query * self.size + self.pos)
        return self._codes

    def mask(self, first: int, ids: np.ndarray) -> np.ndarray:
        """bool like ``ids``: entry ``[i, j]`` is a copy of query ``first + i``'s target (ids < 0 never are)."""
        if not len(self.query):
            return np.zeros(ids.shape, dtype=bool)
        rows = np.arange(first, first + ids.shape[0], dtype=np.int64)[:, None]
        codes = np.where(ids >= 0, rows * self.size + ids, -1)
        return member(codes, self.codes())

    def in_range(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """The pairs of queries ``first:last``: (query - first, pos)."""
        lo, hi = np.searchsorted(self.query, [first, last])
        return self.query[lo:hi] - first, self.pos[lo:hi]

    def subset(self, keep: np.ndarray) -> "TargetCopies":
        """The pairs of the queries ``keep`` (an index array), renumbered as the subset numbers them."""
        keep = np.asarray(keep, dtype=np.int64)
        if not len(keep) or not len(self.query):
            return TargetCopies(np.empty(0, np.int64), np.empty(0, np.int64), self.size)
        order = np.argsort(keep, kind="stable")
        idx = np.minimum(np.searchsorted(keep[order], self.query), len(keep) - 1)
        found = keep[order][idx] == self.query
        query, pos = order[idx][found].astype(np.int64), self.pos[found]
        by = np.lexsort((pos, query))
        return TargetCopies(query[by], pos[by], self.size)

    def per_query(self, n: int, excl_lo: np.ndarray | None = None, excl_hi: np.ndarray | None = None) -> np.ndarray:
        """int64 ``[n]``: copies of each query's target among its candidates (outside ``[lo, hi)`` when given)."""
        keep = np.ones(len(self.query), dtype=bool)
        if excl_lo is not None and excl_hi is not None:
            keep = ~((self.pos >= excl_lo[self.query]) & (self.pos < excl_hi[self.query]))
        return np.bincount(self.query[keep], minlength=n).astype(np.int64)


def member(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """bool like ``values``: whether each is in ``sorted_keys`` (ascending): ``np.isin`` without its sort of both
    sides, since the keys are few and already sorted (a binary search per value)."""
    if not len(sorted_keys):
        return np.zeros(values.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


def find_copies(keys: np.ndarray, rows_at: Callable[[np.ndarray], np.ndarray],
                target_pos: np.ndarray) -> TargetCopies:
    """The copies of each target among the pool's candidates.

    ``keys`` are the pool's row keys (:func:`lvmbench.evaluate.index.row_keys`),
    ``rows_at(positions)`` returns the pool vectors at positions (to confirm a
    key match bit for bit).
    """
    target_pos = np.asarray(target_pos, dtype=np.int64)
    size = len(keys)
    empty = TargetCopies(np.empty(0, np.int64), np.empty(0, np.int64), size)
    if not len(target_pos):
        return empty
    tkeys = keys[target_pos]
    cand = np.flatnonzero(np.isin(keys, tkeys))
    if len(np.unique(keys[cand])) == len(cand):
        return empty  # each matching key sits at one position only: the target's own row
    order = np.argsort(tkeys, kind="stable")
    sorted_keys = tkeys[order]
    lo = np.searchsorted(sorted_keys, keys[cand], "left")
    hi = np.searchsorted(sorted_keys, keys[cand], "right")
    counts = hi - lo
    pos = np.repeat(cand, counts)
    query = order[np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])] if len(cand) else np.empty(0, np.int64)
    keep = pos != target_pos[query]
    query, pos = query[keep].astype(np.int64), pos[keep]
    if len(query):  # confirm bit for bit (a key collision costs a comparison, never a wrong copy)
        same = np.all(rows_at(pos).view(np.uint32) == rows_at(target_pos[query]).view(np.uint32), axis=1)
        query, pos = query[same], pos[same]
    order = np.lexsort((pos, query))
    return TargetCopies(query[order], pos[order], size)

