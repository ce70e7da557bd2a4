"""The recipes' losses, on L2-normalised predictions (what retrieval scores).

* consultant: MSE + 0.5·(1 − cos) + 0.05·InfoNCE(τ = 0.07), the InfoNCE over
  the other targets of the micro-batch (32 negatives);
* contrastive: InfoNCE of each prediction against its target and the whole
  training split as negatives (a seeded subset above ``train.max_negatives``),
  the query's own excluded context masked as at evaluation.
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


def contrastive_loss(
    pred: torch.Tensor, target: torch.Tensor, target_rows: torch.Tensor, excl_lo: torch.Tensor,
    negatives: torch.Tensor, neg_rows: torch.Tensor, tau: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """InfoNCE of each prediction against its target and a large set of negatives (the contrastive recipe).

    ``negatives`` ``[M, D]`` are unit vectors (the training split's vectors,
    rows ``neg_rows``); for query ``i`` the negatives in rows
    ``[excl_lo[i], target_rows[i]]`` (its own excluded context and the target
    itself) are masked, exactly as evaluation leaves them out of the
    candidates.  The target is the positive (logit 0), so a target outside the
    negative set (a val query) is handled the same way.
    """
    pred = F.normalize(pred, dim=-1)
    pos = (pred * F.normalize(target, dim=-1)).sum(-1, keepdim=True) / tau
    neg = pred @ negatives.T / tau
    rows = neg_rows[None, :]
    masked = (rows >= excl_lo[:, None]) & (rows <= target_rows[:, None])
    logits = torch.cat([pos, neg.masked_fill(masked, float("-inf"))], dim=1)
    loss = F.cross_entropy(logits, torch.zeros(len(pred), dtype=torch.long, device=pred.device))
    return loss, {"infonce_pool": float(loss.detach())}


def negative_sample(neg_rows: torch.Tensor, limit: int, target_rows: torch.Tensor, seed: int) -> torch.Tensor:
    """Indices into the negatives: all of them, or (above ``limit``) a subset fixed by the batch.

    The subset depends only on the seed and the batch's target rows, so a
    resumed run draws the same negatives as an uninterrupted one.
    """
    if limit <= 0 or len(neg_rows) <= limit:
        return torch.arange(len(neg_rows), device=neg_rows.device)
    g = torch.Generator().manual_seed(seed * 1_000_003 + int(target_rows.sum().item()))
    return torch.randperm(len(neg_rows), generator=g)[:limit].to(neg_rows.device)
