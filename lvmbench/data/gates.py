"""Quality gates: which chains are long and coherent enough to train and score on.

Hard faults (NaN, zero norm, wrong shape) are refused when the store is
loaded.  The soft gates here remove chains and report what they removed, and
what other coherence thresholds *would* remove, so a reader can see how much
a threshold shapes the benchmark.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lvmbench.config import DataConfig

COHERENCE_SWEEP = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def unit_vectors(vectors: np.ndarray, block: int = 65536) -> np.ndarray:
    """float32 L2-normalised copy of a (possibly float16, memory-mapped) array.

    A row whose squared norm overflows or underflows float32 (|x| near 1e19
    or 1e-19 and beyond) would come out all zeros (or Inf) and then tie every
    candidate; such rows are normalised in float64 instead.  Every other row
    is computed exactly as always, so stored numbers do not move.
    """
    out = np.empty(vectors.shape, dtype=np.float32)
    for start in range(0, vectors.shape[0], block):
        v = np.asarray(vectors[start : start + block], dtype=np.float32)
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            u = v / np.linalg.norm(v, axis=1, keepdims=True)
            norms = np.einsum("ij,ij->i", u.astype(np.float64), u.astype(np.float64))
        redo = np.flatnonzero(~(np.abs(norms - 1.0) <= 1e-3))
        if len(redo):
            x = v[redo].astype(np.float64)
            n = np.linalg.norm(x / np.abs(x).max(axis=1, keepdims=True), axis=1, keepdims=True)
            u[redo] = (x / np.abs(x).max(axis=1, keepdims=True) / n).astype(np.float32)
        out[start : start + block] = u
    return out


def adjacent_cosines(unit: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """cos(x_t, x_{t+1}) for every consecutive pair, NaN where a pair crosses chains."""
    cos = np.einsum("ij,ij->i", unit[:-1], unit[1:]).astype(np.float64)
    boundary = offsets[1:-1] - 1  # pair (end-1 of chain c, start of chain c+1)
    cos[boundary[(boundary >= 0) & (boundary < len(cos))]] = np.nan
    return cos


def chain_coherence(unit: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Mean adjacent cosine of each chain (NaN for chains of length < 2)."""
    adj = adjacent_cosines(unit, offsets)
    out = np.full(len(offsets) - 1, np.nan)
    for c in range(len(offsets) - 1):
        s, e = offsets[c], offsets[c + 1]
        if e - s >= 2:
            out[c] = adj[s : e - 1].mean()
    return out


def row_hashes(vectors: np.ndarray, block: int = 65536) -> list[bytes]:
    """A 16-byte digest of each stored row: equal digests = bit-identical vectors."""
    out: list[bytes] = []
    for start in range(0, vectors.shape[0], block):
        chunk = np.ascontiguousarray(vectors[start : start + block])
        out.extend(hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in chunk)
    return out


@dataclass
class GateResult:
    kept: np.ndarray  # chain indices that pass, ascending
    report: dict[str, Any] = field(default_factory=dict)


def apply_gates(unit: np.ndarray, offsets: np.ndarray, hashes: list[bytes], cfg: DataConfig) -> GateResult:
    lengths = np.diff(offsets)
    coherence = chain_coherence(unit, offsets)
    long_enough = lengths >= cfg.min_chain_len
    coherent = np.nan_to_num(coherence, nan=-np.inf) >= cfg.coherence_min
    kept = np.flatnonzero(long_enough & coherent)
    counts: dict[bytes, int] = {}
    for h in hashes:
        counts[h] = counts.get(h, 0) + 1
    dup_rows = sum(c for c in counts.values() if c > 1)
    report = {
        "chains_in": int(len(lengths)),
        "vectors_in": int(lengths.sum()),
        "removed_length": int((~long_enough).sum()),
        "removed_coherence": int((long_enough & ~coherent).sum()),
        "chains_kept": int(len(kept)),
        "vectors_kept": int(lengths[kept].sum()),
        "min_chain_len": cfg.min_chain_len,
        "coherence_min": cfg.coherence_min,
        "coherence_would_remove": {
            f"{th:.1f}": int((long_enough & (np.nan_to_num(coherence, nan=-np.inf) < th)).sum())
            for th in COHERENCE_SWEEP
        },
        "coherence_mean": float(np.nanmean(coherence)) if np.isfinite(coherence).any() else None,
        "duplicate_vectors": int(dup_rows),
        "distinct_duplicated_vectors": int(sum(1 for c in counts.values() if c > 1)),
    }
    return GateResult(kept=kept, report=report)
