"""The model zoo: every family's padding/length/batch invariances, and the no-gradient baselines."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lvmbench.config import ModelConfig
from lvmbench.errors import UsageError
from lvmbench.models import baselines, registry
from lvmbench.models.predict import predict

D = 16
SMALL = ModelConfig(hidden=16, layers=2, memory_slots=4, head_hidden=32)
LENGTHS = [23, 1, 10, 11, 20, 7]  # one block, partial blocks, exact block, several blocks


def _model(name):
    torch.manual_seed(0)
    return registry.build(name, D, SMALL).eval()


def _batch(lengths=LENGTHS, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    ctx = F.normalize(torch.randn(len(lengths), t, D, generator=g), dim=-1)
    lengths = torch.tensor(lengths)
    for i, n in enumerate(lengths):
        ctx[i, n:] = 0
    return ctx, lengths


@pytest.mark.parametrize("name", registry.trained_models())
def test_padding_and_garbage_beyond_lengths_do_not_change_the_output(name):
    model = _model(name)
    ctx, lengths = _batch()
    wide = torch.cat([ctx, torch.zeros(len(lengths), 17, D)], dim=1)
    pos = torch.arange(wide.shape[1])[None, :, None]
    wide = torch.where(pos < lengths[:, None, None], wide, torch.randn_like(wide))  # garbage, not zeros
    with torch.no_grad():
        assert torch.allclose(predict(model, ctx, lengths), predict(model, wide, lengths), atol=1e-5)


@pytest.mark.parametrize("name", registry.trained_models())
def test_a_query_does_not_depend_on_its_batch(name):
    model = _model(name)
    ctx, lengths = _batch()
    with torch.no_grad():
        together = predict(model, ctx, lengths)
        alone = torch.cat([predict(model, ctx[i : i + 1, : lengths[i]], lengths[i : i + 1]) for i in range(len(lengths))])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("name", registry.trained_models())
def test_any_context_length_works(name):
    model = _model(name)
    ctx, lengths = _batch([250, 3, 101])  # beyond the recipe's T = 100
    with torch.no_grad():
        out = predict(model, ctx, lengths)
    assert out.shape == (3, D) and torch.isfinite(out).all()


def test_hierarchical_gru_predicts_a_delta_on_the_last_vector():
    model = _model("hierarchical_gru")
    assert model.predicts_delta
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
        ctx, lengths = _batch()
        out = predict(model, ctx, lengths)
    last = ctx[torch.arange(len(lengths)), lengths - 1]
    assert torch.allclose(out, F.normalize(last, dim=-1), atol=1e-6)


def test_hierarchical_gru_reads_every_block():
    """Changing the first vector of a 23-long context (block 1 of 3) changes the prediction."""
    model = _model("hierarchical_gru")
    ctx, lengths = _batch()
    other = ctx.clone()
    other[0, 0] = -other[0, 0]
    with torch.no_grad():
        a, b = predict(model, ctx, lengths), predict(model, other, lengths)
    assert not torch.allclose(a[0], b[0], atol=1e-6)
    assert torch.allclose(a[1:], b[1:])


def test_transformer_positions_are_computed_for_any_length():
    from lvmbench.models.transformer import sinusoidal_positions

    long = sinusoidal_positions(500, 16, torch.device("cpu"), torch.float32)
    assert long.shape == (500, 16)
    assert torch.equal(sinusoidal_positions(10, 16, torch.device("cpu"), torch.float32), long[:10])


def test_registry_entries_are_named_kinds_with_one_line_descriptions():
    for name, entry in registry.REGISTRY.items():
        assert entry.kind in {"model", "baseline"}
        assert entry.description and "\n" not in entry.description, name
    for name in ["hierarchical_gru", "gru", "lstm", "transformer", "amn"]:
        assert registry.get_entry(name).kind == "model"
    for name in ["ridge", "knn_successor"]:
        assert registry.get_entry(name).kind == "baseline"


def test_default_sizes_are_in_the_memory_gru_ballpark_at_768():
    for name in registry.trained_models():
        n = registry.n_params(registry.build(name, 768, ModelConfig()))
        assert 3e6 < n < 20e6, (name, n)


# --- no-gradient baselines -------------------------------------------------------------------

def _unit(n, d, seed=0):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1).numpy()


def test_ridge_is_the_closed_form_solution_with_an_unpenalised_intercept():
    unit = _unit(40, 6)
    prev, nxt = np.arange(0, 39), np.arange(1, 40)
    lam = 0.5
    w, b = baselines.fit_ridge(unit, (prev, nxt), lam, chunk=7)  # chunking must not matter
    x, y = unit[prev].astype(np.float64), unit[nxt].astype(np.float64)
    xa = np.hstack([x, np.ones((len(x), 1))])
    reg = lam * np.eye(7)
    reg[6, 6] = 0.0  # the intercept is not penalised
    wa = np.linalg.solve(xa.T @ xa + reg, xa.T @ y)
    np.testing.assert_allclose(w, wa[:6], atol=1e-5)
    np.testing.assert_allclose(b, wa[6], atol=1e-5)


def test_ridge_recovers_a_linear_successor_map():
    d = 8
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(d, d)))
    x = _unit(400, d)
    unit = np.concatenate([x, (x @ q).astype(np.float32)])  # row i + 400 follows row i
    pairs = (np.arange(400), np.arange(400) + 400)
    model = registry.build("ridge", d, ModelConfig(), registry.Context(unit=unit, train_pairs=pairs))
    assert registry.n_params(model) == 0
    np.testing.assert_allclose(model.weight.numpy(), q, atol=0.02)
    ctx = torch.from_numpy(x[:5]).unsqueeze(1)
    out = predict(model, ctx, torch.ones(5, dtype=torch.int64))
    assert torch.allclose(out, torch.from_numpy(x[:5] @ q).float(), atol=0.02)


def test_knn_successor_returns_the_successor_and_never_crosses_chains():
    unit = _unit(10, 5, seed=3)
    # chains [0..4] and [5..9]: 4 -> 5 is not a pair, so row 4 is not in the index
    prev = np.array([0, 1, 2, 3, 5, 6, 7, 8])
    model = registry.build("knn_successor", 5, ModelConfig(), registry.Context(unit=unit, train_pairs=(prev, prev + 1)))
    assert registry.n_params(model) == 0 and model.index.ntotal == 8
    ctx = torch.from_numpy(unit[[2, 6, 4]]).unsqueeze(1)
    with torch.no_grad():
        out = model(ctx, torch.ones(3, dtype=torch.int64))
    assert torch.equal(out[0], torch.from_numpy(unit[3]))
    assert torch.equal(out[1], torch.from_numpy(unit[7]))
    nearest = prev[np.argmax(unit[prev] @ unit[4])]  # row 4 itself has no successor
    assert torch.equal(out[2], torch.from_numpy(unit[nearest + 1]))
    assert not torch.equal(out[2], torch.from_numpy(unit[5]))


@pytest.mark.parametrize("name", ["ridge", "knn_successor"])
def test_data_baselines_refuse_to_build_without_training_pairs(name):
    with pytest.raises(UsageError, match=f"{name} needs the training split"):
        registry.build(name, 8, ModelConfig())


def test_build_model_fills_the_training_pairs_from_the_train_split(tiny_store, fast_recipe):
    from lvmbench.data.prepare import prepare
    from lvmbench.models.build import build_model

    prep = prepare(tiny_store, fast_recipe)
    train = prep.samples["train"]
    knn = build_model("knn_successor", prep, fast_recipe)
    assert knn.index.ntotal == len(train)
    chain_of = np.searchsorted(prep.store.offsets, np.arange(prep.store.n_vectors), side="right") - 1
    prev = train.target - 1
    assert np.array_equal(chain_of[prev], chain_of[train.target])  # same chain
    assert np.isin(chain_of[prev], prep.split.chains["train"]).all()  # train split only
    assert np.array_equal(knn.successor, train.target)
    ridge = build_model("ridge", prep, fast_recipe)
    assert ridge.weight.shape == (prep.store.dim, prep.store.dim)
