"""The one ``predict()``: raw model output -> the unit vector that is scored.

The loss, the training-time Hit@K, the FAISS search and every baseline call
this and nothing else.  The project this recipe came from computed its metric
on a predicted *delta* while retrieval used the reconstructed vector, and a
later evaluation forgot the reconstruction; a single function makes that
class of bug impossible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def last_vector(context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The last real vector of each right-padded context: ``[B, D]``."""
    idx = (lengths - 1).clamp(min=0).to(context.device)
    return context[torch.arange(context.shape[0], device=context.device), idx]


def predict(model: nn.Module, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """L2(x_last + Δ̂) for delta models, L2(ŷ) otherwise."""
    out = model(context, lengths)
    # under DistributedDataParallel the model's own attributes live on .module
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    if getattr(inner, "predicts_delta", False):
        out = last_vector(context, lengths) + out
    return F.normalize(out, dim=-1, eps=1e-12)
