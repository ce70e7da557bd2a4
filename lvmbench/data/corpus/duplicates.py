"""What counts as a duplicate across documents (chains), for texts and for stored vectors.

A key that occurs in two or more documents is boilerplate: every occurrence
goes, while repeats inside one document stay (they are the document's own
structure, and a chain never leaks into itself).  The key is a unit text
before encoding and a stored vector after it: texts that differ only in case
or spacing can encode to one vector, and the leakage check compares the
stored rows bit for bit (``row_hashes``), so the vector rule uses exactly that
hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, TypeVar

import numpy as np

from lvmbench.data.gates import row_hashes

K = TypeVar("K", bound=Hashable)


def shared_keys(groups: Iterable[Iterable[K]]) -> set[K]:
    """Keys found in two or more groups; a repeat inside one group does not count."""
    owners: dict[K, int] = {}
    shared: set[K] = set()
    for g, keys in enumerate(groups):
        for key in keys:
            first = owners.setdefault(key, g)
            if first != g:
                shared.add(key)
    return shared


def chain_of_rows(offsets: np.ndarray) -> np.ndarray:
    """The chain index of every row."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


@dataclass(frozen=True)
class VectorDedup:
    """Which rows and chains of a (vectors, offsets) pair survive the cross-chain vector rule."""

    row_keep: np.ndarray  # bool [N]: not shared with another chain, and in a kept chain
    chain_keep: np.ndarray  # bool [C]: still has >= min_length rows once the shared rows are gone
    kept_lengths: np.ndarray  # int64 [kept chains]: their new lengths
    shared_rows: np.ndarray  # int64: rows whose stored vector also occurs in another chain
    hashes: list[bytes]  # row_hashes of every input row

    @property
    def removed_rows(self) -> int:
        return int(len(self.shared_rows))

    @property
    def distinct_values(self) -> int:
        return len({self.hashes[r] for r in self.shared_rows})

    @property
    def dropped_chains(self) -> int:
        return int((~self.chain_keep).sum())

    @property
    def dropped_chain_rows(self) -> int:
        """Rows not shared by chains that went with a chain left too short."""
        return len(self.row_keep) - self.removed_rows - int(self.row_keep.sum())

    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.kept_lengths)]).astype(np.int64)

    def examples(self, limit: int = 3) -> list[list[int]]:
        """Up to ``limit`` groups of rows holding one shared vector, in row order (for a report)."""
        groups: dict[bytes, list[int]] = {}
        for r in self.shared_rows.tolist():
            h = self.hashes[r]
            if h in groups or len(groups) < limit:
                groups.setdefault(h, []).append(r)
        return list(groups.values())


def dedupe_vectors(vectors: np.ndarray, offsets: np.ndarray, min_length: int = 1) -> VectorDedup:
    """Drop every row whose stored bytes occur in 2+ chains, then the chains left shorter than ``min_length``.

    ``vectors`` must be the rows as stored (after any float16 cast): that is
    what the leakage check hashes.  Nothing is copied; apply the masks.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    hashes = row_hashes(vectors)
    shared = shared_keys(hashes[s:e] for s, e in zip(offsets[:-1].tolist(), offsets[1:].tolist()))
    is_shared = np.fromiter((h in shared for h in hashes), dtype=bool, count=len(hashes))
    chain = chain_of_rows(offsets)
    left = np.bincount(chain[~is_shared], minlength=len(offsets) - 1)
    chain_keep = left >= min_length
    row_keep = ~is_shared & chain_keep[chain]
    return VectorDedup(row_keep, chain_keep, left[chain_keep].astype(np.int64), np.flatnonzero(is_shared), hashes)
