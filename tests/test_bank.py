"""External banks, sharded exact search and the compressed-index report (``lvmbench eval --bank``)."""

import json

import faiss
import numpy as np
import pytest

from lvmbench.cli import main
from lvmbench.errors import DataError
from lvmbench.evaluate.index import Pool, build_pool, load_bank, search, shard_rows

from conftest import FAST


def _unit(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def trained(tiny_store, tmp_path_factory):
    """A small trained run (amn, 2 epochs) to score against banks."""
    out = tmp_path_factory.mktemp("bankrun") / "run"
    args = ["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(out), "--set", "train.max_epochs=2"]
    for item in FAST:
        if not item.startswith("train.max_epochs"):
            args += ["--set", item]
    assert main(args) == 0
    return out


def test_sharded_search_equals_one_flat_index():
    pool_vecs = _unit(5000, 24, 0)
    queries = _unit(70, 24, 1)
    flat = faiss.IndexFlatIP(24)
    flat.add(pool_vecs)
    want_s, want_i = flat.search(queries, 50)
    one_s, one_i = search(Pool("test", np.arange(5000), [pool_vecs]), queries, 50)
    for size in (1, 1024, 1500, 3000):
        rows = shard_rows(size)
        assert rows % 1024 == 0 and rows >= size
        pool = build_pool(pool_vecs, np.array([0, 5000]), np.array([0]), "full", shard_size=size)
        assert len(pool.shards) == -(-5000 // rows)
        got_s, got_i = search(pool, queries, 50)
        # shards cut on FAISS's 1,024-row blocks: bit for bit the unsharded search
        assert np.array_equal(got_s, one_s) and np.array_equal(got_i, one_i)
        # and the same neighbours as one IndexFlatIP (its per-query kernel may round the last bit differently)
        np.testing.assert_allclose(got_s, want_s, rtol=0, atol=1e-6)
        assert np.array_equal(got_i, want_i)
    # an arbitrary cut still finds the same neighbours, within the last bit
    got_s, got_i = search(Pool("test", np.arange(5000), np.split(pool_vecs, [7, 1500, 4999])), queries, 50)
    np.testing.assert_allclose(got_s, one_s, rtol=0, atol=1e-6)
    assert np.array_equal(got_i, one_i)


def test_load_bank_maps_unit_float32_and_normalises_the_rest(tmp_path):
    unit = _unit(500, 16, 2)
    np.save(tmp_path / "unit.npy", unit)
    bank = load_bank(tmp_path / "unit.npy", 16, log=lambda m: None)
    assert bank.mapped and isinstance(bank.vectors, np.memmap) and bank.size == 500
    raw = (unit * 3.0).astype(np.float16)
    np.save(tmp_path / "half.npy", raw)
    notes = []
    half = load_bank(tmp_path / "half.npy", 16, log=notes.append)
    assert not half.mapped and half.vectors.dtype == np.float32 and "normalising" in notes[0]
    np.testing.assert_allclose(np.linalg.norm(half.vectors, axis=1), 1.0, atol=1e-6)
    assert half.sha256 != bank.sha256


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: np.where(np.arange(40)[:, None] == 17, np.nan, _unit(40, 16, 3)).astype(np.float32), "row 17 has NaN"),
        (lambda: np.where(np.arange(40)[:, None] == 5, 0.0, _unit(40, 16, 3)).astype(np.float32), "row 5 is all zeros"),
        (lambda: _unit(40, 8, 3), "dim 8 but the dataset and model use 16"),
        (lambda: _unit(40, 16, 3)[None], "non-empty [N, D]"),
        (lambda: np.zeros((0, 16), np.float32), "non-empty [N, D]"),
        (lambda: _unit(40, 16, 3).astype(np.float64), "float16/float32"),
    ],
)
def test_bad_banks_are_refused_with_the_row(tmp_path, make, message):
    np.save(tmp_path / "bank.npy", make())
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_bank(tmp_path / "bank.npy", 16)


def test_eval_with_a_bank_sharded_or_not_gives_the_same_ranks(trained, tiny_store, tmp_path, capsys):
    bank = _unit(4000, tiny_store.dim, 4)
    np.save(tmp_path / "bank.npy", bank)
    base = ["eval", str(trained), "--data", str(tiny_store.path)]
    assert main(base + ["--out", str(tmp_path / "plain")]) == 0
    assert main(base + ["--bank", str(tmp_path / "bank.npy"), "--out", str(tmp_path / "flat")]) == 0
    assert main(base + ["--bank", str(tmp_path / "bank.npy"), "--shard-size", "700", "--out", str(tmp_path / "shards"),
                        "--set", "eval.search_depth=20"]) == 0
    printed = capsys.readouterr().out
    assert "+ bank of 4,000" in printed and "shards)" in printed
    plain, flat, sharded = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("plain", "flat", "shards"))
    assert flat["pool"]["size"] == plain["pool"]["size"] + 4000
    assert flat["pool"]["bank"]["size"] == 4000 and flat["pool"]["bank"]["memory_mapped"]
    assert sharded["pool"]["shards"] > 2 and flat["pool"]["shards"] == 2 and sharded["pool"]["shard_size"] == 1024
    assert sharded["pool"]["sha256"] == flat["pool"]["sha256"]  # the same pool however it is cut
    assert flat["consistency"]["ok"] and sharded["consistency"]["ok"]
    with np.load(tmp_path / "flat" / "predictions.npz") as a, np.load(tmp_path / "shards" / "predictions.npz") as b:
        for key in ("rank", "rank_with_context", "torch_rank", "rank__copy_last", "rank__random"):
            assert np.array_equal(a[key], b[key]), key
        with np.load(tmp_path / "plain" / "predictions.npz") as p:
            # distractors can only push a target down
            assert np.all(a["rank"] >= p["rank"])
    for key in ("hit@1", "hit@5", "hit@10", "mrr"):
        assert flat["metrics"][key] == sharded["metrics"][key]
        assert flat["metrics"][key] <= plain["metrics"][key]


def test_eval_bank_bad_input_is_one_line_and_writes_nothing(trained, tiny_store, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", _unit(50, tiny_store.dim + 1, 5))
    for extra, message in (
        (["--bank", str(tmp_path / "missing.npy")], "bank not found"),
        (["--bank", str(tmp_path / "wrong.npy")], f"dim {tiny_store.dim + 1}"),
        (["--shard-size", "-1"], "--shard-size -1"),
    ):
        out = tmp_path / "never"
        assert main(["eval", str(trained), "--data", str(tiny_store.path), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not out.exists()


def test_ann_report_sits_next_to_the_exact_headline(trained, tiny_store, tmp_path):
    np.save(tmp_path / "bank.npy", _unit(6000, tiny_store.dim, 6))
    base = ["eval", str(trained), "--data", str(tiny_store.path), "--bank", str(tmp_path / "bank.npy")]
    assert main(base + ["--out", str(tmp_path / "exact")]) == 0
    assert main(base + ["--ann", "ivfpq", "--out", str(tmp_path / "ann")]) == 0
    exact, ann = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("exact", "ann"))
    assert exact["metrics"] == ann["metrics"]  # the headline never comes from the compressed index
    rep = ann["ann"]
    assert rep["index"].startswith("IVF") and ",PQ" in rep["index"]
    assert 0.0 <= rep["recall@10"] <= 1.0 and rep["code_bytes"] < rep["flat_bytes"]
    assert rep["exact_hit@5"] == pytest.approx(exact["metrics"]["hit@5"])
    # what the compressed index finds in its top 5 it found through approximate scores: never more than exact + chance
    assert 0.0 <= rep["hit@5"] <= 1.0


def test_trec_export_refuses_a_bank_run(trained, tiny_store, tmp_path, capsys):
    np.save(tmp_path / "bank.npy", _unit(100, tiny_store.dim, 7))
    ev = tmp_path / "ev"
    assert main(["eval", str(trained), "--data", str(tiny_store.path), "--bank", str(tmp_path / "bank.npy"),
                 "--out", str(ev)]) == 0
    assert main(["trec", str(ev), "--out", str(tmp_path / "trec")]) == 2
    assert "external bank" in capsys.readouterr().err


def test_build_pool_full_shares_the_array_and_shards_are_views():
    unit = _unit(1000, 8, 8)
    offsets = np.arange(0, 1001, 100)
    pool = build_pool(unit, offsets, np.arange(10), "full", shard_size=300)  # rounds up to 1,024 rows
    assert len(pool.shards) == 1
    unit = _unit(3000, 8, 8)
    offsets = np.arange(0, 3001, 100)
    pool = build_pool(unit, offsets, np.arange(30), "full", shard_size=1024)
    assert len(pool.shards) == 3 and all(np.shares_memory(s, unit) for s in pool.shards)
    assert pool.sha256() == build_pool(unit, offsets, np.arange(30), "full").sha256()


def test_exact_duplicates_are_listed_by_position_whatever_the_sharding():
    x = _unit(4096, 16, 9)
    x[2048:] = x[:2048]  # every vector twice, the copies in other shards
    q = x[:50] + 0.01 * _unit(50, 16, 10)
    full = np.array([0, 4096])
    one_s, one_i = search(build_pool(x, full, np.array([0]), "full"), q, 8)
    sh_s, sh_i = search(build_pool(x, full, np.array([0]), "full", shard_size=1024), q, 8)
    assert np.array_equal(one_s, sh_s) and np.array_equal(one_i, sh_i)
    pairs = one_i.reshape(50, 4, 2)
    assert np.all(pairs[:, :, 1] == pairs[:, :, 0] + 2048)  # tied copies: lower position first


def test_sharded_torch_and_fallback_ranks_equal_unsharded_with_contexts_across_shard_cuts():
    import torch

    from lvmbench.data.samples import make_samples
    from lvmbench.evaluate.queries import make_queries
    from lvmbench.evaluate.ranking import faiss_ranks, torch_ranks

    unit = _unit(5000, 16, 11)
    offsets = np.arange(0, 5001, 250)  # chains of 250 straddle the 1,024-row shard cuts
    chains = np.arange(20)
    samples = make_samples(offsets, chains, 1)
    samples = samples.subset(np.random.default_rng(0).choice(len(samples), 300, replace=False))
    flat = build_pool(unit, offsets, chains, "full")
    cut = build_pool(unit, offsets, chains, "full", shard_size=1024)
    queries = make_queries(samples, flat, 40)
    pred = unit[samples.target] + 2.0 * _unit(300, 16, 12)  # ranks spread over the pool
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    want = torch_ranks(torch.from_numpy(pred), torch.from_numpy(flat.vectors), queries)
    got = torch_ranks(torch.from_numpy(pred), [(s, torch.from_numpy(v)) for s, v in cut.blocks()], queries)
    assert np.array_equal(got[0], want[0]) and np.allclose(got[1], want[1], rtol=0, atol=1e-6)
    for depth in (1000, 3):  # the retrieved list deep or short; the counts go shard by shard either way
        a, b = faiss_ranks(flat, queries, pred, depth=depth), faiss_ranks(cut, queries, pred, depth=depth)
        for key in ("rank", "rank_with_context", "ties", "retrieved", "top"):
            assert np.array_equal(getattr(a, key), getattr(b, key)), (depth, key)


def test_duplicates_of_the_target_tie_exactly_in_a_blas_sized_batch():
    """FAISS's BLAS product can score two equal vectors 1 ulp apart by their column; the per-pair
    rescoring must make a duplicate of the target tie with it (never outrank it); a copy is then a hit."""
    from lvmbench.evaluate.queries import Queries
    from lvmbench.evaluate.ranking import faiss_ranks
    from lvmbench.data.samples import Samples

    x = _unit(4000, 384, 13)
    x[2000:2400] = x[0:400]  # 400 vectors twice, at other columns
    pool = Pool("test", np.arange(4000), [x])
    n = 800  # 800 x 384 queries: FAISS's BLAS kernel even by its own default threshold
    target = np.arange(n) % 400
    pred = x[target] + 0.3 * _unit(n, 384, 14)
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    none = np.zeros(n, dtype=np.int64)
    samples = Samples(chain=none, target=target, start=target)
    queries = Queries(samples, target, none, none, np.full((n, 1), -1))
    fr = faiss_ranks(pool, queries, pred, depth=50)
    # every target's duplicate is its copy: counted as such, never as a better candidate nor a tie against it
    assert np.all(fr.copies == 1) and np.all(fr.ties == 0)
    alone = faiss_ranks(Pool("test", np.arange(2000), [x[:2000]]), queries, pred, depth=50)
    assert np.array_equal(fr.rank, alone.rank)  # the same ranks as without the copies in the pool
    s, i = search(pool, pred, 50)
    for row in range(n):
        where = {int(c): j for j, c in enumerate(i[row])}
        t = int(target[row])
        if t in where and t + 2000 in where:
            assert s[row][where[t]] == s[row][where[t + 2000]]
            assert where[t] < where[t + 2000]  # equal scores: lower pool position first
    # the premise: FAISS's raw BLAS scores do put some duplicate pairs 1 ulp apart on this data
    from lvmbench.evaluate.index import _knn

    raw_s, raw_i = _knn(np.ascontiguousarray(pred), x, 4000)
    full = np.empty((n, 4000), dtype=np.float32)
    full[np.arange(n)[:, None], raw_i] = raw_s
    assert (full[:, 0:400] != full[:, 2000:2400]).any()
