"""lvmbench's own scoring and sample assembly, on stores written into tmp dirs.

* scoring: ``evaluate.evaluation.predict_and_summarise`` (predict every test query + FAISS ranks +
  metrics) for memory_gru at the recipe's sizes, and its parts
  (``predict_all``, ``faiss_ranks``), on the synthetic corpus
  (``data.synth.write_synth``), plus ``evaluate_model`` (model, six baselines and
  the torch/FAISS consistency check);
* sample assembly: ``data.samples.gather_batch`` of a recipe micro-batch (32)
  with full contexts (T = 100 and 20) from a memory-mapped chain store whose
  chains are long enough for T = 100 (``_common.random_walk_store``).

Default: D = 384.  ``--bench-full`` adds D = 768.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from benchmarks._common import random_walk_store, stats_of, thread_info
from lvmbench.config import Recipe
from lvmbench.data.prepare import Prepared, prepare
from lvmbench.data.samples import gather_batch
from lvmbench.data.store import load_store
from lvmbench.data.synth import write_synth
from lvmbench.evaluate.index import Pool
from lvmbench.evaluate.queries import Queries, make_queries
from lvmbench.evaluate.ranking import faiss_ranks
from lvmbench.evaluate.inference import predict_all
from lvmbench.models import registry
from lvmbench.evaluate.evaluation import evaluate_model, pool_for, predict_and_summarise
from lvmbench.models.build import build_model

DIMS = [pytest.param(384, id="D384"), pytest.param(768, id="D768", marks=pytest.mark.bench_full)]
SYNTH_CHAINS = 400  # ~11k vectors; the test split has ~1.1k queries and a pool of ~1.1k


@dataclass
class Case:
    prep: Prepared
    recipe: Recipe
    model: torch.nn.Module
    unit_t: torch.Tensor
    pool: Pool
    queries: Queries
    pred: np.ndarray


_cases: dict[int, Case] = {}


@pytest.fixture
def case(tmp_path_factory, request) -> Case:
    dim = request.param
    if dim not in _cases:
        _cases.clear()
        store = write_synth(tmp_path_factory.mktemp("synth") / f"synth-d{dim}", n_chains=SYNTH_CHAINS, dim=dim, seed=0)
        recipe = Recipe()
        prep = prepare(store, recipe)
        torch.manual_seed(recipe.seed)
        model = build_model("memory_gru", prep, recipe)
        unit_t = torch.from_numpy(prep.unit)
        pool = pool_for(prep, recipe, "test")
        queries = make_queries(prep.samples["test"], pool, recipe.data.context_len)
        pred = predict_all(model, unit_t, queries.samples, recipe.data.context_len, recipe.train.eval_batch).numpy()
        _cases[dim] = Case(prep, recipe, model, unit_t, pool, queries, pred)
    return _cases[dim]


def _info(benchmark, s: Case, bench_threads: int) -> None:
    n_excl = s.queries.excl_hi - s.queries.excl_lo
    benchmark.extra_info.update({
        "dataset": s.prep.store.name,
        "model": "memory_gru (untrained, recipe sizes)",
        "params": registry.n_params(s.model),
        "dim": s.prep.store.dim,
        "queries": len(s.queries),
        "pool": s.pool.size,
        "search_k": int(min(s.pool.size, s.recipe.eval.search_depth + n_excl.max())),
        "threads": bench_threads,
        **thread_info(),
    })


@pytest.mark.parametrize("case", DIMS, indirect=True)
def test_predict_and_summarise(benchmark, case: Case, bench_threads: int) -> None:
    s = case
    benchmark.group = "scoring (synth test split)"
    _info(benchmark, s, bench_threads)
    scored, _ = benchmark.pedantic(
        predict_and_summarise, args=("memory_gru", s.model, s.prep, s.recipe, s.unit_t, s.pool, s.queries),
        rounds=3, warmup_rounds=0,
    )
    assert scored.metrics["hit@5"] >= 0
    stats = stats_of(benchmark)
    if stats:
        benchmark.extra_info["queries_per_s"] = len(s.queries) / stats.median


@pytest.mark.parametrize("case", DIMS, indirect=True)
def test_predict_all(benchmark, case: Case, bench_threads: int) -> None:
    s = case
    benchmark.group = "scoring (synth test split)"
    _info(benchmark, s, bench_threads)
    benchmark.pedantic(
        predict_all, args=(s.model, s.unit_t, s.queries.samples, s.recipe.data.context_len, s.recipe.train.eval_batch),
        rounds=3, warmup_rounds=0,
    )


@pytest.mark.parametrize("case", DIMS, indirect=True)
def test_faiss_ranks(benchmark, case: Case, bench_threads: int) -> None:
    s = case
    benchmark.group = "scoring (synth test split)"
    _info(benchmark, s, bench_threads)
    fr = benchmark.pedantic(
        faiss_ranks, args=(s.pool, s.queries, s.pred), kwargs={"depth": s.recipe.eval.search_depth},
        rounds=10, warmup_rounds=1,
    )
    benchmark.extra_info["search_depth"] = fr.depth


@pytest.mark.parametrize("case", DIMS, indirect=True)
def test_evaluate_model(benchmark, case: Case, bench_threads: int) -> None:
    """The whole test-split scoring of a run: model, six baselines, consistency check."""
    s = case
    benchmark.group = "scoring (synth test split)"
    _info(benchmark, s, bench_threads)
    benchmark.extra_info["baselines"] = list(s.recipe.eval.baselines)
    results, _ = benchmark.pedantic(
        evaluate_model, args=("memory_gru", s.model, s.prep, s.recipe, torch.device("cpu"), "test"),
        kwargs={"log": lambda _msg: None}, rounds=2, warmup_rounds=0,
    )
    assert results["consistency"]["ok"]


_walk: dict[int, tuple[torch.Tensor, np.ndarray, np.ndarray, str, int]] = {}


@pytest.fixture
def walk_store(tmp_path_factory, request):
    """A memory-mapped float16 chain store with chains of 120-200 vectors, loaded the recipe's way."""
    dim = request.param
    if dim not in _walk:
        _walk.clear()
        path = tmp_path_factory.mktemp("walk") / f"walk-d{dim}"
        random_walk_store(path, n_chains=150, dim=dim, min_len=120, max_len=200, seed=0)
        store = load_store(path)
        assert isinstance(store.vectors, np.memmap)
        prep = prepare(store, Recipe())
        train = prep.samples["train"]
        _walk[dim] = (torch.from_numpy(prep.unit), train.target, train.start, store.name, store.n_vectors)
    return _walk[dim]


@pytest.mark.parametrize("context", [100, 20])
@pytest.mark.parametrize("walk_store", DIMS, indirect=True)
def test_gather_batch(benchmark, walk_store, context: int, bench_threads: int) -> None:
    unit_t, target, start, name, n_vectors = walk_store
    full = np.flatnonzero(target - start >= context)  # samples whose context is full
    rng = np.random.default_rng(0)
    batches = [rng.choice(full, size=32, replace=False) for _ in range(64)]  # random, like an epoch
    it = iter(range(10**9))

    def setup():
        idx = batches[next(it) % len(batches)]
        return (unit_t, target[idx], start[idx], context), {}

    benchmark.group = "sample assembly (gather_batch, B=32)"
    benchmark.extra_info.update({
        "dataset": name, "vectors": n_vectors, "dim": unit_t.shape[1], "batch": 32, "context": context,
        "threads": bench_threads, **thread_info(),
        "batch_bytes": 32 * context * unit_t.shape[1] * 4,
    })
    ctx, lengths, tgt = benchmark.pedantic(gather_batch, setup=setup, rounds=200, warmup_rounds=5)
    assert ctx.shape == (32, context, unit_t.shape[1]) and int(lengths.min()) == context
