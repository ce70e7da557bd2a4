"""The stronger baseline, the contrastive recipe and the reference model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lvmbench.cli import main
from lvmbench.config import Recipe, apply_overrides, load_recipe
from lvmbench.data.prepare import prepare
from lvmbench.evaluate.inference import predict_all
from lvmbench.models.build import build_model
from lvmbench.train.loss import contrastive_loss


def test_contrastive_loss_masks_the_querys_own_context_and_target():
    g = torch.Generator().manual_seed(0)
    negatives = torch.nn.functional.normalize(torch.randn(12, 8, generator=g), dim=-1)
    rows = torch.arange(100, 112)
    target_rows = torch.tensor([106, 110])
    lo = torch.tensor([103, 110])  # query 0 excludes rows 103..105, query 1 nothing before its target
    pred = negatives[[5, 3]].clone()  # query 0 predicts its own (excluded) context row 105 exactly
    target = negatives[[6, 10]]
    loss, _ = contrastive_loss(pred, target, target_rows, lo, negatives, rows, tau=0.05)
    # the same loss by hand: positive = target; negatives = every row but the excluded window and the target
    expected = []
    for i, (t, first) in enumerate(zip(target_rows.tolist(), lo.tolist())):
        keep = [r - 100 for r in rows.tolist() if not (first <= r <= t)]
        logits = torch.cat([(pred[i] @ target[i])[None], pred[i] @ negatives[keep].T]) / 0.05
        expected.append(-torch.log_softmax(logits, 0)[0])
    assert loss.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-6)
    # unmasked, the copied context row would compete with the target and raise the loss
    unmasked, _ = contrastive_loss(pred, target, target_rows, torch.tensor([106, 110]), negatives, rows, tau=0.05)
    assert unmasked.item() > loss.item()


@pytest.fixture(scope="module")
def prep_recipe(tiny_store):
    recipe = apply_overrides(Recipe(), ["eval.bootstrap=20"])
    return prepare(tiny_store, recipe), recipe


def test_epoch_0_of_the_reference_model_is_the_decayed_mean_baseline(prep_recipe):
    prep, recipe = prep_recipe
    recipe.model.name = "reference"
    reference = build_model("reference", prep, recipe)
    baseline = build_model("decayed_mean", prep, recipe)
    unit = torch.from_numpy(prep.unit)
    samples = prep.samples["test"]
    a = predict_all(reference, unit, samples, recipe.data.context_len)
    b = predict_all(baseline, unit, samples, recipe.data.context_len)
    assert torch.equal(a, b)
    assert sum(p.numel() for p in reference.parameters() if p.requires_grad) > 0


def test_every_reference_parameter_learns(prep_recipe):
    prep, recipe = prep_recipe
    from lvmbench.data.samples import gather_batch

    model = build_model("reference", prep, recipe)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    s = prep.samples["train"]
    for step in range(3):  # the zero-initialised output layer unlocks the inner layer after one step
        idx = np.arange(step * 32, step * 32 + 32)
        ctx, lengths, target = gather_batch(torch.from_numpy(prep.unit), s.target[idx], s.start[idx], 100)
        loss = 1 - torch.nn.functional.cosine_similarity(model(ctx, lengths), target).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    frozen = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert frozen == []


def test_the_decayed_mean_coefficients_are_chosen_on_val_and_recorded(tiny_store, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out),
                 "--set", "eval.bootstrap=20"]) == 0
    res = json.loads((out / "results.json").read_text())
    fit = res["baselines"]["decayed_mean"]["fit"]
    assert {"a", "half_life", "g", "val_mrr"} <= set(fit) and "val" in fit["chosen_by"]
    assert fit["queries"] == res["split"]["samples"]["val"]
    assert set(res["lift_over"]) == set(res["baselines"])  # the paired test against every baseline


def test_recipes_by_name_and_by_file(tmp_path):
    contrastive = load_recipe("contrastive")
    assert contrastive.name == "contrastive" and contrastive.train.loss == "contrastive"
    assert contrastive.train.stop_metric == "mrr" and contrastive.train.tau == 0.05
    assert load_recipe("consultant").to_dict() == Recipe().to_dict()  # the default, exactly
    toml = tmp_path / "mine.toml"
    toml.write_text('[train]\nloss = "contrastive"\nlr = 0.002\n')
    assert load_recipe(str(toml)).train.lr == 0.002


def test_the_reference_model_trains_with_the_contrastive_recipe(tiny_store, tmp_path):
    out = tmp_path / "ref"
    assert main(["run", "--model", "reference", "--recipe", "contrastive", "--data", str(tiny_store.path),
                 "--out", str(out), "--set", "train.max_epochs=3", "--set", "eval.bootstrap=20",
                 "--set", "model.options.hidden=32"]) == 0
    res = json.loads((out / "results.json").read_text())
    hist = json.loads((out / "training_history.json").read_text())
    assert res["recipe"]["name"] == "contrastive" and hist["stop_metric"] == "mrr"
    assert res["model"]["spec"]["source"] == "entry point" and res["model"]["fit"]["base"]["chosen_by"]
    assert res["consistency"]["ok"] and res["consistency"]["val"]["ok"]
    assert "decayed_mean" in res["lift_over"] and "mcnemar_p_hit@5" in res["lift_over"]["decayed_mean"]
