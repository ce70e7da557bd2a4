"""LSTM: input LayerNorm -> ``layers``-layer LSTM(hidden) over the packed context
-> the top layer's state at each sequence's true end -> MLP head -> D.

The plain recurrent reference next to memory_gru and gru; predicts the next
vector itself (``predicts_delta = False``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lvmbench.config import ModelConfig
from lvmbench.models.heads import mlp_head


class LSTMModel(nn.Module):
    predicts_delta = False

    def __init__(self, dim: int, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden
        self.norm = nn.LayerNorm(dim)
        self.lstm = nn.LSTM(dim, h, num_layers=cfg.layers, batch_first=True,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.head = mlp_head(h, cfg.head_hidden, dim, cfg.dropout)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.norm(context), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.head(h_n[-1])
