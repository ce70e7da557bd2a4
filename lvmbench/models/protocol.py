"""The contract every model meets, built-in or brought by a user, checked when it is built.

A model is a ``torch.nn.Module`` whose ``forward(context, lengths)`` maps a
right-padded batch of contexts ``[B, T, D]`` (real vectors first, zeros after)
and their lengths ``[B]`` to one ``[B, D]`` output per sequence.  The output
is the predicted next vector, or, when the class sets ``predicts_delta =
True``, a step from the last context vector.  lvmbench L2-normalises it in the
one ``predict()`` before anything scores it.  A model that trains needs at
least one parameter with ``requires_grad``.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from lvmbench.errors import UsageError, first_line


@runtime_checkable
class NextVectorModel(Protocol):
    """What lvmbench calls.  ``predicts_delta`` (a class attribute, default False) is optional."""

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor: ...


def _smoke_batch(dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two short unit-vector contexts (lengths 3 and 1), from a private generator: no global RNG is drawn."""
    g = torch.Generator().manual_seed(0)
    ctx = torch.nn.functional.normalize(torch.randn(2, 3, dim, generator=g), dim=-1)
    ctx[1, 1:] = 0.0
    return ctx, torch.tensor([3, 1])


def check_model(model: object, name: str, dim: int, trained: bool) -> None:
    """Refuse, with one line saying what is missing, an object that does not meet the contract."""
    if not isinstance(model, nn.Module):
        raise UsageError(f"model '{name}': built a {type(model).__name__}, not a torch.nn.Module")
    if type(model).forward is nn.Module.forward:
        raise UsageError(f"model '{name}': {type(model).__name__} defines no forward(context, lengths)")
    try:
        inspect.signature(model.forward).bind(torch.zeros(1), torch.zeros(1))
    except TypeError:
        raise UsageError(f"model '{name}': forward must take (context [B, T, D], lengths [B]), "
                         f"not {inspect.signature(model.forward)}") from None
    delta = getattr(model, "predicts_delta", False)
    if not isinstance(delta, bool):
        raise UsageError(f"model '{name}': predicts_delta must be True or False, got {delta!r}")
    if trained and not any(p.requires_grad for p in model.parameters()):
        raise UsageError(f"model '{name}': has no trainable parameters; register it with kind='baseline' "
                         "to score it without training")
    _check_output(model, name, dim)


def _check_output(model: nn.Module, name: str, dim: int) -> None:
    ctx, lengths = _smoke_batch(dim)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(ctx, lengths)
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported as one line
        raise UsageError(f"model '{name}': forward failed on a [2, 3, {dim}] batch "
                         f"({type(exc).__name__}: {first_line(exc)})") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, dim):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"model '{name}': forward must return a [B, D] = [2, {dim}] tensor for a [2, 3, {dim}] "
                         f"batch, got {got}")
    if not torch.isfinite(out).all():
        raise UsageError(f"model '{name}': forward returned NaN or Inf on a [2, 3, {dim}] batch")
