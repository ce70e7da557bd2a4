"""The consultant loss: MSE + 0.5·(1 − cos) + 0.05·InfoNCE(τ = 0.07).

All three terms see L2-normalised prediction and target (the prediction comes
from ``predict()``), so the loss optimises exactly the vector that retrieval
scores.  InfoNCE uses the other targets of the batch as negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lvmbench.config import TrainConfig


def loss_terms(pred: torch.Tensor, target: torch.Tensor, tau: float) -> dict[str, torch.Tensor]:
    """Unweighted terms; ``pred`` and ``target`` are ``[B, D]``."""
    pred = F.normalize(pred, dim=-1)
    target = F.normalize(target, dim=-1)
    mse = F.mse_loss(pred, target)
    cos = 1.0 - (pred * target).sum(dim=-1).mean()
    logits = pred @ target.T / tau
    infonce = F.cross_entropy(logits, torch.arange(pred.shape[0], device=pred.device))
    return {"mse": mse, "cos": cos, "infonce": infonce}


def consultant_loss(
    pred: torch.Tensor, target: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    terms = loss_terms(pred, target, cfg.tau)
    total = cfg.mse_weight * terms["mse"] + cfg.cos_weight * terms["cos"] + cfg.infonce_weight * terms["infonce"]
    return total, {k: float(v.detach()) for k, v in terms.items()}
