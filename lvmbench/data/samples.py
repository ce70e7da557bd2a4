"""Samples are (chain, t) index pairs; contexts are gathered per batch.

A sample's target is vector ``t`` of its chain and its context is the up-to-T
vectors before it *in the same chain*, so windows can never cross documents.
Nothing N x T x D is ever materialised: a dataset costs its unique vectors
plus two int64 arrays, and a batch gathers ``[B, T_max, D]`` on demand.
Contexts are right-padded (real vectors first) with their lengths, which is
what ``pack_padded_sequence`` and key-padding masks expect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Samples:
    target: np.ndarray  # int64 [S] global row of each target
    start: np.ndarray  # int64 [S] global row where the target's chain starts
    chain: np.ndarray  # int64 [S] chain index

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, keep: np.ndarray) -> "Samples":
        return Samples(self.target[keep], self.start[keep], self.chain[keep])


def make_samples(offsets: np.ndarray, chains: np.ndarray, min_context: int = 1) -> Samples:
    """Every position with at least ``min_context`` earlier vectors in its chain."""
    starts = offsets[chains]
    ends = offsets[chains + 1]
    counts = np.maximum(ends - starts - min_context, 0)
    total = int(counts.sum())
    chain = np.repeat(chains, counts).astype(np.int64)
    start = np.repeat(starts, counts).astype(np.int64)
    # position within each chain's run of samples: 0..count-1
    run_start = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.arange(total, dtype=np.int64) - run_start
    return Samples(target=start + min_context + within, start=start, chain=chain)


def context_index(target: np.ndarray, start: np.ndarray, context_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded context rows ``[B, T_b]`` (-1 = padding) and lengths ``[B]``.

    ``T_b`` is the longest context in the batch, not ``context_len``, so short
    contexts cost short compute.
    """
    lengths = np.minimum(target - start, context_len).astype(np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    pos = np.arange(width, dtype=np.int64)[None, :]
    rows = (target - lengths)[:, None] + pos
    rows = np.where(pos < lengths[:, None], rows, -1)
    return rows, lengths


def gather_batch(
    unit: torch.Tensor, target: np.ndarray, start: np.ndarray, context_len: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(context [B, T_b, D] zero-padded, lengths [B], target [B, D])`` on ``unit``'s device."""
    rows, lengths = context_index(target, start, context_len)
    idx = torch.from_numpy(np.where(rows >= 0, rows, 0)).to(unit.device)
    mask = torch.from_numpy(rows >= 0).to(unit.device)
    ctx = unit[idx] * mask.unsqueeze(-1).to(unit.dtype)
    tgt = unit[torch.from_numpy(target).to(unit.device)]
    return ctx, torch.from_numpy(lengths).to(unit.device), tgt


def pair_coherence(unit: np.ndarray, samples: Samples, block: int = 16384) -> np.ndarray:
    """cos(last context vector, target) per sample.

    Blockwise: gathering both rows of every sample at once would hold two
    more copies of the training vectors at the peak.
    """
    t = samples.target
    out = np.empty(len(t), dtype=unit.dtype)  # what einsum returns for two arrays of this dtype
    for s in range(0, len(t), block):
        out[s : s + block] = np.einsum("ij,ij->i", unit[t[s : s + block] - 1], unit[t[s : s + block]])
    return out
