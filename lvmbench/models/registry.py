"""Every model and baseline by name, with one way to build it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from torch import nn

from lvmbench.config import ModelConfig
from lvmbench.errors import UsageError
from lvmbench.models import baselines
from lvmbench.models.amn import AMN
from lvmbench.models.gru import ResidualGRU
from lvmbench.models.hierarchical_gru import HierarchicalGRU
from lvmbench.models.lstm import LSTMModel
from lvmbench.models.memory_gru import MemoryGRU
from lvmbench.models.transformer import CausalTransformer


@dataclass(frozen=True)
class Context:
    """What a builder may need beyond the dimension: training-split data.

    ``unit`` is the float32 L2-normalised ``[N, D]`` array of every vector (a
    reference, never copied); ``train_pairs`` is ``(prev_rows, next_rows)``,
    int64 global rows of the training split's (x_{t-1}, x_t) pairs, both rows
    in the same chain.  Only the no-gradient baselines read them.
    """

    train_mean: np.ndarray | None = None
    seed: int = 0
    unit: np.ndarray | None = None
    train_pairs: tuple[np.ndarray, np.ndarray] | None = None


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


def _needs_pairs(name: str, ctx: Context) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    if ctx.unit is None or ctx.train_pairs is None or len(ctx.train_pairs[0]) == 0:
        raise UsageError(f"{name} needs the training split's (x_{{t-1}}, x_t) pairs (registry.Context.unit/train_pairs)")
    return ctx.unit, ctx.train_pairs


def _ridge(dim: int, cfg: ModelConfig, ctx: Context) -> nn.Module:
    return baselines.Ridge(*_needs_pairs("ridge", ctx))


def _knn_successor(dim: int, cfg: ModelConfig, ctx: Context) -> nn.Module:
    return baselines.KNNSuccessor(*_needs_pairs("knn_successor", ctx))


REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry(
            "memory_gru",
            "model",
            "LayerNorm -> 4-layer GRU(512) -> attention over learned memory slots -> fusion -> MLP head",
            lambda dim, cfg, ctx: MemoryGRU(dim, cfg),
        ),
        Entry(
            "hierarchical_gru",
            "model",
            "local GRU over blocks of 10 vectors -> global GRU over block summaries -> MLP head -> delta",
            lambda dim, cfg, ctx: HierarchicalGRU(dim, cfg),
        ),
        Entry(
            "gru",
            "model",
            "Linear -> stacked GRU(512) with pre-norm residual blocks -> MLP head",
            lambda dim, cfg, ctx: ResidualGRU(dim, cfg),
        ),
        Entry("lstm", "model", "LayerNorm -> 4-layer LSTM(512) -> MLP head", lambda dim, cfg, ctx: LSTMModel(dim, cfg)),
        Entry(
            "transformer",
            "model",
            "causal pre-norm Transformer (512 wide, 8 heads, sinusoidal positions, any length) -> MLP head",
            lambda dim, cfg, ctx: CausalTransformer(dim, cfg),
        ),
        Entry(
            "amn",
            "model",
            "mean of the context + MLP over an attention read of the context (attention mixture network)",
            lambda dim, cfg, ctx: AMN(dim, cfg),
        ),
        Entry("copy_last", "baseline", "the last context vector", lambda d, c, x: baselines.CopyLast()),
        Entry("mean_context", "baseline", "mean of the context vectors", lambda d, c, x: baselines.MeanContext()),
        Entry("global_mean", "baseline", "mean vector of the training split", _global_mean),
        Entry("random", "baseline", "a seeded random direction", lambda d, c, x: baselines.RandomVector(d, x.seed)),
        Entry("ridge", "baseline", "closed-form ridge (lambda 1.0) from x_{t-1} to x_t on the training pairs", _ridge),
        Entry("knn_successor", "baseline", "successor of the nearest training vector (FAISS flat, exact)",
              _knn_successor),
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
