"""``reference``: the decayed-mean baseline plus a small learned residual.

ŷ = b + W₂·GELU(W₁·LayerNorm([x_last, m_h, b])), where b is the decayed-mean
baseline (x_last + a·m_h − g·μ, coefficients chosen on val by
:mod:`lvmbench.models.decayed_mean`).  W₂ and its bias start at zero, so the
untrained model *is* the baseline (epoch 0 predicts exactly what the baseline
predicts) and training can only move it where the objective says the
baseline is wrong.  It is meant for the contrastive recipe (``--recipe
contrastive``), which trains it in minutes on 2 CPU cores.

It reaches lvmbench the way an outside model does: lvmbench's own
``pyproject.toml`` declares it as the ``lvmbench.models`` entry point
``reference``, built as ``ReferenceModel(dim, hidden=..., train=...)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lvmbench.models.decayed_mean import DecayedMean, decayed_mean, fit_for
from lvmbench.models.predict import last_vector


class ReferenceModel(nn.Module):
    """The decayed-mean baseline plus a zero-initialised residual MLP (epoch 0 = the baseline)."""

    predicts_delta = False

    def __init__(self, dim: int, hidden: int = 512, train: Any = None):
        super().__init__()
        if train is None or getattr(train, "train_targets", None) is None:
            raise ValueError("reference needs the training split (lvmbench passes it as train=...)")
        self.base = DecayedMean(fit_for(train), train.train_mean)
        self.norm = nn.LayerNorm(3 * dim)
        self.inner = nn.Linear(3 * dim, hidden)
        self.act = nn.GELU()
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(context.device)
        base = self.base(context, lengths)
        m = decayed_mean(context, lengths, float(self.base.coef[1]))
        features = torch.cat([last_vector(context, lengths), m, base], dim=-1)
        return base + self.out(self.act(self.inner(self.norm(features))))

    def describe(self) -> dict[str, Any]:
        return {"base": self.base.describe()}
