"""Build a registered model or baseline for one prepared dataset.

Baselines such as ``ridge`` and ``knn_successor`` are fitted on the training
split, so building needs the prepared data; the registry itself stays a table
of names and builders that knows nothing about datasets.
"""

from __future__ import annotations

from torch import nn

from lvmbench.config import Recipe
from lvmbench.data.prepare import Prepared
from lvmbench.models import registry


def build_context(prep: Prepared, recipe: Recipe) -> registry.Context:
    """What a builder may read: the training split's mean and (x_{t-1}, x_t) pairs, the seed."""
    train_rows = prep.samples["train"].target
    # a sample's target always has its previous row in the same chain
    return registry.Context(train_mean=prep.unit[train_rows].mean(axis=0), seed=recipe.seed,
                            unit=prep.unit, train_pairs=(train_rows - 1, train_rows))


def build_model(name: str, prep: Prepared, recipe: Recipe) -> nn.Module:
    return registry.build(name, prep.store.dim, recipe.model, build_context(prep, recipe))
