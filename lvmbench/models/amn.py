"""AMN (attention mixture network): the context mean plus an attention-weighted residual.

ŷ = mean(context) + head([r, q]), where the query q comes from the mean and the
last vector, r = Σ_t softmax_t(q·k_t / √hidden) v_t over the real context
positions only, and k_t, v_t are projections of each context vector.  The mean
is the baseline it must improve on; the residual is what attention adds.
Predicts the next vector itself (``predicts_delta = False``); ``layers`` and
``memory_slots`` are unused (one attention read).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lvmbench.config import ModelConfig
from lvmbench.models.heads import mlp_head
from lvmbench.models.predict import last_vector


class AMN(nn.Module):
    predicts_delta = False

    def __init__(self, dim: int, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden
        self.query = nn.Sequential(nn.LayerNorm(2 * dim), nn.Linear(2 * dim, h))
        self.kv_norm = nn.LayerNorm(dim)
        self.key = nn.Linear(dim, h)
        self.value = nn.Linear(dim, h)
        self.head = mlp_head(2 * h, cfg.head_hidden, dim, cfg.dropout)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(context.device)
        real = torch.arange(context.shape[1], device=context.device)[None, :] < lengths[:, None]  # [B, T]
        mean = (context * real.unsqueeze(-1)).sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(context.dtype)
        q = self.query(torch.cat([mean, last_vector(context, lengths)], dim=-1))  # [B, H]
        kv = self.kv_norm(context)
        scores = torch.einsum("bh,bth->bt", q, self.key(kv)) / math.sqrt(q.shape[-1])
        weights = torch.softmax(scores.masked_fill(~real, float("-inf")), dim=-1)
        r = torch.einsum("bt,bth->bh", weights, self.value(kv))
        return mean + self.head(torch.cat([r, q], dim=-1))
