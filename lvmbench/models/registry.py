"""Every model and baseline by name, with one way to build it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from torch import nn

from lvmbench.config import ModelConfig
from lvmbench.errors import UsageError
from lvmbench.models import baselines
from lvmbench.models.memory_gru import MemoryGRU


@dataclass(frozen=True)
class Context:
    """What a builder may need beyond the dimension: training-split statistics."""

    train_mean: np.ndarray | None = None
    seed: int = 0


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "model" (trained by the recipe) or "baseline" (no training)
    description: str
    build: Callable[[int, ModelConfig, Context], nn.Module]


def _global_mean(dim: int, cfg: ModelConfig, ctx: Context) -> nn.Module:
    if ctx.train_mean is None:
        raise UsageError("global_mean needs the training split's mean vector")
    return baselines.GlobalMean(ctx.train_mean)


REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry(
            "memory_gru",
            "model",
            "LayerNorm -> 4-layer GRU(512) -> attention over learned memory slots -> fusion -> MLP head",
            lambda dim, cfg, ctx: MemoryGRU(dim, cfg),
        ),
        Entry("copy_last", "baseline", "the last context vector", lambda d, c, x: baselines.CopyLast()),
        Entry("mean_context", "baseline", "mean of the context vectors", lambda d, c, x: baselines.MeanContext()),
        Entry("global_mean", "baseline", "mean vector of the training split", _global_mean),
        Entry("random", "baseline", "a seeded random direction", lambda d, c, x: baselines.RandomVector(d, x.seed)),
    ]
}


def get_entry(name: str) -> Entry:
    if name not in REGISTRY:
        raise UsageError(f"unknown model '{name}' (known: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def build(name: str, dim: int, cfg: ModelConfig, ctx: Context | None = None) -> nn.Module:
    return get_entry(name).build(dim, cfg, ctx or Context())


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def trained_models() -> list[str]:
    return [n for n, e in REGISTRY.items() if e.kind == "model"]


def baseline_names() -> list[str]:
    return [n for n, e in REGISTRY.items() if e.kind == "baseline"]
