"""lvmbench: train latent vector models through a fixed recipe and score them
end to end against a FAISS index, with baselines and integrity checks."""

from __future__ import annotations

from typing import Any, Callable

__version__ = "0.1.0"


def register_model(name: str, *, kind: str = "model", description: str = "") -> Callable[[Any], Any]:
    """Decorator: make a class or factory available as ``--model NAME`` in this process.

    ``NAME(dim, **model.options)`` must build a ``torch.nn.Module`` whose
    ``forward(context [B, T, D], lengths [B])`` returns ``[B, D]`` (see
    ``lvmbench.models.protocol``).  Imported lazily so ``import lvmbench`` stays light.
    """
    from lvmbench.models.registry import register_model as register

    return register(name, kind=kind, description=description)
