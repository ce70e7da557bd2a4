"""The candidate pool and its FAISS index.

The pool is fixed by contract (DESIGN.md): every vector of the scored split's
chains (or of every chain with ``--pool full``), each once, L2-normalised, in
an exact ``IndexFlatIP``.  Its size and hash are recorded with every score,
so "longer context helps" can never again be a shrinking pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from lvmbench.io import sha256_arrays


@dataclass
class Pool:
    split: str
    ids: np.ndarray  # int64 [P] global row ids, ascending
    vectors: np.ndarray  # float32 [P, D] L2-normalised (the caller's array itself when the pool is every row)
    index: faiss.Index

    @property
    def size(self) -> int:
        return int(len(self.ids))

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Pool positions of global rows; raises if any row is not in the pool."""
        rows = np.asarray(rows, dtype=np.int64)
        pos = np.searchsorted(self.ids, rows)
        ok = (pos < len(self.ids)) & (self.ids[np.minimum(pos, len(self.ids) - 1)] == rows)
        if not np.all(ok):
            missing = rows[~ok][:5].tolist()
            raise AssertionError(f"rows {missing} are not in the {self.split} pool")
        return pos

    def sha256(self) -> str:
        return sha256_arrays(self.ids, self.vectors)


def build_pool(unit: np.ndarray, offsets: np.ndarray, chains: np.ndarray, split: str) -> Pool:
    """All vectors of ``chains`` (ascending row order) in an exact inner-product index."""
    ids = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in chains]).astype(np.int64)
    ids.sort()
    if len(ids) == len(unit) and (len(ids) == 0 or (ids[0] == 0 and ids[-1] == len(unit) - 1)):
        # every row, in order (--pool full): share the float32 array instead of copying it
        vectors = np.ascontiguousarray(unit, dtype=np.float32)
    else:
        vectors = np.ascontiguousarray(unit[ids], dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return Pool(split=split, ids=ids, vectors=vectors, index=index)


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS top-k: ``(scores [n, k], pool positions [n, k])``, best first."""
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
