"""Shared fixtures: small synthetic chain stores and a fast recipe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lvmbench.config import Recipe, apply_overrides
from lvmbench.data.synth import write_synth

FAST = [
    "model.hidden=64",
    "model.layers=2",
    "model.memory_slots=16",
    "model.head_hidden=128",
    "train.lr=3e-3",
    "train.accum_steps=1",
    "train.max_epochs=15",
    "eval.bootstrap=200",
    "eval.latency_calls=10",
    "eval.latency_seconds=0.2",
]


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """60 chains of 32-d synthetic vectors (about 1,600 vectors)."""
    return write_synth(tmp_path_factory.mktemp("data") / "tiny", n_chains=60, dim=32, seed=0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LVMBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def fast_recipe() -> Recipe:
    return apply_overrides(Recipe(), list(FAST))


@pytest.fixture(scope="module")
def restore_threads():
    """configure_threads() sets process-wide thread counts; a module using it gives the rest of the suite its own back."""
    import faiss
    import torch

    t, f = torch.get_num_threads(), faiss.omp_get_max_threads()
    yield
    torch.set_num_threads(t)
    faiss.omp_set_num_threads(f)


def job(parent: Path, slug: str) -> Path:
    """The one job directory ``<slug>-<10 hex of the job key>`` in ``parent`` (multi-run commands write these)."""
    found = [p for p in Path(parent).glob(f"{slug}-*") if p.is_dir() and re.fullmatch(re.escape(slug) + r"-[0-9a-f]{10}",
                                                                                       p.name)]
    assert len(found) == 1, f"{parent}: expected one {slug}-<hash> directory, found {[p.name for p in found]}"
    return found[0]


def stop_in_second_epoch(monkeypatch) -> None:
    """Ctrl-C at the second epoch's validation (after epoch 1's checkpoints are written)."""
    import lvmbench.train.trainer as loop

    real, calls = loop.validate_epoch, []

    def stop(*args):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(loop, "validate_epoch", stop)


def scripted_validation(values):
    """A validate_epoch returning val Hit@5 = each of ``values`` in turn (KeyboardInterrupt: raised)."""
    it = iter(values)

    def validate_epoch(model, d, r, dist=None):
        v = next(it)
        if v is KeyboardInterrupt:
            raise KeyboardInterrupt
        return {"val_loss": 1.0, "val_hit@1": 0.0, "val_hit@5": v, "val_hit@10": 0.0, "val_mrr": 0.0}
    return validate_epoch
