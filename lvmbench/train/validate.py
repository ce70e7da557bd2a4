"""What the training loop measures every epoch: val loss and val Hit@K.

Hit@K here comes from :func:`lvmbench.evaluate.ranking.torch_ranks`, the same
ranks the consistency check later compares with FAISS retrieval, so the
early-stopping number is the number index retrieval gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lvmbench.config import Recipe, training_seed
from lvmbench.data.samples import Samples, gather_batch
from lvmbench.evaluate.queries import Queries
from lvmbench.evaluate.ranking import torch_ranks
from lvmbench.evaluate.inference import predict_all
from lvmbench.models.predict import bad_rows, explain, predicts_delta, reconstruct
from lvmbench.train import distributed
from lvmbench.train.distributed import Dist
from lvmbench.train.loss import consultant_loss, contrastive_loss, negative_sample


@dataclass
class TrainData:
    unit: torch.Tensor  # [N, D] float32 L2-normalised, on the training device
    train: Samples
    val: Samples
    val_queries: Queries
    val_pool: torch.Tensor  # [P, D] on the training device
    exclusion: int = 0  # the scoring contract's excluded window (exclusion_len): the contrastive loss masks it
    negatives: torch.Tensor | None = None  # [M, D] the training split's vectors (contrastive recipe)
    neg_rows: torch.Tensor | None = None  # [M] their global rows


def batch_loss(pred: torch.Tensor, target: torch.Tensor, rows: np.ndarray, starts: np.ndarray, data: TrainData,
               recipe: Recipe, loss_fn: Callable[..., Any] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The recipe's loss of one batch; ``rows``/``starts``: the targets' global rows and their chains' starts.

    ``loss_fn`` stands in for the consultant loss (the trainer passes the one its module holds).
    """
    cfg = recipe.train
    if cfg.loss == "consultant":
        return (loss_fn or consultant_loss)(pred, target, cfg)
    if data.negatives is None or data.neg_rows is None:
        raise ValueError("the contrastive loss needs TrainData.negatives and neg_rows")
    dev = pred.device
    rows_t = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(dev)
    lo = torch.from_numpy(np.asarray(rows - np.minimum(rows - starts, data.exclusion), dtype=np.int64)).to(dev)
    keep = negative_sample(data.neg_rows, cfg.max_negatives, rows_t, training_seed(recipe))
    return contrastive_loss(pred, target, rows_t, lo, data.negatives[keep], data.neg_rows[keep], cfg.tau)


@torch.no_grad()
def validate_epoch(model: nn.Module, data: TrainData, recipe: Recipe,
                   dist: Dist = distributed.SINGLE) -> dict[str, Any]:
    """Val loss (recipe loss over micro-batch-sized chunks) and torch Hit@K on the val pool.

    Under torchrun the val queries are shared out: rank ``r`` takes the chunks
    ``r::world`` (the chunks the loss averages over), ranks them against the
    whole val pool, and the loss x weight, hit counts and reciprocal-rank sums
    are all-reduced; rank 0's result is then broadcast, so every rank takes the
    same early-stopping decision.  With one process the sums are those of
    ``np.average`` / ``metrics.hit_at_k`` / ``metrics.mrr`` over every query.
    """
    cfg = recipe.train
    n, mb = len(data.val), cfg.micro_batch
    chunks = list(range(0, n, mb))[dist.rank :: dist.world_size]
    keep = np.concatenate([np.arange(s, min(s + mb, n)) for s in chunks]) if chunks else np.empty(0, dtype=np.int64)
    samples = data.val.subset(keep)
    pred = predict_all(model, data.unit, samples, recipe.data.context_len, cfg.eval_batch,
                       check=False).to(data.unit.device)
    bad = bad_rows(pred)
    target = data.unit[torch.from_numpy(samples.target).to(data.unit.device)]
    losses, weights, pos = [], [], 0
    for s in chunks:
        w = min(mb, n - s)
        loss, _ = batch_loss(pred[pos : pos + w], target[pos : pos + w], samples.target[pos : pos + w],
                             samples.start[pos : pos + w], data, recipe)
        losses.append(loss.item())
        weights.append(w)
        pos += w
    ranks, _ = torch_ranks(pred, data.val_pool, data.val_queries.subset(keep), exclude=recipe.eval.exclude_context)
    ks = list(recipe.eval.ks)
    local = [float(np.multiply(losses, weights).sum()), float(sum(weights))]
    local += [float((ranks <= k).sum()) for k in ks]
    local += [float((1.0 / ranks.astype(np.float64)).sum()), float(len(bad)), float(len(ranks))]
    tot = distributed.all_reduce_sum(local, dist).tolist()
    count = tot[-1]
    out: dict[str, Any] = {"val_loss": tot[0] / tot[1]}
    for j, k in enumerate(ks):
        out[f"val_hit@{k}"] = tot[2 + j] / count
    out["val_mrr"] = tot[-3] / count
    if tot[-2] > 0:  # predictions that tie every candidate: no rank of this epoch means anything
        out.update({key: float("nan") for key in out if key != "val_loss"})
        out["val_degenerate"] = int(tot[-2])
        if len(bad):
            out["val_degenerate_first"] = _explain_first(model, data, samples, int(bad[0]), recipe)
    return distributed.broadcast_object(out, dist)


def _explain_first(model: nn.Module, data: TrainData, samples: Samples, i: int, recipe: Recipe) -> str:
    """What happened to one val prediction that is not a finite unit vector.

    Its batch is predicted again exactly as ``predict_all`` batched it, so a
    model whose output depends on the batch explains the row it really gave.
    """
    b = recipe.train.eval_batch
    s = (i // b) * b
    ctx, lengths, _ = gather_batch(data.unit, samples.target[s : s + b], samples.start[s : s + b],
                                   recipe.data.context_len)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            raw = reconstruct(model, ctx, lengths)[i - s]
        return f"val query {i}: {explain(raw, predicts_delta(model))}"
    finally:
        model.train(was_training)
