"""Every model and baseline by name, with one way to build it.

Names resolve in this order: the built-in zoo and models registered in this
process (``@lvmbench.register_model``), then ``package.module:NAME`` import
paths, then entry points that installed packages declare in the
``lvmbench.models`` group (:mod:`lvmbench.models.outside`).
"""

from __future__ import annotations

from typing import Callable, TypeVar

from torch import nn

from lvmbench.config import ModelConfig
from lvmbench.errors import UsageError
from lvmbench.models import outside
from lvmbench.models.entry import Context, Entry

__all__ = ["BUILTINS", "REGISTRY", "Context", "Entry", "build", "get_entry", "n_params", "register_model",
           "trained_models"]

T = TypeVar("T")


BUILTINS: list[Entry] = [
    Entry("memory_gru", "model",
          "LayerNorm -> 4-layer GRU(512) -> attention over learned memory slots -> fusion -> MLP head",
          "lvmbench.models.memory_gru:MemoryGRU"),
    Entry("hierarchical_gru", "model",
          "local GRU over blocks of 10 vectors -> global GRU over block summaries -> MLP head -> delta",
          "lvmbench.models.hierarchical_gru:HierarchicalGRU"),
    Entry("gru", "model", "Linear -> stacked GRU(512) with pre-norm residual blocks -> MLP head",
          "lvmbench.models.gru:ResidualGRU"),
    Entry("lstm", "model", "LayerNorm -> 4-layer LSTM(512) -> MLP head", "lvmbench.models.lstm:LSTMModel"),
    Entry("transformer", "model",
          "causal pre-norm Transformer (512 wide, 8 heads, sinusoidal positions, any length) -> MLP head",
          "lvmbench.models.transformer:CausalTransformer"),
    Entry("amn", "model",
          "mean of the context + MLP over an attention read of the context (attention mixture network)",
          "lvmbench.models.amn:AMN"),
    Entry("copy_last", "baseline", "the last context vector", "lvmbench.models.baselines:copy_last", data=True),
    Entry("mean_context", "baseline", "mean of the context vectors", "lvmbench.models.baselines:mean_context",
          data=True),
    Entry("global_mean", "baseline", "mean vector of the training split", "lvmbench.models.baselines:global_mean",
          data=True),
    Entry("random", "baseline", "a seeded random direction", "lvmbench.models.baselines:random_vector", data=True),
    Entry("ridge", "baseline", "closed-form ridge (lambda 1.0) from x_{t-1} to x_t on the training pairs",
          "lvmbench.models.baselines:ridge", data=True),
    Entry("knn_successor", "baseline", "successor of the nearest training vector (FAISS flat, exact)",
          "lvmbench.models.baselines:knn_successor", data=True),
    Entry("decayed_mean", "baseline", "x_last + a·(decayed context mean) − g·(training mean); a, h, g chosen on "
          "val", "lvmbench.models.decayed_mean:build", data=True),
]
"""The built-in zoo.  A new family is one module plus one line here (docs/architecture.md)."""

REGISTRY: dict[str, Entry] = {e.name: e for e in BUILTINS}


def get_entry(name: str) -> Entry:
    """The entry for a name: built-in or registered, an import path, or an installed entry point."""
    if name in REGISTRY:
        return REGISTRY[name]
    entry = outside.resolve(name)
    if entry is None:
        # entry points by name only (none is loaded); one that a built-in shadows is not reachable by that name
        installed = [n for n in dict.fromkeys(ep.name for ep in outside.entry_points()) if n not in REGISTRY]
        eps = f"; installed entry points: {', '.join(installed)}" if installed else ""
        raise UsageError(f"unknown model '{name}' (known: {', '.join(REGISTRY)}{eps}; or an import path "
                         "package.module:NAME, or an installed package's 'lvmbench.models' entry point)")
    return entry


def build(name: str, dim: int, cfg: ModelConfig, ctx: Context | None = None) -> nn.Module:
    return get_entry(name).build(dim, cfg, ctx or Context())


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def trained_models() -> list[str]:
    """The built-in families (``--model all``)."""
    return [e.name for e in BUILTINS if e.kind == "model"]


def baseline_names() -> list[str]:
    return [n for n, e in REGISTRY.items() if e.kind == "baseline"]


def register_model(name: str, *, kind: str = "model", description: str = "") -> Callable[[T], T]:
    """Decorator: make a class or factory available as ``--model NAME`` in this process.

    ``NAME(dim, **model.options)`` must build a module that meets
    :mod:`lvmbench.models.protocol`; ``kind="baseline"`` scores it without training.
    """
    def register(factory: T) -> T:
        if name in {e.name for e in BUILTINS}:
            raise UsageError(f"register_model: '{name}' is a built-in model; choose another name")
        REGISTRY[name] = outside.make_entry(name, factory, kind, description, source="registered")
        return factory

    return register
