"""The scored queries of one split against one pool: targets, excluded windows and the targets' copies.

Context exclusion: a query's own context vectors are consecutive rows of its
chain, hence one contiguous range of pool positions ``[lo, hi)``; excluding
them is a range test, never a gather.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lvmbench.data.samples import Samples, context_index
from lvmbench.evaluate.diagnostics import context_max_cos
from lvmbench.evaluate.index import Pool, row_keys
from lvmbench.evaluate.ties import TargetCopies, find_copies


@dataclass
class Queries:
    """The scored queries of one split against one pool."""

    samples: Samples
    target_pos: np.ndarray  # int64 [n] pool position of each target
    excl_lo: np.ndarray  # int64 [n] first excluded pool position
    excl_hi: np.ndarray  # int64 [n] one past the last excluded position (lo == hi: none)
    context_rows: np.ndarray  # int64 [n, T] global context rows, -1 padded
    copies: TargetCopies | None = None  # candidates bit-identical to a target (None: not looked up yet)
    context_len: int = 0  # the model's context (PAR's window); 0: the width of context_rows
    _true_max: np.ndarray | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.target_pos)

    def subset(self, keep: np.ndarray) -> "Queries":
        return Queries(self.samples.subset(keep), self.target_pos[keep], self.excl_lo[keep], self.excl_hi[keep],
                       self.context_rows[keep], None if self.copies is None else self.copies.subset(keep),
                       self.context_len)

    def candidates(self, exclude: bool, pool_size: int) -> np.ndarray:
        return pool_size - (self.excl_hi - self.excl_lo if exclude else 0)

    def context_max(self, vectors: np.ndarray, unit: np.ndarray) -> np.ndarray:
        """Each row of ``vectors``' largest cosine to its own query's context (PAR's terms)."""
        width = self.context_len or self.context_rows.shape[1]
        return context_max_cos(vectors, unit, self.samples.target, width, self.samples.start)

    def true_context_max(self, unit: np.ndarray) -> np.ndarray:
        """Each target's largest cosine to its own context: PAR's denominator, the same for every predictor."""
        if self._true_max is None:
            self._true_max = self.context_max(unit[self.samples.target], unit)
        return self._true_max


def make_queries(samples: Samples, pool: Pool, context_len: int) -> Queries:
    """Map targets and contexts into pool positions, asserting the target is there; find the targets' copies."""
    target_pos = pool.positions(samples.target)  # raises if a target is missing
    rows, lengths = context_index(samples.target, samples.start, context_len)
    first = samples.target - lengths
    lo = pool.positions(first) if len(first) else first
    hi = lo + lengths
    # the range trick needs the context rows contiguous in the pool
    if len(lo) and not np.array_equal(pool.ids[hi - 1], samples.target - 1):
        raise AssertionError("context rows are not contiguous in the pool")
    copies = find_copies(pool.keys(), pool.rows, target_pos)
    return Queries(samples=samples, target_pos=target_pos, excl_lo=lo, excl_hi=hi, context_rows=rows, copies=copies)


def without_exclusion(q: Queries) -> Queries:
    """The same queries with nothing excluded (``eval.exclude_context = false``)."""
    return Queries(q.samples, q.target_pos, q.excl_lo, q.excl_lo.copy(), q.context_rows, q.copies, q.context_len)


def copies_in(queries: Queries, shards: list[tuple[int, Any]]) -> TargetCopies:
    """``queries.copies``, or found now from the pool's ``(first position, array or tensor)`` shards."""
    if queries.copies is not None:
        return queries.copies
    arrays = [(start, v.cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for start, v in shards]
    keys = np.concatenate([row_keys(a) for _, a in arrays])
    pool = Pool("copies", np.arange(len(keys), dtype=np.int64), [a for _, a in arrays])
    queries.copies = find_copies(keys, pool.rows, queries.target_pos)
    return queries.copies
