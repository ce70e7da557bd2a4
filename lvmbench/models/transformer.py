"""Causal pre-norm Transformer over the context.

Linear(D, hidden) + sinusoidal positions -> ``layers`` x [LayerNorm -> causal
multi-head self-attention -> + residual; LayerNorm -> MLP(FFN_MULT x hidden)
-> + residual] -> LayerNorm -> MLP head -> D, read at each sequence's true
last position.

* Positions are sinusoidal and computed on the fly for whatever length
  arrives: there is no position table and no length cap.
* Causality alone keeps right padding out of the output: the position read,
  ``lengths - 1``, attends only to itself and earlier (real) positions, so
  no key-padding mask is needed and no attention row is ever fully masked.
* Predicts the next vector itself (``predicts_delta = False``).

Config: ``hidden`` is the model width, ``layers`` the number of blocks,
``head_hidden`` the output head, ``dropout`` everywhere.  Heads and FFN width
are the constants below (no ``ModelConfig`` field yet); the head count falls
back to the largest divisor of ``hidden`` that divides ``HEADS``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lvmbench.config import ModelConfig
from lvmbench.models.heads import mlp_head

HEADS = 8
FFN_MULT = 4


def sinusoidal_positions(length: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[length, width]`` sin/cos positional encoding (Vaswani et al.), any length."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    half = torch.arange(0, width, 2, device=device, dtype=torch.float32)
    angle = pos * torch.exp(-math.log(10000.0) * half / width)[None, :]
    pe = torch.zeros(length, width, device=device)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : width // 2])
    return pe.to(dtype)


class Block(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ffn = nn.Sequential(
            nn.Linear(width, FFN_MULT * width), nn.GELU(), nn.Linear(FFN_MULT * width, width), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(w, dim=-1)
        q, k, v = (z.view(b, t, self.heads, w // self.heads).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        x = x + F.dropout(self.out(a.transpose(1, 2).reshape(b, t, w)), self.dropout, self.training)
        return x + self.ffn(self.norm2(x))


class CausalTransformer(nn.Module):
    predicts_delta = False

    def __init__(self, dim: int, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden
        self.width = h
        heads = math.gcd(h, HEADS)
        self.inp = nn.Linear(dim, h)
        self.blocks = nn.ModuleList(Block(h, heads, cfg.dropout) for _ in range(cfg.layers))
        self.out_norm = nn.LayerNorm(h)
        self.head = mlp_head(h, cfg.head_hidden, dim, cfg.dropout)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, t, _ = context.shape
        lengths = lengths.to(context.device)
        t = min(t, int(lengths.max()))  # columns past every length are never read
        x = self.inp(context[:, :t]) + sinusoidal_positions(t, self.width, context.device, context.dtype)
        for block in self.blocks:
            x = block(x)
        last = x[torch.arange(b, device=x.device), lengths - 1]
        return self.head(self.out_norm(last))
