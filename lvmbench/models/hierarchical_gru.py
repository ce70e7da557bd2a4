"""Hierarchical GRU: a local GRU per block of context vectors, a global GRU over blocks.

The context is cut into consecutive blocks of ``BLOCK`` vectors (the last block
of each sequence may be partial).  A local GRU reads each block and its final
state is the block's summary; a global GRU reads the summaries in order,
starting from a learned initial state; an MLP head maps the global state to
a *delta* that ``predict()`` adds to the last context vector
(``predicts_delta = True``).

Any context length works: the number of blocks is ``ceil(length / BLOCK)`` per
sequence, partial blocks are packed with their true length and empty blocks
are skipped, so padding (or garbage) beyond ``lengths`` never reaches the output.

Config: ``hidden`` is both GRUs' width; ``layers`` is split between the local
GRU (``ceil(layers / 2)``) and the global GRU (``max(1, layers // 2)``);
``head_hidden`` and ``dropout`` as usual.  The block size is the constant
``BLOCK`` below (no ``ModelConfig`` field yet).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lvmbench.config import ModelConfig
from lvmbench.models.heads import mlp_head

BLOCK = 10
"""Context vectors per local block (the recipe's T = 100 gives 10 blocks)."""

H0_INIT_STD = 0.1
"""Initial spread of the global GRU's learned initial state."""

HEAD_INIT_SCALE = 0.1
"""The head's last layer starts small, so the model starts close to copy_last.
Not zero: a zero matrix would block every earlier gradient at initialisation."""


def _gru(inp: int, hidden: int, layers: int, dropout: float) -> nn.GRU:
    return nn.GRU(inp, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)


class HierarchicalGRU(nn.Module):
    predicts_delta = True

    def __init__(self, dim: int, cfg: ModelConfig, block: int = BLOCK):
        super().__init__()
        h = cfg.hidden
        self.block = block
        local_layers = max(1, (cfg.layers + 1) // 2)
        global_layers = max(1, cfg.layers // 2)
        self.norm = nn.LayerNorm(dim)
        self.local = _gru(dim, h, local_layers, cfg.dropout)
        self.summary_norm = nn.LayerNorm(h)
        self.global_ = _gru(h, h, global_layers, cfg.dropout)
        # A learned initial state: with one block (contexts of <= BLOCK vectors)
        # the global GRU still takes a real recurrent step, and its recurrent
        # weights are trained by short contexts too (a zero state would give
        # them no gradient at all).
        self.h0 = nn.Parameter(torch.randn(global_layers, 1, h) * H0_INIT_STD)
        self.head = mlp_head(h, cfg.head_hidden, dim, cfg.dropout)
        with torch.no_grad():
            self.head[-1].weight.mul_(HEAD_INIT_SCALE)
            self.head[-1].bias.zero_()

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, t, d = context.shape
        L = self.block
        lengths = lengths.to(context.device)
        n_blocks = (lengths + L - 1) // L  # [B], >= 1 for every real sequence
        nb = int(n_blocks.max())
        width = nb * L
        x = context[:, : min(t, width)]
        if x.shape[1] < width:  # pad the last block
            x = torch.cat([x, x.new_zeros(b, width - x.shape[1], d)], dim=1)
        x = self.norm(x).reshape(b * nb, L, d)
        starts = torch.arange(nb, device=context.device) * L
        block_len = (lengths[:, None] - starts[None, :]).clamp(0, L).reshape(-1)  # [B*nb]
        real = block_len > 0
        packed = pack_padded_sequence(x[real], block_len[real].cpu(), batch_first=True, enforce_sorted=False)
        _, h_local = self.local(packed)
        summaries = self.summary_norm(h_local[-1])  # [n_real, H]
        grid = summaries.new_zeros(b * nb, summaries.shape[-1]).index_copy(
            0, real.nonzero().squeeze(1), summaries
        ).reshape(b, nb, -1)
        packed = pack_padded_sequence(grid, n_blocks.cpu(), batch_first=True, enforce_sorted=False)
        _, h_global = self.global_(packed, self.h0.expand(-1, b, -1).contiguous())
        return self.head(h_global[-1])
