"""``predict()`` over a split's queries, in eval mode, refusing outputs that cannot be ranked.

* :func:`predict_all` / :func:`predict_many`: one model / several models over
  samples (each batch of contexts gathered once for all of them); a row that
  is not a finite unit vector raises :class:`DegeneratePredictions`;
* :func:`predict_queries` / :func:`predict_queries_many`: the same over a split's
  :class:`Queries`, with errors naming the model, the split and the query.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lvmbench.config import Recipe
from lvmbench.data.samples import Samples, gather_batch
from lvmbench.errors import DegeneratePredictions, ModelOutputError
from lvmbench.evaluate.queries import Queries
from lvmbench.models.predict import bad_rows, explain, predicts_delta, reconstruct


def predict_all(
    model: nn.Module,
    unit: torch.Tensor,
    samples: Samples,
    context_len: int,
    batch: int = 256,
    check: bool = True,
) -> torch.Tensor:
    """``predict()`` for every sample, in order, in eval mode: ``[n, D]`` unit vectors.

    With ``check``, raises :class:`DegeneratePredictions` (naming the first
    bad query and what happened to it) when any row is not a finite unit
    vector: such a row ties every candidate and cannot be ranked.  The
    training loop's validation passes ``check=False`` and counts them itself.
    """
    return predict_many({"": model}, unit, samples, context_len, batch, check)[""]


@torch.no_grad()
def predict_many(
    models: dict[str, nn.Module],
    unit: torch.Tensor,
    samples: Samples,
    context_len: int,
    batch: int = 256,
    check: bool = True,
) -> dict[str, torch.Tensor]:
    """:func:`predict_all` for several models at once: each batch of contexts is gathered once for all of them.

    Gathering ``[batch, T, D]`` contexts costs more than most baselines'
    arithmetic, so the baselines of a run share it.  A degenerate output
    raises for the first model (in ``models``' order) that has one, with
    ``exc.model`` set to its name.
    """
    was_training = {name: m.training for name, m in models.items()}
    for m in models.values():
        m.eval()
        if hasattr(m, "reset"):
            m.reset()  # seeded baselines restart their stream: same queries, same predictions
    out: dict[str, list[torch.Tensor]] = {name: [] for name in models}
    bad: dict[str, list[Any]] = {name: [0, None] for name in models}
    try:
        for s in range(0, len(samples), batch):
            ctx, lengths, _ = gather_batch(unit, samples.target[s : s + batch], samples.start[s : s + batch],
                                           context_len)
            for name, model in models.items():
                raw = reconstruct(model, ctx, lengths)
                pred = F.normalize(raw, dim=-1, eps=1e-12).float()  # exactly predict(), then float32
                out[name].append(pred)
                if check:
                    _count_bad(bad[name], pred, raw, s, predicts_delta(model))
    finally:
        for name, m in models.items():
            m.train(was_training[name])
    for name, (count, first) in bad.items():
        if first is not None:
            exc = DegeneratePredictions(f"query {first[0]}: {first[1]} ({count} of {len(samples)} predictions are "
                                        "not finite unit vectors once normalised)", first[0], first[1], count)
            exc.model = name
            raise exc
    return {name: torch.cat(p) if p else torch.empty(0, unit.shape[1]) for name, p in out.items()}


def _count_bad(tally: list[Any], pred: torch.Tensor, raw: torch.Tensor, offset: int, delta: bool) -> None:
    rows = bad_rows(pred)
    if len(rows) and tally[1] is None:
        tally[1] = (offset + int(rows[0]), explain(raw[int(rows[0])], delta))
    tally[0] += len(rows)


def predict_queries(name: str, model: torch.nn.Module, unit_t: torch.Tensor, queries: Queries, recipe: Recipe,
                    split: str) -> torch.Tensor:
    """``predict()`` every query; a model whose output cannot be ranked is an integrity failure naming it."""
    return predict_queries_many({name: model}, unit_t, queries, recipe, split)[name]


def predict_queries_many(models: dict[str, torch.nn.Module], unit_t: torch.Tensor, queries: Queries,
                         recipe: Recipe, split: str) -> dict[str, torch.Tensor]:
    """``predict()`` every query with each model (contexts gathered once); errors name the model and the query."""
    try:
        return predict_many(models, unit_t, queries.samples, recipe.data.context_len, recipe.train.eval_batch)
    except DegeneratePredictions as exc:
        q, name = exc.index, exc.model
        raise DegeneratePredictions(
            f"{name}: {split} query {q} (target row {int(queries.samples.target[q])}): {exc.reason}; {exc.count} of "
            f"{len(queries)} {split} predictions are not finite unit vectors once normalised and would tie every "
            "candidate, so they cannot be scored", q, exc.reason, exc.count, name) from None
    except ModelOutputError as exc:
        raise ModelOutputError(f"model '{', '.join(models)}': while predicting the {split} queries: {exc}") from None
