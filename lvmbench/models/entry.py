"""What the registry holds: an entry per model or baseline, and the training data a builder may read."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
from torch import nn

from lvmbench.config import ModelConfig


@dataclass(frozen=True)
class Context:
    """What a builder may need beyond the dimension: training-split data.

    ``unit`` is the float32 L2-normalised ``[N, D]`` array of every vector (a
    reference, never copied); ``train_pairs`` is ``(prev_rows, next_rows)``,
    int64 global rows of the training split's (x_{t-1}, x_t) pairs, both rows
    in the same chain.  The baselines fitted on the training split read them,
    and an outside model whose constructor takes ``train`` receives them.
    """

    train_mean: np.ndarray | None = None
    seed: int = 0
    unit: np.ndarray | None = None
    train_pairs: tuple[np.ndarray, np.ndarray] | None = None
    train_targets: np.ndarray | None = None
    """int64 [S] global row of every training sample's target (the training queries)."""
    train_starts: np.ndarray | None = None
    """int64 [S] the first row of each training sample's chain."""
    train_rows: np.ndarray | None = None
    """int64 [M] every row of the training chains, in order (the training pool)."""
    val_targets: np.ndarray | None = None
    """int64 [V] the val samples' target rows (what a baseline's few coefficients are chosen on)."""
    val_starts: np.ndarray | None = None
    val_rows: np.ndarray | None = None
    """int64 [W] every row of the val chains, in order (the val pool)."""
    context_len: int = 100
    exclusion: int = 100
    """The scoring contract's excluded window before each target (``config.exclusion_len``)."""


@dataclass(frozen=True)
class Entry:
    """One model or baseline: what it is, and the factory that builds it.

    Built-in entries name their factory as ``"module:attribute"``, imported
    only when the entry is built, so listing the zoo or parsing the command
    line loads no family that is not used; it is called ``factory(dim, cfg)``,
    or ``factory(dim, cfg, ctx)`` with ``data=True`` (the baselines fitted on
    the training split).  Outside entries (``outside=True``) hold the class or
    factory itself and are built from ``model.options``.
    """

    name: str
    kind: str  # "model" (trained by the recipe) or "baseline" (no training)
    description: str
    target: str | Callable[..., nn.Module]
    data: bool = False
    outside: bool = False
    source: str = "builtin"  # builtin | registered | import path | entry point
    package: str | None = None
    version: str | None = None

    def factory(self) -> Callable[..., nn.Module]:
        if callable(self.target):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def build(self, dim: int, cfg: ModelConfig, ctx: Context) -> nn.Module:
        if self.outside:  # a builder made by lvmbench.models.outside: options, train data, the contract check
            return self.target(dim, cfg, ctx)
        factory = self.factory()
        return factory(dim, cfg, ctx) if self.data else factory(dim, cfg)

    def spec(self) -> dict[str, str | None]:
        """What a checkpoint and results.json record about where the model came from."""
        return {"name": self.name, "kind": self.kind, "source": self.source, "package": self.package,
                "version": self.version}
