"""Ranks through the full scoring path: FAISS, torch, ties, exclusion, consistency."""

import numpy as np
import pytest
import torch

from lvmbench.data.gates import unit_vectors
from lvmbench.data.samples import make_samples
from lvmbench.evaluate.index import build_pool, search
from lvmbench.evaluate.queries import make_queries
from lvmbench.evaluate.ranking import exact_ranks, faiss_ranks, torch_ranks
from lvmbench.evaluate.consistency import check_consistency
from lvmbench.evaluate.inference import predict_all
from lvmbench.models.baselines import CopyLast


def _setup(store, chains=None):
    unit = unit_vectors(store.vectors)
    chains = np.arange(store.n_chains) if chains is None else chains
    pool = build_pool(unit, store.offsets, chains, "test")
    samples = make_samples(store.offsets, chains, 1)
    queries = make_queries(samples, pool, 100)
    return unit, pool, samples, queries


def test_hand_computed_ranks_with_ties_and_exclusion(tmp_path):
    from lvmbench.data.store import write_store

    # one chain of 4 vectors in 2-D; the query predicts e1 for target row 3
    vecs = np.array([[1, 0], [1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    store = write_store(tmp_path / "s", vecs, np.array([0, 4]), {"name": "hand"})
    unit, pool, samples, queries = _setup(store)
    assert samples.target.tolist() == [1, 2, 3]
    pred = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    fr = faiss_ranks(pool, queries, pred, depth=10)
    # query 0: target row 1 = [1,0]; row 0 is an exact tie but excluded context; nothing greater
    assert fr.rank[0] == 1 and fr.rank_with_context[0] == 1 and fr.ties[0] == 0
    # query 1: pred [0,1], target row 2 = [0,1] scores 1.0: rank 1, context rows 0..1 excluded
    assert fr.rank[1] == 1
    # query 2: pred [.6,.8], target row 3 scores 1.0; row 2 scores .8 (excluded anyway)
    assert fr.rank[2] == 1
    # now a prediction that ties the target with a non-excluded candidate
    pred2 = np.array([[0, 1], [0, 1], [1, 0]], dtype=np.float32)
    fr2 = faiss_ranks(pool, queries, pred2, depth=10)
    # query 0 predicts [0,1]: target row1 [1,0] scores 0; non-excluded rows 2 (1.0), 3 (.8) beat it
    assert fr2.rank[0] == 3 and fr2.rank_with_context[0] == 3
    # query 2 predicts [1,0]: target row3 scores .6; rows 0..2 are context -> excluded
    assert fr2.rank[2] == 1 and fr2.rank_with_context[2] == 3


def test_a_copy_of_the_target_is_a_hit_and_a_tie_with_another_vector_counts_against_it(tmp_path):
    from lvmbench.data.store import write_store

    vecs = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=np.float32)  # rows 1..3 identical
    store = write_store(tmp_path / "s", vecs, np.array([0, 1, 4]), {"name": "ties"})
    unit = unit_vectors(store.vectors)
    pool = build_pool(unit, store.offsets, np.arange(2), "test")
    samples = make_samples(store.offsets, np.array([1]), 1)  # targets rows 2, 3
    queries = make_queries(samples, pool, 1)  # context = the one previous vector
    pred = np.array([[0, 1], [0, 1]], dtype=np.float32)
    fr = faiss_ranks(pool, queries, pred, depth=10)
    # target row 2: row 3 is a copy of it (not excluded), row 1 its excluded context: rank 1, one copy
    assert fr.rank.tolist() == [1, 1] and fr.copies.tolist() == [1, 1] and fr.ties.tolist() == [0, 0]
    t_rank, t_gap = torch_ranks(torch.from_numpy(pred), torch.from_numpy(pool.vectors), queries)
    assert t_rank.tolist() == [1, 1]
    assert np.allclose(t_gap, 1.0)  # copies are no competitors: the nearest is row 0, scoring 0
    # a prediction halfway between e1 and e2 ties the target with row 0, another vector: that counts against
    half = np.full((2, 2), np.float32(np.sqrt(0.5)), dtype=np.float32)
    fr = faiss_ranks(pool, queries, half, depth=10)
    assert fr.rank.tolist() == [2, 2] and fr.ties.tolist() == [1, 1] and fr.copies.tolist() == [1, 1]
    t_rank, _ = torch_ranks(torch.from_numpy(half), torch.from_numpy(pool.vectors), queries)
    assert t_rank.tolist() == [2, 2]


def test_oracle_gets_hit1_of_one(tiny_store):
    unit, pool, samples, queries = _setup(tiny_store)
    pred = unit[samples.target]
    fr = faiss_ranks(pool, queries, pred, depth=10)
    assert np.all(fr.rank == 1)
    assert np.all(fr.retrieved == 1)


def test_copy_last_matches_bruteforce_numpy(tiny_store):
    chains = np.arange(10, 20)
    unit, pool, samples, queries = _setup(tiny_store, chains)
    pred = predict_all(CopyLast(), torch.from_numpy(unit), samples, 100).numpy()
    fr = faiss_ranks(pool, queries, pred, depth=5)  # ranks are exact counts, whatever the list's depth
    # brute force: every pool vector, minus the query's own earlier chain vectors
    offsets = tiny_store.offsets
    expected = []
    for i, t in enumerate(samples.target):
        start = offsets[samples.chain[i]]
        ctx = set(range(max(start, t - 100), t))
        s_t = float(unit[t - 1] @ unit[t])
        better = sum(1 for r in pool.ids if r not in ctx and float(unit[t - 1] @ unit[r]) > s_t + 1e-6)
        expected.append(1 + better)
    assert np.array_equal(fr.rank, np.array(expected))


def test_exact_counts_are_what_a_full_faiss_list_gives(tiny_store):
    """The ranks (counted) against FAISS's own ordering of every candidate, for random predictions."""
    unit, pool, samples, queries = _setup(tiny_store)
    pred = np.random.default_rng(0).normal(size=(len(samples), unit.shape[1])).astype(np.float32)
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    deep = faiss_ranks(pool, queries, pred, depth=pool.size)  # the whole pool returned, per-pair scored
    scores, ids = search(pool, pred, pool.size)
    for i in range(len(queries)):
        keep = ~((ids[i] >= queries.excl_lo[i]) & (ids[i] < queries.excl_hi[i]))
        t = np.flatnonzero(ids[i] == queries.target_pos[i])[0]
        at_least = (scores[i] >= scores[i, t]) & keep & (ids[i] != queries.target_pos[i])
        assert deep.rank[i] == 1 + at_least.sum() - deep.copies[i], i
    counted = exact_ranks(pool, queries, pred)  # how baselines are ranked: no top-k list at all
    for key in ("rank", "rank_with_context", "ties", "copies"):
        assert np.array_equal(getattr(counted, key), getattr(deep, key)), key
    shallow = faiss_ranks(pool, queries, pred, depth=3)
    assert np.array_equal(shallow.rank, deep.rank) and np.array_equal(shallow.rank_with_context, deep.rank_with_context)


def test_consistency_check_passes_and_catches_a_planted_mismatch(tiny_store):
    unit, pool, samples, queries = _setup(tiny_store)
    pred = predict_all(CopyLast(), torch.from_numpy(unit), samples, 100)
    t_rank, t_gap = torch_ranks(pred, torch.from_numpy(pool.vectors), queries)
    fr = faiss_ranks(pool, queries, pred.numpy(), depth=1000)
    ok = check_consistency(t_rank, t_gap, fr.retrieved, [1, 5, 10])
    assert ok["ok"] and ok["n_agree"] + ok["n_near_ties"] == ok["n_queries"]
    planted = fr.retrieved.copy()
    i = int(np.flatnonzero((t_rank == 1) & (t_gap > 1e-3))[0])
    planted[i] = 0  # the index "did not return" a target torch ranked first
    bad = check_consistency(t_rank, t_gap, planted, [1, 5, 10])
    assert not bad["ok"] and bad["n_mismatch"] == 1 and bad["mismatched_queries"] == [i]


def test_disagreement_at_a_near_tie_is_excused():
    rank = np.array([5, 6])
    retrieved = np.array([6, 6])
    gap = np.array([3e-6, 0.2])
    rep = check_consistency(rank, gap, retrieved, [5])
    assert rep["ok"] and rep["n_near_ties"] == 1


def test_target_must_be_in_pool(tiny_store):
    unit = unit_vectors(tiny_store.vectors)
    pool = build_pool(unit, tiny_store.offsets, np.arange(5), "test")
    other = make_samples(tiny_store.offsets, np.array([7]), 1)
    with pytest.raises(AssertionError, match="not in the test pool"):
        make_queries(other, pool, 100)


def test_the_listed_torch_check_agrees_on_hit_at_k_and_catches_a_candidate_faiss_left_out(tiny_store):
    """Large pools are re-ranked by torch over FAISS's lists plus a random probe, not a second full pass."""
    from lvmbench.evaluate.ranking import torch_ranks_listed

    unit, pool, samples, queries = _setup(tiny_store)
    pred = predict_all(CopyLast(), torch.from_numpy(unit), samples, 100)
    fr = faiss_ranks(pool, queries, pred.numpy(), depth=10)
    rank, gap, missed = torch_ranks_listed(pred, pool, queries, fr.returned, probe=512)
    assert missed == 0
    ok = check_consistency(rank, gap, fr.retrieved, [1, 5, 10])
    assert ok["ok"]
    for k in (1, 5, 10):  # wherever the target is within K, the listed ranks say so exactly
        assert np.array_equal(rank <= k, fr.rank <= k)
    # FAISS "forgets" each query's best non-excluded candidate: a probe of the whole pool finds every one
    returned = fr.returned.copy()
    for i in range(len(queries)):
        first = fr.top[i, 0]
        returned[i][returned[i] == first] = -1
    _, _, missed = torch_ranks_listed(pred, pool, queries, returned, probe=pool.size)
    assert missed >= len(queries) * 0.9
