"""Chain store, gates, split, leakage check and sample assembly."""

import json

import numpy as np
import pytest

from lvmbench.config import DataConfig
from lvmbench.data.gates import apply_gates, row_hashes, unit_vectors
from lvmbench.data.samples import context_index, make_samples
from lvmbench.data.split import check_leakage, split_chains
from lvmbench.data.store import load_store, write_store
from lvmbench.errors import DataError, IntegrityError


def _vecs(n, d=8, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_store_round_trip_is_memory_mapped_and_hashed(tmp_path):
    v = _vecs(20).astype(np.float16)
    store = write_store(tmp_path / "s", v, np.array([0, 7, 20]), {"name": "rt", "chain_ids": ["a", "b"]})
    again = load_store(tmp_path / "s")
    assert isinstance(again.vectors, np.memmap)
    assert again.n_chains == 2 and again.dim == 8 and again.chain_ids() == ["a", "b"]
    assert np.array_equal(np.asarray(again.chain(1)), v[7:20])
    assert again.sha256 == store.sha256
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert len(manifest["sha256"]["vectors"]) == 64


@pytest.mark.parametrize("bad,match", [(np.nan, "NaN or Inf"), (np.inf, "NaN or Inf"), (0.0, "zero norm")])
def test_bad_vectors_are_refused_with_their_row(tmp_path, bad, match):
    v = _vecs(10)
    v[4] = bad
    with pytest.raises(DataError, match=f"vector 4 .*{match}"):
        write_store(tmp_path / "s", v, np.array([0, 10]), {})
    assert not (tmp_path / "s").exists()


def test_tampered_array_fails_the_hash_check(tmp_path):
    write_store(tmp_path / "s", _vecs(10), np.array([0, 10]), {})
    np.save(tmp_path / "s" / "vectors.npy", _vecs(10, seed=1))
    with pytest.raises(DataError, match="sha256 .* does not match"):
        load_store(tmp_path / "s")


def test_existing_store_is_not_overwritten_by_default(tmp_path):
    write_store(tmp_path / "s", _vecs(10), np.array([0, 10]), {})
    with pytest.raises(DataError, match="--overwrite"):
        write_store(tmp_path / "s", _vecs(10), np.array([0, 10]), {})


def test_samples_never_cross_chains_and_follow_their_context():
    offsets = np.array([0, 3, 3, 10, 12])  # includes an empty chain
    s = make_samples(offsets, np.array([0, 1, 2, 3]), min_context=1)
    assert s.target.tolist() == [1, 2, 4, 5, 6, 7, 8, 9, 11]
    rows, lengths = context_index(s.target, s.start, context_len=3)
    for t, st, r, n in zip(s.target, s.start, rows, lengths):
        ctx = r[:n]
        assert np.all(ctx >= st) and np.all(ctx < t)
        assert ctx.tolist() == list(range(t - n, t))  # ordered, ending right before the target
        assert np.all(r[n:] == -1)
    assert lengths.tolist() == [1, 2, 1, 2, 3, 3, 3, 3, 1]


def test_gates_report_what_they_remove():
    v = _vecs(30)
    offsets = np.array([0, 3, 30])  # first chain shorter than 7
    res = apply_gates(v, offsets, row_hashes(v), DataConfig())
    assert res.kept.tolist() == [1]
    assert res.report["removed_length"] == 1
    assert set(res.report["coherence_would_remove"]) == {"0.0", "0.1", "0.2", "0.3", "0.4", "0.5"}


def test_split_is_seeded_by_chain_and_refuses_empty_splits():
    kept = np.arange(50)
    a = split_chains(kept, DataConfig(), seed=1)
    b = split_chains(kept, DataConfig(), seed=1)
    assert all(np.array_equal(a.chains[k], b.chains[k]) for k in a.chains)
    sets = [set(a.chains[k]) for k in ("train", "val", "test")]
    assert sum(map(len, sets)) == 50 and not (sets[0] & sets[1]) and not (sets[0] & sets[2])
    with pytest.raises(DataError, match="empty split"):
        split_chains(np.arange(4), DataConfig(), seed=0)


def test_leakage_check_catches_a_planted_duplicate():
    v = _vecs(100)
    offsets = np.arange(0, 101, 10)
    split = split_chains(np.arange(10), DataConfig(), seed=0)
    ids = [f"doc{i}" for i in range(10)]
    assert check_leakage(split, offsets, row_hashes(v), ids)["ok"]
    test_chain = int(split.chains["test"][0])
    train_chain = int(split.chains["train"][0])
    v[offsets[test_chain] + 2] = v[offsets[train_chain] + 5]  # a duplicated paragraph
    with pytest.raises(IntegrityError, match=f"1 val/test vectors .*doc{test_chain}"):
        check_leakage(split, offsets, row_hashes(v), ids)


def test_unit_vectors_normalises_float16():
    v = (_vecs(5) * 3).astype(np.float16)
    u = unit_vectors(v)
    assert u.dtype == np.float32
    assert np.allclose(np.linalg.norm(u, axis=1), 1, atol=1e-6)
