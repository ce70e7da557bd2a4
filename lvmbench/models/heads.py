"""The output head the recurrent and attention families share."""

from __future__ import annotations

from torch import nn


def mlp_head(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    """Linear -> GELU -> Dropout -> Linear: a state of ``in_dim`` to a ``out_dim`` prediction.

    Kept as one ``nn.Sequential`` so parameter names (``head.0.weight`` ...) and
    the order in which weights are initialised match the checkpoints and the
    seeded runs every family produced before it was shared.
    """
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))
