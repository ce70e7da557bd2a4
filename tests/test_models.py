"""Every model: shapes, gradients to every parameter, predict() semantics."""

import pytest
import torch

from lvmbench.config import ModelConfig
from lvmbench.models import registry
from lvmbench.models.predict import predict
from lvmbench.train.loss import consultant_loss
from lvmbench.config import TrainConfig


def _batch(b=6, t=9, d=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    ctx = torch.nn.functional.normalize(torch.randn(b, t, d, generator=g), dim=-1)
    lengths = torch.tensor([t, 1, 3, t, 5, 2][:b])
    for i, n in enumerate(lengths):
        ctx[i, n:] = 0
    target = torch.nn.functional.normalize(torch.randn(b, d, generator=g), dim=-1)
    return ctx, lengths, target


@pytest.mark.parametrize("name", registry.trained_models())
def test_every_parameter_gets_a_gradient(name):
    small = ModelConfig(hidden=32, layers=2, memory_slots=8, head_hidden=64)
    model = registry.build(name, 32, small)
    ctx, lengths, target = _batch()
    loss, _ = consultant_loss(predict(model, ctx, lengths), target, TrainConfig())
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}.{pname} received no gradient"
        assert torch.count_nonzero(p.grad) > 0, f"{name}.{pname} has an all-zero gradient"


def test_memory_gru_has_the_recipe_size_at_768():
    n = registry.n_params(registry.build("memory_gru", 768, ModelConfig()))
    assert abs(n - 11.3e6) / 11.3e6 <= 0.05, n


_UNIT = torch.nn.functional.normalize(torch.randn(50, 32, generator=torch.Generator().manual_seed(1)), dim=-1).numpy()


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_outputs_are_unit_vectors_of_dim_d(name):
    import numpy as np

    ctx, lengths, _ = _batch()
    # one "document" of 50 vectors: the first 30 train (and the ridge pairs), the last 20 val
    model = registry.build(name, 32, ModelConfig(hidden=32, layers=2, memory_slots=8, head_hidden=64),
                           registry.Context(train_mean=np.ones(32, dtype=np.float32), unit=_UNIT,
                                            train_pairs=(np.arange(0, 49), np.arange(1, 50)),
                                            val_targets=np.arange(31, 50), val_starts=np.full(19, 30),
                                            val_rows=np.arange(30, 50)))
    out = predict(model, ctx, lengths)
    assert out.shape == (6, 32)
    assert torch.allclose(out.norm(dim=-1), torch.ones(6), atol=1e-5)


def test_padding_does_not_change_memory_gru_output():
    model = registry.build("memory_gru", 32, ModelConfig(hidden=32, layers=2, memory_slots=8, head_hidden=64)).eval()
    ctx, lengths, _ = _batch()
    wide = torch.cat([ctx, torch.randn(6, 4, 32)], dim=1)  # garbage beyond each length
    with torch.no_grad():
        assert torch.allclose(predict(model, ctx, lengths), predict(model, wide, lengths), atol=1e-6)


def test_predict_reconstructs_deltas():
    class Delta(torch.nn.Module):
        predicts_delta = True

        def forward(self, context, lengths):
            return torch.zeros(context.shape[0], context.shape[-1])

    ctx, lengths, _ = _batch()
    out = predict(Delta(), ctx, lengths)
    last = ctx[torch.arange(6), lengths - 1]
    assert torch.allclose(out, torch.nn.functional.normalize(last, dim=-1))


def test_copy_last_and_mean_context_baselines():
    ctx, lengths, _ = _batch()
    copy = predict(registry.build("copy_last", 32, ModelConfig()), ctx, lengths)
    assert torch.allclose(copy, ctx[torch.arange(6), lengths - 1], atol=1e-6)
    mean = predict(registry.build("mean_context", 32, ModelConfig()), ctx, lengths)
    expected = torch.stack([ctx[i, : lengths[i]].mean(0) for i in range(6)])
    assert torch.allclose(mean, torch.nn.functional.normalize(expected, dim=-1), atol=1e-6)


def test_unknown_model_is_a_usage_error():
    from lvmbench.errors import UsageError

    with pytest.raises(UsageError, match="unknown model 'nope'"):
        registry.get_entry("nope")
