"""Baselines that need no training, scored through exactly the model path.

The celebrated 51 % "peak" of the original project was copy-the-last-vector;
no trivial predictor was ever scored through its Hit@K code.  These are
``nn.Module``s with the model interface so ``predict()`` and the scorer cannot
tell them apart from a trained model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lvmbench.models.predict import last_vector


class CopyLast(nn.Module):
    """ŷ = the last context vector."""

    predicts_delta = False

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return last_vector(context, lengths)


class MeanContext(nn.Module):
    """ŷ = mean of the real (unpadded) context vectors."""

    predicts_delta = False

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return context.sum(dim=1) / lengths.to(context.device, context.dtype).clamp(min=1).unsqueeze(-1)


class GlobalMean(nn.Module):
    """ŷ = the mean training vector, whatever the context."""

    predicts_delta = False

    def __init__(self, mean: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.mean.to(context.device).expand(context.shape[0], -1)


class RandomVector(nn.Module):
    """ŷ = a random direction, seeded so two runs agree.

    The generator advances per call, so a fixed query order (the scorer's)
    gives the same predictions every run.
    """

    predicts_delta = False

    def __init__(self, dim: int, seed: int):
        super().__init__()
        self.dim = dim
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out = torch.randn(context.shape[0], self.dim, generator=self.generator)
        return out.to(context.device)
