"""The recipe: loss terms, schedule shape, early stopping and checkpoints."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lvmbench.config import TrainConfig
from lvmbench.train.loss import consultant_loss, loss_terms
from lvmbench.train.schedule import lr_factor


def test_loss_terms_match_hand_formulas():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    p, y = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
    terms = loss_terms(pred, target, tau=0.07)
    assert terms["mse"].item() == pytest.approx(((p - y) ** 2).mean().item(), rel=1e-5)
    assert terms["cos"].item() == pytest.approx(1 - (p * y).sum(-1).mean().item(), rel=1e-5)
    logits = (p @ y.T / 0.07).numpy()
    expected = np.mean([-(logits[i, i] - np.log(np.exp(logits[i]).sum())) for i in range(4)])
    assert terms["infonce"].item() == pytest.approx(expected, rel=1e-4)
    total, _ = consultant_loss(pred, target, TrainConfig())
    assert total.item() == pytest.approx(
        terms["mse"].item() + 0.5 * terms["cos"].item() + 0.05 * terms["infonce"].item(), rel=1e-5
    )


def test_perfect_prediction_has_zero_mse_and_cos_loss():
    y = F.normalize(torch.randn(3, 5), dim=-1)
    terms = loss_terms(y, y, 0.07)
    assert terms["mse"].item() == pytest.approx(0, abs=1e-7) and terms["cos"].item() == pytest.approx(0, abs=1e-6)


def test_schedule_warmup_then_cosine_to_floor():
    warm, total = 10, 110
    f = [lr_factor(s, warm, total, 0.1) for s in range(130)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:9], f[1:10]))  # linear rise
    assert all(a >= b for a, b in zip(f[10:110], f[11:111]))  # monotone decay
    assert f[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f[110] == pytest.approx(0.1) and f[129] == pytest.approx(0.1)


def test_early_stopping_after_exactly_patience_bad_epochs(tmp_path, monkeypatch, tiny_store, fast_recipe):
    """Scripted val Hit@5: best at epoch 2, then 3 non-improving epochs -> stop at 5."""
    import lvmbench.train.trainer as loop
    from lvmbench.data.prepare import prepare
    from lvmbench.evaluate.evaluation import pool_for
    from lvmbench.models.build import build_model
    from lvmbench.evaluate.queries import make_queries
    from lvmbench.train.checkpoint import load_checkpoint

    script = iter([0.30, 0.50, 0.50, 0.45, 0.49, 0.99, 0.99])
    monkeypatch.setattr(loop, "validate_epoch", lambda m, d, r, dist=None: {"val_loss": 1.0, "val_hit@1": 0.0, "val_hit@5": next(script), "val_hit@10": 0.0})
    recipe = fast_recipe
    prep = prepare(tiny_store, recipe)
    unit = torch.from_numpy(prep.unit)
    pool = pool_for(prep, recipe, "val")
    data = loop.TrainData(unit, prep.samples["train"], prep.samples["val"],
                          make_queries(prep.samples["val"], pool, 100), torch.from_numpy(pool.vectors))
    model = build_model("memory_gru", prep, recipe)
    hist = loop.train(model, data, recipe, tmp_path, "memory_gru", log=lambda m: None)
    assert [h["epoch"] for h in hist["history"]] == [1, 2, 3, 4, 5]
    assert hist["best_epoch"] == 2 and hist["best_metric"] == 0.50 and hist["stopped_epoch"] == 5
    assert load_checkpoint(tmp_path / "best_val_hit5.pt")["epoch"] == 2
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 5
    for key in ("epoch", "train_loss", "val_loss", "lr", "val_hit@1", "val_hit@5", "val_hit@10"):
        assert key in hist["history"][0]
