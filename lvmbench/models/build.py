"""Build a registered model or baseline for one prepared dataset.

Baselines such as ``ridge`` and ``knn_successor`` are fitted on the training
split, so building needs the prepared data; the registry itself stays a table
of names and builders that knows nothing about datasets.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from lvmbench.config import Recipe, exclusion_len
from lvmbench.data.prepare import Prepared
from lvmbench.models import registry


def build_context(prep: Prepared, recipe: Recipe) -> registry.Context:
    """What a builder may read: the training split's mean and (x_{t-1}, x_t) pairs, the seed."""
    train, val = prep.samples["train"], prep.samples["val"]
    offsets = prep.store.offsets

    def rows(split: str) -> np.ndarray:
        chains = prep.split.chains[split]
        return np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in chains]).astype(np.int64)

    # a sample's target always has its previous row in the same chain
    return registry.Context(train_mean=prep.unit[train.target].mean(axis=0), seed=recipe.seed,
                            unit=prep.unit, train_pairs=(train.target - 1, train.target),
                            train_targets=train.target, train_starts=train.start, train_rows=rows("train"),
                            val_targets=val.target, val_starts=val.start, val_rows=rows("val"),
                            context_len=recipe.data.context_len, exclusion=exclusion_len(recipe))


def build_model(name: str, prep: Prepared, recipe: Recipe) -> nn.Module:
    return registry.build(name, prep.store.dim, recipe.model, build_context(prep, recipe))
