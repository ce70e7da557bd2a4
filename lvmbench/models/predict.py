"""The one ``predict()``: raw model output -> the unit vector that is scored.

The loss, the training-time Hit@K, the FAISS search and every baseline call
this and nothing else.  The project this recipe came from computed its metric
on a predicted *delta* while retrieval used the reconstructed vector, and a
later evaluation forgot the reconstruction; a single function makes that
class of bug impossible.

What gets scored is checked after every transformation (delta
reconstruction, the float32 cast, L2 normalisation): a row that is not a
finite unit vector at the end - NaN, an all-zero output, an output that
cancels the last context vector, one whose square overflows or underflows
float32 - cannot be ranked honestly (it ties every candidate), so
:func:`bad_rows` finds it and :func:`explain` says what happened to it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lvmbench.errors import ModelOutputError

UNIT_TOL = 1e-3
"""How far a scored row's norm may sit from 1 (float32 normalisation lands within ~1e-7)."""


def last_vector(context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The last real vector of each right-padded context: ``[B, D]``."""
    idx = (lengths - 1).clamp(min=0).to(context.device)
    return context[torch.arange(context.shape[0], device=context.device), idx]


def predicts_delta(model: nn.Module) -> bool:
    # under DistributedDataParallel the model's own attributes live on .module
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return bool(getattr(inner, "predicts_delta", False))


def reconstruct(model: nn.Module, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The model's prediction before normalisation: ``x_last + Δ̂`` for delta models, else ``ŷ``.

    The output's shape was checked when the model was built; a model that
    changes it later is refused here, before a loss or a rank can broadcast it.
    """
    out = model(context, lengths)
    want = (context.shape[0], context.shape[-1])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelOutputError(f"forward returned {got} for a {list(context.shape)} batch; it must return "
                               f"[B, D] = {list(want)}")
    if predicts_delta(model):
        out = last_vector(context, lengths) + out
    return out


def predict(model: nn.Module, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """L2(x_last + Δ̂) for delta models, L2(ŷ) otherwise."""
    return F.normalize(reconstruct(model, context, lengths), dim=-1, eps=1e-12)


def bad_rows(unit: torch.Tensor | np.ndarray) -> np.ndarray:
    """Indices of the rows of what is scored that are not finite unit vectors."""
    u = unit.detach().float().cpu().numpy() if isinstance(unit, torch.Tensor) else np.asarray(unit, np.float32)
    with np.errstate(all="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", u.astype(np.float64), u.astype(np.float64)))
    return np.flatnonzero(~(np.abs(norms - 1.0) <= UNIT_TOL))  # NaN norms fail the test too


def explain(raw: torch.Tensor | np.ndarray, delta: bool = False) -> str:
    """What went wrong with one raw (pre-normalisation, float32) row that did not become a unit vector."""
    r = raw.detach().float().cpu().numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw, np.float32)
    what = "x_last + the model's step" if delta else "the prediction"
    if not np.isfinite(r).all():
        return f"{what} has NaN or Inf"
    big = float(np.abs(r).max()) if r.size else 0.0
    if big == 0.0:
        return ("the model's step cancels the last context vector (x_last + step = 0)" if delta
                else f"{what} is all zeros (no direction to score)")
    with np.errstate(all="ignore"):
        square = float(np.dot(r, r))
    if not np.isfinite(square):
        return f"{what} overflows float32 when squared (largest |x| = {big:.3g}), so its norm is Inf"
    if square == 0.0:
        return f"{what} underflows float32 when squared (largest |x| = {big:.3g}), so its norm is 0"
    return f"{what} is not a unit vector after L2 normalisation (norm {np.sqrt(square):.3g})"
