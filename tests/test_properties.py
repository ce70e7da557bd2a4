"""Property-based tests (hypothesis) for metrics, ranks and sample assembly.

Ranks use small integer-valued vectors so every dot product is exact in
float32: FAISS, torch and numpy then agree bit for bit, whatever the pool
order, and scaling a query by a power of two changes no comparison.  (With
arbitrary floats a permutation may legitimately flip a last-bit near-tie;
the consistency check's tie tolerance exists for that.)
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lvmbench.data.samples import context_index, gather_batch, make_samples
from lvmbench.evaluate import metrics
from lvmbench.evaluate.index import Pool, build_pool
from lvmbench.evaluate.queries import Queries, make_queries
from lvmbench.evaluate.ranking import exact_ranks, faiss_ranks, torch_ranks

SETTINGS = settings(max_examples=50, deadline=None)

ranks_st = st.lists(st.integers(1, 500), min_size=1, max_size=60).map(lambda r: np.array(r, dtype=np.int64))


@SETTINGS
@given(ranks=ranks_st, ks=st.lists(st.integers(1, 600), min_size=2, max_size=6, unique=True))
def test_hit_at_k_is_monotone_in_k_and_a_share(ranks, ks):
    ks = sorted(ks)
    hits = [metrics.hit_at_k(ranks, k) for k in ks]
    assert all(0.0 <= h <= 1.0 for h in hits)
    assert all(a <= b for a, b in zip(hits, hits[1:]))
    assert metrics.hit_at_k(ranks, int(ranks.max())) == 1.0
    for k in ks:
        assert metrics.ndcg_at_k(ranks, k) <= metrics.hit_at_k(ranks, k) + 1e-12


@SETTINGS
@given(ranks=ranks_st, extra=st.integers(0, 100))
def test_mrr_in_unit_interval_and_contrastive_accuracy_bounded(ranks, extra):
    m = metrics.mrr(ranks)
    assert 0.0 < m <= 1.0
    assert (m == 1.0) == bool(np.all(ranks == 1))
    assert metrics.hit_at_k(ranks, 1) <= m
    candidates = np.full(len(ranks), int(ranks.max()) + extra)
    ca = metrics.contrastive_accuracy(ranks, candidates)
    assert np.all((0.0 <= ca) & (ca <= 1.0))
    assert np.all((ca == 1.0) == (ranks == 1)) or np.any(candidates == 1)
    assert 0.0 <= metrics.chance_hit_at_k(5, candidates) <= 1.0
    s = metrics.summarize(ranks, candidates, [1, 5, 10], bootstrap=20, seed=0)
    lo, hi = s["ci"]["hit@5"]
    assert lo <= s["hit@5"] <= hi


@st.composite
def scored_pool(draw):
    """Chains of integer vectors, a pool of all of them, queries for every sample, integer predictions."""
    dim = draw(st.integers(2, 5))
    lengths = draw(st.lists(st.integers(2, 6), min_size=1, max_size=5))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    ints = st.integers(-3, 3)
    vecs = np.array(draw(st.lists(st.lists(ints, min_size=dim, max_size=dim), min_size=n, max_size=n)),
                    dtype=np.float32)
    chains = np.arange(len(lengths))
    pool = build_pool(vecs, offsets, chains, "test")
    samples = make_samples(offsets, chains, 1)
    queries = make_queries(samples, pool, draw(st.integers(1, 6)))
    q = len(samples)
    pred = np.array(draw(st.lists(st.lists(ints, min_size=dim, max_size=dim), min_size=q, max_size=q)),
                    dtype=np.float32)
    return vecs, pool, queries, pred


@SETTINGS
@given(data=scored_pool(), depth=st.integers(1, 40))
def test_ranks_are_bounded_and_torch_equals_faiss(data, depth):
    vecs, pool, queries, pred = data
    fr = faiss_ranks(pool, queries, pred, depth=depth)
    candidates = queries.candidates(True, pool.size)
    assert np.all(fr.rank >= 1) and np.all(fr.rank <= candidates)
    assert np.all(fr.rank_with_context >= fr.rank) and np.all(fr.rank_with_context <= pool.size)
    assert np.all(fr.ties >= 0) and np.all(fr.copies >= 0) and np.all(fr.rank + fr.copies <= candidates)
    for exclude, expected in ((True, fr.rank), (False, fr.rank_with_context)):
        t_rank, _ = torch_ranks(torch.from_numpy(pred), torch.from_numpy(pool.vectors), queries, exclude=exclude)
        assert np.array_equal(t_rank, expected)
    assert np.array_equal(fr.rank, brute_force_ranks(pred, pool.vectors, queries))
    counted = exact_ranks(pool, queries, pred)  # the baselines' way: counting, no retrieved list
    for key in ("rank", "rank_with_context", "ties", "copies"):
        assert np.array_equal(getattr(counted, key), getattr(fr, key)), key


def brute_force_ranks(pred: np.ndarray, vectors: np.ndarray, queries: Queries) -> np.ndarray:
    """The tie rule straight from its definition, in float64, one query at a time.

    rank = 1 + #(candidates outside the excluded window, other than the target and the
    candidates bit-identical to it, whose score is >= the target's).
    """
    scores = pred.astype(np.float64) @ vectors.astype(np.float64).T
    out = np.empty(len(queries), dtype=np.int64)
    for i in range(len(queries)):
        s, t = scores[i], queries.target_pos[i]
        rival = np.ones(len(vectors), bool)
        rival[queries.excl_lo[i] : queries.excl_hi[i]] = False
        rival &= ~np.all(vectors == vectors[t], axis=1)  # the target and its copies
        out[i] = 1 + int(((s >= s[t]) & rival).sum())
    return out


@st.composite
def random_pool(draw):
    """A pool of random unit vectors (optionally with repeated rows), chains of it, and its queries."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dim = draw(st.integers(2, 16))
    lengths = draw(st.lists(st.integers(2, 12), min_size=3, max_size=20))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    if draw(st.booleans()):  # repeated paragraphs: some rows are copies of others
        src = rng.integers(0, n, size=n // 3)
        vecs[rng.integers(0, n, size=n // 3)] = vecs[src]
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chains = np.arange(len(lengths))
    pool = build_pool(vecs, offsets, chains, "test")
    samples = make_samples(offsets, chains, 1)
    return pool, make_queries(samples, pool, draw(st.integers(1, 4)))


CONSTANTS = {
    "zero": lambda dim, rng: np.zeros(dim, np.float32),
    "constant": lambda dim, rng: rng.normal(size=dim).astype(np.float32),
    "overflowed": lambda dim, rng: (rng.normal(size=dim) * 1e30).astype(np.float32),  # its square is inf
    "underflowed": lambda dim, rng: (rng.normal(size=dim) * 1e-30).astype(np.float32),  # its square is 0
    "nan": lambda dim, rng: np.full(dim, np.nan, np.float32),
}


@SETTINGS
@given(data=random_pool(), kind=st.sampled_from(sorted(CONSTANTS)), seed=st.integers(0, 2**16))
def test_a_prediction_constant_across_queries_never_beats_chance_beyond_noise(data, kind, seed):
    """Ties cannot be gamed: a constant, zero, overflowed, underflowed or NaN prediction scores at chance at most.

    Both rankers (FAISS with its exact fallback, and the training loop's torch ranks) are
    fed the prediction as ``predict()`` normalises it, before the scorer's refusal of
    degenerate rows, and for every K the hit rate stays within four standard errors of
    the chance rate (plus one query, for tiny sets).
    """
    pool, queries = data
    rng = np.random.default_rng(seed)
    raw = torch.from_numpy(np.tile(CONSTANTS[kind](pool.dim, rng), (len(queries), 1)))
    pred = torch.nn.functional.normalize(raw, dim=-1, eps=1e-12).numpy()
    fr = faiss_ranks(pool, queries, pred, depth=5)
    t_rank, _ = torch_ranks(torch.from_numpy(pred), torch.from_numpy(pool.vectors), queries)
    candidates = queries.candidates(True, pool.size)
    n = len(queries)
    for k in (1, 5, 10):
        chance = metrics.chance_hit_at_k(k, candidates)
        bound = chance + 4 * np.sqrt(chance * (1 - chance) / n) + 1 / n
        assert metrics.hit_at_k(fr.rank, k) <= bound, (kind, k, metrics.hit_at_k(fr.rank, k), chance)
        assert metrics.hit_at_k(t_rank, k) <= bound, (kind, k, metrics.hit_at_k(t_rank, k), chance)
    if kind in ("zero", "overflowed", "nan"):  # normalised to zeros or NaN: every candidate ties, the target is last
        assert np.array_equal(t_rank, candidates - torch_copies(queries, pool))


def torch_copies(queries: Queries, pool: Pool) -> np.ndarray:
    return queries.copies.per_query(len(queries), queries.excl_lo, queries.excl_hi)


@SETTINGS
@given(data=scored_pool(), seed=st.integers(0, 2**32 - 1), power=st.integers(-3, 6))
def test_ranks_invariant_to_pool_order_and_positive_query_scaling(data, seed, power):
    vecs, pool, queries, pred = data
    base = faiss_ranks(pool, queries, pred, depth=1000)
    # scaling by 2**power is exact, so every comparison is unchanged
    scaled = faiss_ranks(pool, queries, pred * np.float32(2.0**power), depth=1000)
    assert np.array_equal(base.rank, scaled.rank) and np.array_equal(base.rank_with_context, scaled.rank_with_context)
    t_base, _ = torch_ranks(torch.from_numpy(pred), torch.from_numpy(pool.vectors), queries)
    t_scaled, _ = torch_ranks(torch.from_numpy(pred * np.float32(2.0**power)), torch.from_numpy(pool.vectors), queries)
    assert np.array_equal(t_base, t_scaled)
    # the same candidates in another order (nothing excluded: exclusion is a contiguous range by design)
    perm = np.random.default_rng(seed).permutation(pool.size)
    inv = np.argsort(perm)
    shuffled_vectors = np.ascontiguousarray(pool.vectors[perm])
    shuffled = Pool("test", pool.ids[perm], [shuffled_vectors])
    none = np.zeros(len(queries), dtype=np.int64)
    q_shuffled = Queries(queries.samples, inv[queries.target_pos], none, none, queries.context_rows)
    fr = faiss_ranks(shuffled, q_shuffled, pred, depth=1000)
    assert np.array_equal(fr.rank, base.rank_with_context)
    t_shuffled, _ = torch_ranks(torch.from_numpy(pred), torch.from_numpy(shuffled_vectors), q_shuffled)
    assert np.array_equal(t_shuffled, base.rank_with_context)
    # ...and cut into shards at arbitrary points: still the same ranks, through the merged top-k, the
    # shard-by-shard exact fallback (a shallow depth forces it) and the sharded torch ranks
    cuts = np.unique(np.random.default_rng(seed + 1).integers(1, max(pool.size, 2), size=3))
    cuts = cuts[cuts < pool.size]
    pieces = np.split(shuffled_vectors, cuts)
    sharded = Pool("test", pool.ids[perm], pieces)
    for depth in (1000, 1):
        flat_r, shard_r = faiss_ranks(shuffled, q_shuffled, pred, depth=depth), faiss_ranks(sharded, q_shuffled, pred, depth=depth)
        assert np.array_equal(shard_r.rank, flat_r.rank) and np.array_equal(shard_r.ties, flat_r.ties)
        assert np.array_equal(shard_r.rank, base.rank_with_context)
    t_sharded, _ = torch_ranks(torch.from_numpy(pred), [(int(s), torch.from_numpy(v)) for s, v in sharded.blocks()], q_shuffled)
    assert np.array_equal(t_sharded, base.rank_with_context)


@SETTINGS
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=8),
    pick=st.data(),
    min_context=st.integers(1, 3),
    context_len=st.integers(1, 6),
)
def test_samples_never_cross_chains_and_targets_follow_their_context(lengths, pick, min_context, context_len):
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    all_chains = list(range(len(lengths)))
    chains = np.array(sorted(pick.draw(st.sets(st.sampled_from(all_chains), min_size=1))), dtype=np.int64)
    s = make_samples(offsets, chains, min_context)
    expected = sum(max(lengths[c] - min_context, 0) for c in chains)
    assert len(s) == expected
    assert len(np.unique(s.target)) == len(s)
    owner = np.searchsorted(offsets, s.target, side="right") - 1
    assert np.array_equal(owner, s.chain) and set(s.chain.tolist()) <= set(chains.tolist())
    assert np.array_equal(s.start, offsets[s.chain])
    assert np.all(s.target - s.start >= min_context) and np.all(s.target < offsets[s.chain + 1])
    rows, lens = context_index(s.target, s.start, context_len)
    assert np.all(lens == np.minimum(s.target - s.start, context_len))
    for t, st_, r, n in zip(s.target, s.start, rows, lens):
        assert r[:n].tolist() == list(range(t - n, t))  # contiguous, same chain, ends right before the target
        assert np.all(r[:n] >= st_) and np.all(r[n:] == -1)
    if len(s):
        n_vec = int(offsets[-1])
        unit = torch.arange(n_vec * 2, dtype=torch.float32).reshape(n_vec, 2) + 1
        ctx, lengths_t, tgt = gather_batch(unit, s.target, s.start, context_len)
        assert torch.equal(tgt, unit[torch.from_numpy(s.target)])
        for i in range(len(s)):
            n = int(lengths_t[i])
            assert torch.equal(ctx[i, :n], unit[torch.from_numpy(rows[i, :n])])
            assert torch.all(ctx[i, n:] == 0)


@SETTINGS
@given(values=st.lists(st.integers(-5, 60), max_size=40), keys=st.lists(st.integers(-5, 60), max_size=12))
def test_member_is_isin_for_sorted_keys(values, keys):
    """The copies mask's binary-search membership answers what np.isin answers (duplicates and -1 included)."""
    from lvmbench.evaluate.ties import member

    v, k = np.array(values, dtype=np.int64).reshape(-1, 1 if len(values) % 2 else 2), np.sort(np.array(keys, np.int64))
    assert np.array_equal(member(v, k), np.isin(v, k))
