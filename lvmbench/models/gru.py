"""Stacked GRU with pre-norm residual blocks.

input LayerNorm -> Linear(D, hidden) -> ``layers`` x [LayerNorm -> GRU(hidden)
-> dropout -> + residual] -> LayerNorm -> MLP head -> D.  The output at each
sequence's true last position is read; packing keeps padding out of every
recurrence, and the per-step LayerNorm and residual act on the packed rows
directly.  Predicts the next vector itself (``predicts_delta = False``), like
memory_gru, so the two differ only in the memory.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lvmbench.config import ModelConfig
from lvmbench.models.heads import mlp_head


class ResidualGRU(nn.Module):
    predicts_delta = False

    def __init__(self, dim: int, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, h)
        self.block_norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(cfg.layers))
        self.grus = nn.ModuleList(nn.GRU(h, h, batch_first=True) for _ in range(cfg.layers))
        self.drop = nn.Dropout(cfg.dropout)
        self.out_norm = nn.LayerNorm(h)
        self.head = mlp_head(h, cfg.head_hidden, dim, cfg.dropout)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(context, lengths.cpu(), batch_first=True, enforce_sorted=False)
        x = self.proj(self.norm(packed.data))  # [sum(lengths), H]: only real steps
        for norm, gru in zip(self.block_norms, self.grus):
            y, _ = gru(packed._replace(data=norm(x)))
            x = x + self.drop(y.data)
        out, _ = pad_packed_sequence(packed._replace(data=x), batch_first=True)
        idx = (lengths - 1).to(out.device)
        last = out[torch.arange(out.shape[0], device=out.device), idx]
        return self.head(self.out_norm(last))
