"""The speed and memory targets of issue 5, each measured as a ratio in one process.

    python -m benchmarks.targets                    # scoring, flat, train, memory, precision
    python -m benchmarks.targets scoring flat       # a subset
    python -m benchmarks.targets memory-1m          # 1M x 768 scoring memory (~7 GB RAM; not in 'all')
    python -m benchmarks.targets bank               # 10k queries vs a 1M x 768 memory-mapped bank (not in 'all')
    python -m benchmarks.targets bank-ann           # IVF-PQ over the bank's first 200k rows vs exact (not in 'all')
    python -m benchmarks.targets --json out.json    # also write every number as JSON

Each ratio's numerator and denominator are timed in the same process,
interleaved round by round, with the same threads (``--threads``, default all
available cores) and the median of the rounds taken.  Results and the method
behind each are in ``docs/performance.md``.

Targets:
  scoring    lvmbench's test-split scoring <= 1.10 x (model forward + bare IndexFlatIP.search)
  flat       lvmbench's batched flat search (index.search) >= 70 % of the FLOP rate of a float32
             matmul of the same shapes (FAISS's IndexFlatIP, default and BLAS-forced, in the details)
  train      recipe trainer per optimiser step <= 1.05 x a bare PyTorch loop; sample assembly <= 5 % of step
  memory     a chain store costs its unique vectors + a sample index, never N x T x D
  memory-1m  scoring against a 1M x 768 float32 pool peaks below 1.5 x the pool's bytes
  precision  bf16 autocast, torch.compile and 1 vs 2 threads for memory_gru and transformer steps (speed only)
  bank       lvmbench's scoring path (load_bank, build_pool, score_predictions, torch_ranks) for
             --bank-queries queries against a --bank-n x --bank-dim float32 unit bank written to
             --workdir (reused when present), once per --shard-sizes value in a fresh process:
             time and RSS per phase, throughput, ranks identical across shard sizes, a 10x projection
  bank-ann   ann_report('ivfpq') over the bank's first --ann-n rows: recall@10 and Hit@5 vs exact
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np
import torch
from torch import nn

from benchmarks._common import (
    RssSampler, available_cores, build_trainable, environment, fill_unit_rows, load_average, make_train_step,
    median_time, random_batch, random_walk_store, reset_peak_rss, rss_bytes, set_threads, thread_info, timed, unit_rows,
)
from lvmbench.config import Recipe
from lvmbench.data.prepare import DEFAULT_DATASET, prepare
from lvmbench.data.samples import gather_batch, make_samples
from lvmbench.data.store import ChainStore, load_store
from lvmbench.data.synth import write_synth
from lvmbench.evaluate import metrics
from lvmbench.evaluate.ann import ann_report
from lvmbench.evaluate.index import Bank, Pool, build_pool, load_bank, search, shard_rows
from lvmbench.evaluate.scoring import faiss_ranks, make_queries, predict_all, score_predictions, torch_ranks
from lvmbench.models.predict import predict
from lvmbench.pipeline import build_model, pool_for, score_one
from lvmbench.train import loop
from lvmbench.train.loop import TrainData, train
from lvmbench.train.loss import loss_terms
from lvmbench.train.schedule import make_scheduler

GB = 1e9


def result(target: str, what: str, value: float, limit: float, better: str, details: dict[str, Any]) -> dict[str, Any]:
    met = value <= limit if better == "lower" else value >= limit
    return {"target": target, "what": what, "value": value, "limit": limit, "better": better, "met": bool(met),
            "details": details}


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each function, timed round-robin so drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        names = list(fns) if r % 2 == 0 else list(reversed(fns))
        for k in names:
            times[k].append(timed(fns[k])[0])
    return {k: float(np.median(v)) for k, v in times.items()}


# --------------------------------------------------------------------------- 1. scoring overhead


def default_store(log: Callable[[str], None]) -> ChainStore:
    if (DEFAULT_DATASET / "manifest.json").is_file():
        return load_store(DEFAULT_DATASET)
    raise SystemExit(f"{DEFAULT_DATASET}: the default dataset is missing")


def scoring_case(label: str, store: ChainStore, model_name: str, rounds: int) -> dict[str, Any]:
    recipe = Recipe()
    prep = prepare(store, recipe)
    torch.manual_seed(recipe.seed)
    model = build_model(model_name, prep, recipe).eval()
    unit_t = torch.from_numpy(prep.unit)
    pool = pool_for(prep, recipe, "test")
    queries = make_queries(prep.samples["test"], pool, recipe.data.context_len)
    n = len(queries)
    n_excl = int((queries.excl_hi - queries.excl_lo).max())
    depth = recipe.eval.search_depth
    k_eq = int(min(pool.size, depth + n_excl))
    T, B = recipe.data.context_len, recipe.train.eval_batch
    s = queries.samples
    batches = [gather_batch(unit_t, s.target[i : i + B], s.start[i : i + B], T)[:2] for i in range(0, n, B)]

    @torch.no_grad()
    def bare_forward() -> np.ndarray:
        return torch.cat([predict(model, c, ln) for c, ln in batches]).numpy()

    pred = np.ascontiguousarray(bare_forward(), dtype=np.float32)
    fr = faiss_ranks(pool, queries, pred, depth=depth)
    # the bare side: a plain IndexFlatIP over the same vectors (lvmbench itself searches the pool
    # arrays with faiss.knn, BLAS kernel pinned, and keeps no index copy)
    bare_index = faiss.IndexFlatIP(pool.dim)
    bare_index.add(pool.vectors)
    cand = queries.candidates(True, pool.size)
    e = recipe.eval
    fns = {
        "lvmbench_score_one": lambda: score_one(model_name, model, prep, recipe, unit_t, pool, queries),
        "bare_forward": bare_forward,
        "bare_search_k_equal": lambda: bare_index.search(pred, k_eq),
        "bare_search_k10": lambda: bare_index.search(pred, 10),
        "part_lvmbench_search_k_equal": lambda: search(pool, pred, k_eq),
        "part_predict_all": lambda: predict_all(model, unit_t, s, T, B),
        "part_faiss_ranks": lambda: faiss_ranks(pool, queries, pred, depth=depth),
        "part_summarize_x1": lambda: metrics.summarize(fr.rank, cand, e.ks, e.bootstrap, recipe.seed),
    }
    t = interleaved(fns, rounds)
    bare_eq = t["bare_forward"] + t["bare_search_k_equal"]
    bare_10 = t["bare_forward"] + t["bare_search_k10"]
    return {
        "case": label, "model": model_name, "dataset": store.name, "queries": n, "pool": pool.size,
        "k_equal": k_eq, "exact_fallback_queries": fr.exact_fallback, "seconds": t,
        "ratio_vs_k_equal": t["lvmbench_score_one"] / bare_eq,
        "ratio_vs_k10": t["lvmbench_score_one"] / bare_10,
        "overhead_s_vs_k_equal": t["lvmbench_score_one"] - bare_eq,
    }


def target_scoring(rounds: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        synth = write_synth(Path(tmp) / "synth400", n_chains=400, dim=384, seed=0)
        cases = [
            ("python-docs test split, memory_gru", default_store(log), "memory_gru"),
            ("synth 400 chains test split, memory_gru", synth, "memory_gru"),
            ("python-docs test split, amn (cheap model: worst case for overhead)", default_store(log), "amn"),
        ]
        for label, store, model_name in cases:
            log(f"[scoring] {label}")
            c = scoring_case(label, store, model_name, rounds)
            log(f"  ratio vs k={c['k_equal']}: {c['ratio_vs_k_equal']:.3f}; vs k=10: {c['ratio_vs_k10']:.3f}; "
                + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in c["seconds"].items()))
            out.append(result("1 scoring overhead", c["case"], c["ratio_vs_k_equal"], 1.10, "lower", c))
    return out


# --------------------------------------------------------------------------- 2. flat search FLOP rate


def flat_case(n: int, dim: int, nq: int, rounds: int) -> dict[str, Any]:
    """lvmbench's exact search (``index.search``: ``faiss.knn``, BLAS kernel pinned) next to
    FAISS's ``IndexFlatIP`` with its default kernel choice and with BLAS forced, and plain matmuls."""
    pool = unit_rows(n, dim, seed=0)
    q = unit_rows(nq, dim, seed=0, n_centres=max(1, n // 100), sample_seed=1)
    index = faiss.IndexFlatIP(dim)
    index.add(pool)
    lvm_pool = Pool("flat", np.arange(n, dtype=np.int64), [pool])  # one shard, no copy
    out_np = np.empty((nq, n), dtype=np.float32)
    pool_t, q_t = torch.from_numpy(pool), torch.from_numpy(q)
    out_t = torch.empty(nq, n)
    default_threshold = faiss.cvar.distance_compute_blas_threshold

    def forced_blas(k: int) -> Callable[[], Any]:
        def run() -> Any:
            faiss.cvar.distance_compute_blas_threshold = 1  # FAISS 1.15 compares it with nq * d
            try:
                return index.search(q, k)
            finally:
                faiss.cvar.distance_compute_blas_threshold = default_threshold
        return run

    fns = {
        "lvmbench_k10": lambda: search(lvm_pool, q, 10),
        "lvmbench_k1000": lambda: search(lvm_pool, q, 1000),
        "faiss_k10": lambda: index.search(q, 10),
        "faiss_k1000": lambda: index.search(q, 1000),
        "faiss_k10_blas_forced": forced_blas(10),
        "numpy_matmul": lambda: np.matmul(q, pool.T, out=out_np),
        "torch_mm": lambda: torch.mm(q_t, pool_t.T, out=out_t),
    }
    t = interleaved(fns, rounds, warmup=2)
    flops = 2.0 * nq * n * dim
    rate = {k: flops / v / GB for k, v in t.items()}
    ref = max(rate["numpy_matmul"], rate["torch_mm"])
    d_def, i_def = index.search(q, 10)
    d_blas, i_blas = forced_blas(10)()
    d_lvm, i_lvm = search(lvm_pool, q, 10)
    return {"pool": n, "dim": dim, "queries": nq, "flops": flops, "seconds": t, "gflops_per_s": rate,
            "reference": "numpy_matmul" if rate["numpy_matmul"] >= rate["torch_mm"] else "torch_mm",
            "share_lvmbench_k10": rate["lvmbench_k10"] / ref, "share_lvmbench_k1000": rate["lvmbench_k1000"] / ref,
            "share_k10": rate["faiss_k10"] / ref, "share_k1000": rate["faiss_k1000"] / ref,
            "share_k10_blas_forced": rate["faiss_k10_blas_forced"] / ref,
            "blas_path_by_default": bool(nq * dim >= default_threshold),
            "lvmbench_bitwise_equal_blas_forced": bool(np.array_equal(i_lvm, i_blas) and np.array_equal(d_lvm, d_blas)),
            "lvmbench_same_ids_as_default": bool(np.array_equal(i_lvm, i_def)),
            "forced_blas_same_ids": bool(np.array_equal(i_def, i_blas)),
            "forced_blas_max_abs_score_diff": float(np.abs(d_def - d_blas).max()),
            "faiss_blas_database_bs": faiss.cvar.distance_compute_blas_database_bs,
            "faiss_blas_query_bs": faiss.cvar.distance_compute_blas_query_bs,
            "faiss_blas_threshold": faiss.cvar.distance_compute_blas_threshold}


FLAT_SIZES = [(10_000, 384), (100_000, 384), (100_000, 768)]


def target_flat(rounds: int, log: Callable[[str], None], sizes: list[tuple[int, int]] | None = None,
                n_queries: int = 256) -> list[dict[str, Any]]:
    out = []
    for n, dim in sizes or FLAT_SIZES:
        c = flat_case(n, dim, n_queries, rounds)
        log(f"[flat] {n} x {dim}, {n_queries} queries: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in c["gflops_per_s"].items())
            + f"; lvmbench search / best matmul: k=10 {c['share_lvmbench_k10']:.2f}, k=1000 {c['share_lvmbench_k1000']:.2f} "
            f"(bitwise = FAISS with BLAS forced: {c['lvmbench_bitwise_equal_blas_forced']}); FAISS default k=10 "
            f"{c['share_k10']:.2f}, k=1000 {c['share_k1000']:.2f}, BLAS forced k=10 {c['share_k10_blas_forced']:.2f} "
            f"(BLAS path by default: {c['blas_path_by_default']})")
        out.append(result("2 flat search FLOP rate", f"lvmbench search, {n // 1000}k x {dim}, {n_queries} queries, k=10",
                          c["share_lvmbench_k10"], 0.70, "higher", c))
    return out


# --------------------------------------------------------------------------- 3. training-loop overhead


class _CallTimer:
    """Wraps a module's functions to time and count their calls (the trainer's validation and
    file writes, so their time can be taken out; the scorer's search and exact fallback)."""

    def __init__(self, module: Any, names: tuple[str, ...]) -> None:
        self.module, self.names = module, names
        self.seconds = {k: 0.0 for k in names}
        self.calls = {k: 0 for k in names}
        self._orig = {k: getattr(module, k) for k in names}

    def __enter__(self) -> "_CallTimer":
        for k in self.names:
            setattr(self.module, k, self._wrap(k, self._orig[k]))
        return self

    def __exit__(self, *exc: Any) -> None:
        for k, fn in self._orig.items():
            setattr(self.module, k, fn)

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1
        return wrapped


TRAINER_CALLS = ("validate", "save_checkpoint", "atomic_write_json")


def _trainer_setup(store, model_name: str, n_samples: int):
    """A one-epoch recipe on the first ``n_samples`` training samples, and the model's initial weights."""
    recipe = Recipe()
    recipe.model.name = model_name
    recipe.train.max_epochs = 1
    prep = prepare(store, recipe)
    unit_t = torch.from_numpy(prep.unit)
    val_pool = pool_for(prep, recipe, "val")
    val_queries = make_queries(prep.samples["val"], val_pool, recipe.data.context_len)
    sub = prep.samples["train"].subset(np.arange(min(n_samples, len(prep.samples["train"]))))
    data = TrainData(unit_t, sub, prep.samples["val"], val_queries, torch.from_numpy(val_pool.vectors))
    torch.manual_seed(recipe.seed)
    model = build_model(model_name, prep, recipe)
    return recipe, prep, data, model, copy.deepcopy(model.state_dict())


def train_case(model_name: str, store: ChainStore, n_samples: int, repeats: int) -> dict[str, Any]:
    recipe, prep, data, model, init = _trainer_setup(store, model_name, n_samples)
    unit_t, sub = data.unit, data.train
    cfg = recipe.train

    n = len(sub)
    n_micro = math.ceil(n / cfg.micro_batch)
    steps = math.ceil(n_micro / cfg.accum_steps)
    order = np.random.default_rng([recipe.seed, 1]).permutation(n)  # the trainer's epoch-1 order
    idx = [order[i * cfg.micro_batch : (i + 1) * cfg.micro_batch] for i in range(n_micro)]
    T = recipe.data.context_len
    batches = [gather_batch(unit_t, sub.target[i], sub.start[i], T) for i in idx]

    def gather_all() -> None:
        for i in idx:
            gather_batch(unit_t, sub.target[i], sub.start[i], T)

    def bare(gather: bool = False) -> dict[str, torch.Tensor]:
        """The same forward/backward/step on the same batches: pre-gathered, or gathered in the loop."""
        model.load_state_dict(init)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = make_scheduler(opt, int(round(cfg.warmup_epochs * steps)), steps * cfg.max_epochs, cfg.final_lr_ratio)
        opt.zero_grad(set_to_none=True)
        for i in range(n_micro):
            if gather:
                ctx, lengths, target = gather_batch(unit_t, sub.target[idx[i]], sub.start[idx[i]], T)
            else:
                ctx, lengths, target = batches[i]
            g0 = (i // cfg.accum_steps) * cfg.accum_steps
            gs = min(cfg.accum_steps, n_micro - g0)
            terms = loss_terms(predict(model, ctx, lengths), target, cfg.tau)
            loss = cfg.mse_weight * terms["mse"] + cfg.cos_weight * terms["cos"] + cfg.infonce_weight * terms["infonce"]
            (loss / gs).backward()
            if i - g0 + 1 == gs:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
        return {k: v.clone() for k, v in model.state_dict().items()}

    run_dir = Path(tempfile.mkdtemp(prefix="lvmbench-target-train-"))

    def trainer() -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        model.load_state_dict(init)
        with _CallTimer(loop, TRAINER_CALLS) as tm:
            t0 = time.perf_counter()
            train(model, data, recipe, run_dir, model_name, log=lambda _m: None)
            total = time.perf_counter() - t0
        return {"total": total, **tm.seconds}, {k: v.clone() for k, v in model.state_dict().items()}

    # warm-up: one whole bare epoch, so every batch shape has met its kernels and the allocator
    bare()

    tr_rows, bare_s, bare_g_s, gather_s = [], [], [], []
    same = True
    for r in range(repeats):
        for which in (("trainer", "bare", "bare_gather") if r % 2 == 0 else ("bare_gather", "bare", "trainer")):
            if which == "trainer":
                row, p_tr = trainer()
                tr_rows.append(row)
            elif which == "bare":
                t, p_bare = timed(bare)
                bare_s.append(t)
            else:
                t, _ = timed(lambda: bare(gather=True))
                bare_g_s.append(t)
        same &= all(torch.equal(p_tr[k], p_bare[k]) for k in p_tr)
        gather_s.append(timed(gather_all)[0])
    shutil.rmtree(run_dir, ignore_errors=True)
    med = {k: float(np.median([row[k] for row in tr_rows])) for k in tr_rows[0]}
    steps_only = float(np.median([row["total"] - row["validate"] - row["save_checkpoint"] - row["atomic_write_json"]
                                  for row in tr_rows]))
    b = float(np.median(bare_s))
    bg = float(np.median(bare_g_s))
    g = float(np.median(gather_s))
    return {
        "model": model_name, "dataset": store.name, "samples": n, "micro_batches": n_micro, "optimiser_steps": steps,
        "micro_batch": cfg.micro_batch, "accum_steps": cfg.accum_steps, "max_context_in_batches":
            int(max(int(bt[1].max()) for bt in batches)),
        "trainer_seconds": med, "trainer_steps_only_s": steps_only, "bare_loop_s": b, "gather_all_s": g,
        "trainer_per_step_s": steps_only / steps, "bare_per_step_s": b / steps,
        "bare_loop_gathering_s": bg, "ratio_steps_only": steps_only / b,
        "ratio_vs_bare_gathering": steps_only / bg,
        "ratio_including_validation_and_checkpoints": med["total"] / b,
        "assembly_share_of_step": g / steps_only, "identical_weights_after_epoch": bool(same), "repeats": repeats,
    }


def target_train(repeats: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    out = []
    store = default_store(log)
    for model_name, n_samples in (("memory_gru", 512), ("amn", 2048)):
        log(f"[train] {model_name} on {store.name}, {n_samples} training samples")
        c = train_case(model_name, store, n_samples, repeats)
        log(f"  trainer {c['trainer_per_step_s']:.3f} s/step (steps only), bare {c['bare_per_step_s']:.3f} s/step: "
            f"ratio {c['ratio_steps_only']:.3f} (vs a bare loop that gathers its batches {c['ratio_vs_bare_gathering']:.3f}; "
            f"incl. validation+checkpoints {c['ratio_including_validation_and_checkpoints']:.3f}); "
            f"assembly {100 * c['assembly_share_of_step']:.2f} % of step; identical weights {c['identical_weights_after_epoch']}")
        out.append(result("3 training-loop overhead", f"{model_name}: trainer / bare loop per optimiser step",
                          c["ratio_steps_only"], 1.05, "lower", c))
        out.append(result("3 sample assembly share", f"{model_name}: gather_batch / trainer step time",
                          c["assembly_share_of_step"], 0.05, "lower", c))
    return out


# --------------------------------------------------------------------------- 4. memory


def _store_memory_child(path: str) -> dict[str, Any]:
    """Run in a fresh process: what loading + preparing a chain store holds."""
    rss0 = rss_bytes()
    tracemalloc.start()
    store = load_store(path)
    after_load = tracemalloc.get_traced_memory()
    rss_load = rss_bytes()
    recipe = Recipe()
    prep = prepare(store, recipe)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_prep = rss_bytes()
    n, d = store.vectors.shape
    T = recipe.data.context_len
    n_samples = sum(len(s) for s in prep.samples.values())
    sample_index = sum(s.target.nbytes + s.start.nbytes + s.chain.nbytes for s in prep.samples.values())
    unit = prep.unit.nbytes
    ctx_sizes = np.minimum(np.concatenate([s.target - s.start for s in prep.samples.values()]), T)
    unit_t = torch.from_numpy(prep.unit)
    tr = prep.samples["train"]
    ctx, _, _ = gather_batch(unit_t, tr.target[:32], tr.start[:32], T)
    return {
        "store": store.name, "vectors": n, "dim": d, "stored_dtype": str(store.vectors.dtype),
        "file_bytes": int(store.vectors.nbytes), "is_memmap": isinstance(store.vectors, np.memmap),
        "samples": n_samples,
        "traced_after_load_bytes": after_load[0],
        "traced_held_after_prepare_bytes": current, "traced_peak_during_prepare_bytes": peak,
        "unique_vectors_float32_bytes": unit, "sample_index_bytes": sample_index,
        "materialised_N_T_D_bytes": int(n_samples) * T * d * 4,
        "materialised_actual_contexts_bytes": int(ctx_sizes.sum()) * d * 4,
        "held_over_unique_plus_index": current / (unit + sample_index),
        "held_over_N_T_D": current / (int(n_samples) * T * d * 4),
        "rss_start": rss0["rss"], "rss_after_load": rss_load["rss"], "rss_after_prepare": rss_prep["rss"],
        "peak_rss": rss_prep["peak_rss"], "batch_bytes": int(ctx.numel() * 4),
    }


def target_memory(log: Callable[[str], None]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "walk"
        random_walk_store(path, n_chains=1000, dim=384, min_len=120, max_len=200, seed=0)
        proc = subprocess.run([sys.executable, "-m", "benchmarks.targets", "_store-memory", str(path)],
                              capture_output=True, text=True, check=True)
    c = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"[memory] {c['vectors']} x {c['dim']} {c['stored_dtype']} store, {c['samples']} samples: prepare holds "
        f"{c['traced_held_after_prepare_bytes'] / GB:.3f} GB (unique float32 vectors {c['unique_vectors_float32_bytes'] / GB:.3f} GB "
        f"+ sample index {c['sample_index_bytes'] / GB:.4f} GB); N x T x D would be {c['materialised_N_T_D_bytes'] / GB:.1f} GB")
    return [result("4 chain-store memory", "held after prepare / (unique vectors + sample index)",
                   c["held_over_unique_plus_index"], 1.25, "lower", c)]


def _memory_1m(n: int, dim: int, n_queries: int) -> dict[str, Any]:
    """Run in a fresh process: RSS of each phase of scoring against an n x dim pool (pool = every vector).

    The pool holds its vectors once (``build_pool`` shares ``unit``; search runs ``faiss.knn`` on
    the array, no ``IndexFlatIP`` copy), so ``build_pool`` should add next to nothing."""
    phases: dict[str, Any] = {"start": rss_bytes()}
    unit = unit_rows(n, dim, seed=0)  # stands for prep.unit (float32, L2-normalised, every vector)
    chain_len = 100
    offsets = np.arange(0, n + 1, chain_len, dtype=np.int64)
    phases["unit"] = rss_bytes()
    reset_peak_rss()
    pool = build_pool(unit, offsets, np.arange(len(offsets) - 1), "full")
    phases["build_pool"] = rss_bytes()
    samples = make_samples(offsets, np.arange(len(offsets) - 1), 1)
    keep = np.sort(np.random.default_rng(0).choice(len(samples), size=n_queries, replace=False))
    samples = samples.subset(keep)
    queries = make_queries(samples, pool, 100)
    rng = np.random.default_rng(1)
    # a noisy copy of the target (cos ~0.45): most targets rank high, some need the exact fallback
    pred = unit[samples.target] + rng.standard_normal((n_queries, dim), dtype=np.float32) * np.float32(2.0 / np.sqrt(dim))
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    recipe = Recipe()
    e = recipe.eval
    reset_peak_rss()
    t, scored = timed(lambda: score_predictions("m", pred, pool, queries, unit, e.ks, e.search_depth, e.bootstrap, 0))
    phases["score_predictions"] = {**rss_bytes(), "seconds": t, "exact_fallback": scored.faiss.exact_fallback,
                                   "hit@5": scored.metrics["hit@5"]}
    reset_peak_rss()
    t, (rank, _) = timed(lambda: torch_ranks(torch.from_numpy(pred), torch.from_numpy(pool.vectors), queries))
    phases["torch_ranks"] = {**rss_bytes(), "seconds": t, "block": min(n_queries, max(1, (1 << 28) // (n * 4)), 1024),
                             "ranks_equal_faiss": bool(np.array_equal(rank, scored.faiss.rank))}
    pool_bytes = n * dim * 4
    peak = max(p["peak_rss"] for p in phases.values())
    return {"n": n, "dim": dim, "queries": n_queries, "pool_bytes": pool_bytes, "phases": phases,
            "peak_rss": peak, "peak_over_pool": peak / pool_bytes,
            "scoring_peak_minus_unit_over_pool": (peak - phases["unit"]["rss"]) / pool_bytes,
            "pool_vectors_aliases_unit": bool(np.shares_memory(pool.vectors, unit))}


def target_memory_1m(log: Callable[[str], None], n: int = 1_000_000, dim: int = 768, n_queries: int = 1024) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.targets", "_memory-1m", str(n), str(dim), str(n_queries)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"memory-1m child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    c = json.loads(proc.stdout.strip().splitlines()[-1])
    ph = c["phases"]
    log(f"[memory-1m] pool {c['pool_bytes'] / GB:.2f} GB; RSS: start {ph['start']['rss'] / GB:.2f}, +unit "
        f"{ph['unit']['rss'] / GB:.2f}, +build_pool {ph['build_pool']['rss'] / GB:.2f}, peak in score_predictions "
        f"{ph['score_predictions']['peak_rss'] / GB:.2f}, peak in torch_ranks ({ph['torch_ranks']['block']} queries/block) "
        f"{ph['torch_ranks']['peak_rss'] / GB:.2f} GB; peak / pool = {c['peak_over_pool']:.2f} (no index copy: the pool "
        f"is prep.unit itself: {c['pool_vectors_aliases_unit']})")
    return [result("4 scoring memory at 1M x 768", "peak RSS / pool bytes", c["peak_over_pool"], 1.5, "lower", c)]


# --------------------------------------------------------------------------- 5. bf16, compile, threads


def precision_case(model_name: str, rounds: int, threads: int) -> dict[str, Any]:
    from lvmbench.config import TrainConfig

    cfg = TrainConfig()
    dim, context, batch = 384, 100, 32
    ctx, lengths, target = random_batch(batch, context, dim)
    out: dict[str, Any] = {"model": model_name, "batch": batch, "context": context, "dim": dim}

    def measure(label: str, n_threads: int, compile_: bool, autocast: bool) -> None:
        set_threads(n_threads)
        torch._dynamo.reset()
        model = build_trainable(model_name, dim)
        fwd = torch.compile(model) if compile_ else None
        step = make_train_step(model, cfg, ctx, lengths, target, forward=fwd, autocast=autocast)
        first, _ = timed(step)  # includes compilation
        step()
        t = median_time(step, rounds, warmup=0)
        out[label] = {"step_s": t, "first_step_s": first, "threads": n_threads, "compile": compile_, "bf16": autocast}

    measure("fp32", threads, False, False)
    measure("bf16_autocast", threads, False, True)
    if threads > 1:
        measure("fp32_1_thread", 1, False, False)
    measure("compile", threads, True, False)
    measure("compile_bf16", threads, True, True)
    measure("fp32_again", threads, False, False)  # drift check
    set_threads(threads)
    torch._dynamo.reset()
    # the faster of the two fp32 runs (before and after the others): a conservative base for speed-ups
    base = min(out["fp32"]["step_s"], out["fp32_again"]["step_s"])
    out["fp32_drift"] = out["fp32_again"]["step_s"] / out["fp32"]["step_s"]
    out["speedup_vs_fp32"] = {k: base / v["step_s"] for k, v in out.items() if isinstance(v, dict) and "step_s" in v}
    return out


def trainer_bf16_case(model_name: str, store: ChainStore, n_samples: int, repeats: int) -> dict[str, Any]:
    """The recipe trainer itself with ``train.bf16_autocast`` off and on (real, varying batch shapes)."""
    recipe, prep, data, model, init = _trainer_setup(store, model_name, n_samples)
    sub = data.train
    run_dir = Path(tempfile.mkdtemp(prefix="lvmbench-target-bf16-"))
    times: dict[bool, list[float]] = {False: [], True: []}
    losses: dict[bool, float] = {}
    for r in range(repeats + 1):  # the first round is a warm-up
        for bf16 in ((False, True) if r % 2 == 0 else (True, False)):
            recipe.train.bf16_autocast = bf16
            model.load_state_dict(init)
            with _CallTimer(loop, TRAINER_CALLS) as tm:
                t0 = time.perf_counter()
                hist = train(model, data, recipe, run_dir, model_name, log=lambda _m: None)
                total = time.perf_counter() - t0
            if r:
                times[bf16].append(total - sum(tm.seconds.values()))
            losses[bf16] = hist["history"][-1]["train_loss"]
    shutil.rmtree(run_dir, ignore_errors=True)
    f32, b16 = float(np.median(times[False])), float(np.median(times[True]))
    return {"model": model_name, "dataset": store.name, "samples": len(sub), "repeats": repeats,
            "fp32_epoch_steps_s": f32, "bf16_epoch_steps_s": b16, "speedup": f32 / b16,
            "train_loss_fp32": losses[False], "train_loss_bf16": losses[True]}


def target_precision(rounds: int, threads: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    out = []
    store = default_store(log)
    for model_name in ("memory_gru", "transformer"):
        c = trainer_bf16_case(model_name, store, 512, 3)
        log(f"[precision] recipe trainer, {model_name}, train.bf16_autocast: {c['fp32_epoch_steps_s']:.2f} s -> "
            f"{c['bf16_epoch_steps_s']:.2f} s per {c['samples']} samples (x{c['speedup']:.2f}); "
            f"epoch train loss {c['train_loss_fp32']:.4f} (fp32) vs {c['train_loss_bf16']:.4f} (bf16)")
        out.append(result("5 options (speed only)", f"{model_name}: recipe trainer with train.bf16_autocast, speed-up",
                          c["speedup"], 1.0, "higher", c))
    for model_name in ("memory_gru", "transformer"):
        log(f"[precision] {model_name}")
        c = precision_case(model_name, rounds, threads)
        log("  " + ", ".join(f"{k} {c[k]['step_s']:.3f} s (x{v:.2f})" for k, v in c["speedup_vs_fp32"].items()))
        for variant in ("bf16_autocast", "compile", "compile_bf16", "fp32_1_thread"):
            if variant in c["speedup_vs_fp32"]:
                out.append(result("5 options (speed only)", f"{model_name}: {variant} speed-up over fp32 x{threads} threads",
                                  c["speedup_vs_fp32"][variant], 1.0, "higher", c))
    return out


# --------------------------------------------------------------------------- 6. an external bank at scale

BANK_SEED = 0
BANK_SPREAD = 0.6  # as unit_rows' default (and _memory_1m): cluster mates at cosine ~0.73
BANK_CHAIN_LEN = 100
BANK_SHARD_SIZES = (0, 262_144)


def bank_file(workdir: Path, n: int, dim: int) -> Path:
    return workdir / f"bank-{n}x{dim}-f32-seed{BANK_SEED}.npy"


def ensure_bank(path: Path, n: int, dim: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Write ``n x dim`` clustered float32 unit vectors to ``path`` (an ``.npy``), block by block.

    A file already there is reused when its shape, dtype, byte size and
    generator parameters (the ``.json`` beside it) match.  Written under a
    temporary name and renamed, so an interrupted write is never reused.
    """
    meta = {"n": n, "dim": dim, "dtype": "float32", "seed": BANK_SEED, "spread": BANK_SPREAD,
            "n_centres": max(1, n // 100), "generator": "benchmarks._common.fill_unit_rows"}
    side = path.with_suffix(".json")
    if path.is_file() and side.is_file():
        try:
            arr = np.load(path, mmap_mode="r")
            ok = (arr.shape == (n, dim) and arr.dtype == np.float32
                  and path.stat().st_size == arr.offset + n * dim * 4 and json.loads(side.read_text()) == meta)
            del arr
        except (ValueError, OSError):
            ok = False
        if ok:
            log(f"[bank] reusing {path} ({path.stat().st_size / GB:.2f} GB)")
            return {"path": str(path), "bytes": path.stat().st_size, "written": False, "write_s": 0.0}
        log(f"[bank] {path} does not match {meta}; rewriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    need = n * dim * 4
    free = shutil.disk_usage(path.parent).free + (path.stat().st_size if path.is_file() else 0)
    if free < need * 1.05:
        raise SystemExit(f"{path.parent}: {free / GB:.1f} GB free, the bank needs {need / GB:.2f} GB (--workdir elsewhere)")
    tmp = path.with_name(path.stem + ".partial.npy")
    log(f"[bank] writing {n:,} x {dim} float32 unit vectors ({need / GB:.2f} GB) to {path}")
    t0 = time.perf_counter()
    mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
    fill_unit_rows(mm, seed=BANK_SEED, spread=BANK_SPREAD)
    mm.flush()
    del mm
    side.unlink(missing_ok=True)
    tmp.replace(path)
    side.write_text(json.dumps(meta))
    write_s = time.perf_counter() - t0
    log(f"[bank] written in {write_s:.1f} s")
    return {"path": str(path), "bytes": path.stat().st_size, "written": True, "write_s": write_s}


def evict_from_page_cache(path: Path) -> bool:
    """Drop this one file's clean pages from the page cache (``posix_fadvise DONTNEED``; no root, no other file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        return True
    except (AttributeError, OSError):
        return False


def _bank_dataset(n_bank: int, dim: int, n_queries: int, noise: float = 2.0,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, np.ndarray]:
    """A small dataset part drawn from the bank's distribution (same centres, other samples):
    chains of 100, ~20 % more samples than queries, ``n_queries`` distinct samples (min context 1),
    and each query's prediction: a noisy copy of its target, cosine ~1 / sqrt(1 + noise^2)
    (noise 2: ~0.45, as in memory-1m; the target then nearly always ranks first among its
    ~100 cluster mates at cosine ~0.73; noise 8 (~0.12) spreads ranks past the search depth
    and exercises the exact fallback)."""
    n_chains = max(2, -(-n_queries * 6 // (5 * (BANK_CHAIN_LEN - 1))))
    unit = unit_rows(n_chains * BANK_CHAIN_LEN, dim, seed=BANK_SEED, n_centres=max(1, n_bank // 100),
                     sample_seed=7, spread=BANK_SPREAD)
    offsets = np.arange(0, n_chains * BANK_CHAIN_LEN + 1, BANK_CHAIN_LEN, dtype=np.int64)
    chains = np.arange(n_chains)
    samples = make_samples(offsets, chains, 1)
    if n_queries > len(samples):
        raise SystemExit(f"{n_queries} queries > {len(samples)} samples")
    samples = samples.subset(np.sort(np.random.default_rng(0).choice(len(samples), size=n_queries, replace=False)))
    rng = np.random.default_rng(1)
    pred = unit[samples.target] + rng.standard_normal((n_queries, dim), dtype=np.float32) * np.float32(noise / np.sqrt(dim))
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    return unit, offsets, chains, samples, np.ascontiguousarray(pred, dtype=np.float32)




def _phase(fn: Callable[[], Any]) -> tuple[dict[str, Any], Any]:
    """Seconds (wall, and CPU of all this process's threads: on a shared machine CPU / threads is
    what the phase would take alone), RSS after, peak RSS (VmHWM, reset first) and sampled
    anon/file peaks of one call."""
    reset_peak_rss()
    with RssSampler() as rs:
        cpu0 = time.process_time()
        t, out = timed(fn)
        cpu = time.process_time() - cpu0
    return {"seconds": t, "cpu_seconds": cpu, **rss_bytes(), **rs.info()}, out


def _bank_child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: load the bank, then score ``queries`` predictions against the
    dataset part + bank for each shard size, through lvmbench's own path."""
    import warnings

    from lvmbench.evaluate import scoring as scoring_mod
    from lvmbench.evaluate.scoring import check_consistency

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    path, n, dim, nq = Path(cfg["path"]), cfg["n"], cfg["dim"], cfg["queries"]
    phases: dict[str, Any] = {"start": rss_bytes()}
    unit, offsets, chains, samples, pred = _bank_dataset(n, dim, nq, cfg.get("noise", 2.0))
    phases["dataset"] = {**rss_bytes(), "vectors": len(unit), "chains": len(chains)}
    log(f"[bank child] load_bank {path}")
    phases["load_bank"], bank = _phase(lambda: load_bank(path, dim, log=log))
    phases["load_bank"].update({"memory_mapped": bank.mapped, "bank_bytes": int(bank.vectors.nbytes),
                                "gb_per_s": bank.vectors.nbytes / phases["load_bank"]["seconds"] / GB,
                                "page_cache_cold_before": bool(cfg.get("cold"))})
    # reference: the best plain float32 matmul of these shapes (1,024 queries x 65,536 bank rows, in RAM)
    qb, bb = pred[:1024], np.array(bank.vectors[:65_536])  # a copy in RAM
    out_np = np.empty((len(qb), len(bb)), dtype=np.float32)
    qb_t, bb_t, out_t = torch.from_numpy(qb), torch.from_numpy(bb), torch.empty(len(qb), len(bb))
    ref_t = interleaved({"numpy_matmul": lambda: np.matmul(qb, bb.T, out=out_np),
                         "torch_mm": lambda: torch.mm(qb_t, bb_t.T, out=out_t)}, rounds=3)
    ref_gflops = {k: 2.0 * len(qb) * len(bb) * dim / v / GB for k, v in ref_t.items()}
    out_np = out_t = bb = bb_t = None  # free the reference's 200 MB before the measured phases
    e = Recipe().eval
    pred_t = torch.from_numpy(pred)
    configs: list[dict[str, Any]] = []
    arrays: list[dict[str, np.ndarray]] = []
    for shard_size in cfg["shard_sizes"]:
        pool = build_pool(unit, offsets, chains, "test", bank, shard_size)
        queries = make_queries(samples, pool, BANK_CHAIN_LEN)
        pairs = float(nq) * pool.size
        flops = 2.0 * pairs * dim
        log(f"[bank child] shard_size {shard_size}: pool {pool.size:,} in {len(pool.shards)} shards; score_predictions")
        with _CallTimer(scoring_mod, ("search", "_exact_counts")) as ct:
            ph_score, scored = _phase(lambda: score_predictions("m", pred, pool, queries, unit, e.ks, e.search_depth,
                                                                e.bootstrap, 0))
        search_s = ct.seconds["search"]
        ph_score.update({"search_s": search_s, "search_calls": ct.calls["search"],
                         "exact_fallback_s": ct.seconds["_exact_counts"],
                         "rest_s": ph_score["seconds"] - search_s - ct.seconds["_exact_counts"],
                         "exact_fallback_queries": scored.faiss.exact_fallback, "search_k": scored.faiss.depth,
                         "pairs_per_s_search": pairs / search_s, "gflops_per_s_search": flops / search_s / GB,
                         "share_of_best_matmul": flops / search_s / GB / max(ref_gflops.values()),
                         "metrics": {k: v for k, v in scored.metrics.items() if not isinstance(v, dict)}})
        log(f"[bank child]   {ph_score['seconds']:.1f} s (search {search_s:.1f} s, {ph_score['gflops_per_s_search']:.1f} "
            f"GFLOP/s; fallback {scored.faiss.exact_fallback} queries {ct.seconds['_exact_counts']:.1f} s); torch_ranks")
        with warnings.catch_warnings():  # the memory-mapped bank is read-only; torch only reads it
            warnings.filterwarnings("ignore", message=".*not writable.*")
            pool_t = [(start, torch.from_numpy(shard)) for start, shard in pool.blocks()]
        ph_torch, (t_rank, t_gap) = _phase(lambda: torch_ranks(pred_t, pool_t, queries))
        largest = max(len(sh) for sh in pool.shards)
        block = max(1, min(1024, (1 << 28) // (largest * 4)))  # torch_ranks' query block (scoring.py)
        cons = check_consistency(t_rank, t_gap, scored.faiss.retrieved, e.ks, e.tie_tol)
        ph_torch.update({"query_block": block, "passes_over_pool": -(-nq // block),
                         "pairs_per_s": pairs / ph_torch["seconds"], "gflops_per_s": flops / ph_torch["seconds"] / GB,
                         "ranks_equal_faiss": int((t_rank == scored.faiss.rank).sum()),
                         "consistency_ok": cons["ok"], "near_ties": cons["n_near_ties"], "mismatch": cons["n_mismatch"]})
        log(f"[bank child]   torch_ranks {ph_torch['seconds']:.1f} s ({block} queries per block, "
            f"{ph_torch['passes_over_pool']} passes over the pool); consistency ok {cons['ok']}")
        configs.append({"shard_size": shard_size, "shard_rows": shard_rows(shard_size), "shards": len(pool.shards),
                        "largest_shard": largest, "pool": pool.size, "pairs": pairs, "flops": flops,
                        "score_predictions": ph_score, "torch_ranks": ph_torch})
        fr = scored.faiss
        arrays.append({"rank": fr.rank, "rank_with_context": fr.rank_with_context, "retrieved": fr.retrieved,
                       "ties": fr.ties, "top": fr.top, "torch_rank": t_rank})
        pool = pool_t = queries = scored = None  # free this shard size's pool before the next
    same = {k: all(np.array_equal(a[k], arrays[0][k]) for a in arrays[1:]) for k in arrays[0]}
    peaks = [c[p]["peak_rss"] for c in configs for p in ("score_predictions", "torch_ranks")]
    anon = [c[p]["peak_rss_anon_sampled"] for c in configs for p in ("score_predictions", "torch_ranks")]
    return {"n": n, "dim": dim, "queries": nq, "pred_noise": cfg.get("noise", 2.0),
            "pred_cos_target_mean": float(np.einsum("ij,ij->i", pred, unit[samples.target]).mean()),
            "bank_bytes": int(bank.vectors.nbytes), "bank_sha256": bank.sha256,
            "threads": thread_info(), "phases": phases, "matmul_reference_gflops": ref_gflops, "configs": configs,
            "identical_across_shard_sizes": same,
            "faiss_ranks_identical": all(v for k, v in same.items() if k != "torch_rank"),
            "peak_rss": max([phases["load_bank"]["peak_rss"]] + peaks),
            "peak_rss_anon_sampled": max([phases["load_bank"]["peak_rss_anon_sampled"]] + anon),
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _bank_ann_child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: exact scoring and ``ann_report('ivfpq')`` over the dataset part + the
    bank's first ``ann_n`` rows (a slice of the memory-mapped file; not hashed)."""
    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    path, n, dim, nq, ann_n = Path(cfg["path"]), cfg["n"], cfg["dim"], cfg["queries"], cfg["ann_n"]
    unit, offsets, chains, samples, pred = _bank_dataset(n, dim, nq, cfg.get("noise", 2.0))
    raw = np.load(path, mmap_mode="r")
    bank = Bank(path=path, vectors=raw[:ann_n], sha256="(slice; not hashed)", mapped=True)
    pool = build_pool(unit, offsets, chains, "test", bank, 0)
    queries = make_queries(samples, pool, BANK_CHAIN_LEN)
    e = Recipe().eval
    log(f"[bank-ann child] exact scoring of {nq:,} queries against {pool.size:,}")
    ph_exact, scored = _phase(lambda: score_predictions("m", pred, pool, queries, unit, e.ks, e.search_depth,
                                                        e.bootstrap, 0))
    ph_ann, rep = _phase(lambda: ann_report("ivfpq", pool, queries, pred, scored.faiss, e.ks, 0, log))
    log(f"[bank-ann child] {rep['index']}: build {rep['build_s']:.1f} s, search {rep['search_s']:.1f} s, "
        f"recall@10 {rep['recall@10']:.3f}, Hit@5 {rep['hit@5']:.3f} (exact {rep['exact_hit@5']:.3f})")
    return {"n_file": n, "ann_n": ann_n, "pred_noise": cfg.get("noise", 2.0), "pool": pool.size, "dim": dim, "queries": nq, "threads": thread_info(),
            "exact": ph_exact, "ann_phase": ph_ann, "ann": rep,
            "exact_hit@5": scored.metrics["hit@5"],
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _run_child(kind: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """``python -m benchmarks.targets _<kind> JSON`` in a fresh process (clean peak RSS); its
    progress goes to our stderr, its result is the last line of its stdout."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.targets", f"_{kind}", json.dumps(cfg)],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed ({proc.returncode}); its stderr is above")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def project_bank(c: dict[str, Any], n_to: int, ram_bytes: int) -> dict[str, Any]:
    """What the measured run implies for an ``n_to``-vector bank of the same dim (derived, not measured).

    Time: search and ``torch_ranks`` scale with pairs scored at the measured throughput (both are
    compute-bound while the bank is in the page cache); ``load_bank`` with bytes.  Memory: the
    anonymous part (dataset, predictions, result lists, one query block of ``torch_ranks``) does not
    grow with the bank; the bank's pages are file-backed page cache, so a bank larger than free RAM
    is re-read from disk on every pass over it.  Passes over the bank, per phase:

    * search: FAISS's BLAS kernel loops over blocks of ``distance_compute_blas_query_bs`` (4,096)
      queries outside the database blocks, so each shard is read once per 4,096 queries; from disk
      once only if the shard stays in the page cache meanwhile (a shard well under free RAM);
    * exact fallback: one pass per block of ``min(256, 2**28 / (4 * largest shard))`` fallback
      queries (the measured fallback count is a lower bound at a larger bank);
    * ``torch_ranks``: one pass per block of ``min(1024, 2**28 / (4 * largest shard))`` queries.
    """
    dim, nq = c["dim"], c["queries"]
    bank_to = n_to * dim * 4
    qbs = int(faiss.cvar.distance_compute_blas_query_bs)
    out: dict[str, Any] = {"n": n_to, "dim": dim, "queries": nq, "bank_bytes": bank_to, "ram_bytes": ram_bytes,
                           "bank_fits_in_ram": bank_to < 0.8 * ram_bytes,
                           "load_bank_s": c["phases"]["load_bank"]["seconds"] * n_to / c["n"], "configs": []}
    for cf in c["configs"]:
        f = (cf["pool"] - c["n"] + n_to) / cf["pool"]  # the dataset part stays
        largest = min(shard_rows(cf["shard_size"]), n_to) if cf["shard_size"] else n_to  # the bank's largest shard
        shard_bytes = largest * dim * 4
        torch_block = max(1, min(1024, (1 << 28) // (largest * 4)))
        fb_block = max(1, min(256, (1 << 28) // (largest * 4)))
        sp = cf["score_predictions"]
        group = min(nq, max(1024, (1 << 24) // max(sp["search_k"], 1)))
        reads_per_call = -(-group // qbs)
        out["configs"].append({
            "shard_size": cf["shard_size"], "largest_shard_bytes": shard_bytes,
            "score_predictions_s": sp["seconds"] * f, "search_s": sp["search_s"] * f,
            "torch_ranks_s": cf["torch_ranks"]["seconds"] * f,
            "bank_reads_search": sp["search_calls"] * (1 if shard_bytes < 0.25 * ram_bytes else reads_per_call),
            "bank_reads_exact_fallback_at_least": -(-sp["exact_fallback_queries"] // fb_block),
            "bank_reads_torch_ranks": -(-nq // torch_block), "torch_ranks_query_block": torch_block,
            "peak_rss_anon": max(sp["peak_rss_anon_sampled"], cf["torch_ranks"]["peak_rss_anon_sampled"]),
        })
    return out


def target_bank(log: Callable[[str], None], workdir: Path, n: int, dim: int, n_queries: int,
                shard_sizes: list[int], cold: bool, threads: int, noise: float = 2.0) -> list[dict[str, Any]]:
    path = bank_file(workdir, n, dim)
    written = ensure_bank(path, n, dim, log)
    if cold:
        log(f"[bank] evicting {path.name} from the page cache: {evict_from_page_cache(path)}")
    cfg = {"path": str(path), "n": n, "dim": dim, "queries": n_queries, "shard_sizes": shard_sizes, "cold": cold,
           "threads": threads, "noise": noise}
    c = _run_child("bank", cfg)
    c["bank_file"] = written
    ph = c["phases"]
    lb = ph["load_bank"]
    log(f"[bank] {n:,} x {dim} float32 bank, {c['bank_bytes'] / GB:.2f} GB; load_bank {lb['seconds']:.1f} s "
        f"({lb['gb_per_s']:.2f} GB/s, memory-mapped {lb['memory_mapped']}); matmul reference "
        + ", ".join(f"{k} {v:.1f}" for k, v in c["matmul_reference_gflops"].items()) + " GFLOP/s")
    for cf in c["configs"]:
        sp, tr = cf["score_predictions"], cf["torch_ranks"]
        log(f"[bank] shard_size {cf['shard_size']:,} ({cf['shards']} shards): score_predictions {sp['seconds']:.1f} s "
            f"(search {sp['search_s']:.1f} s in {sp['search_calls']} call(s): {sp['pairs_per_s_search']:.3g} pairs/s, "
            f"{sp['gflops_per_s_search']:.1f} GFLOP/s = {sp['share_of_best_matmul']:.2f} x matmul; exact fallback "
            f"{sp['exact_fallback_queries']} queries {sp['exact_fallback_s']:.1f} s; rest {sp['rest_s']:.1f} s), "
            f"Hit@5 {sp['metrics']['hit@5']:.4f}; peak RSS {sp['peak_rss'] / GB:.2f} GB (anon {sp['peak_rss_anon_sampled'] / GB:.2f}, "
            f"file {sp['peak_rss_file_sampled'] / GB:.2f}); torch_ranks {tr['seconds']:.1f} s ({tr['query_block']} queries/block, "
            f"{tr['passes_over_pool']} passes; {tr['gflops_per_s']:.1f} GFLOP/s), peak RSS {tr['peak_rss'] / GB:.2f} GB "
            f"(anon {tr['peak_rss_anon_sampled'] / GB:.2f}); consistency ok {tr['consistency_ok']}")
    same = c["faiss_ranks_identical"]
    log(f"[bank] FAISS ranks identical across shard sizes {shard_sizes}: {same} {c['identical_across_shard_sizes']}")
    if not same:
        log("[bank] ERROR: sharding changed the ranks")
    ram = int(Path("/proc/meminfo").read_text().split()[1]) * 1024 if Path("/proc/meminfo").is_file() else 0
    proj = project_bank(c, 10 * n, ram)
    c["projection_10x"] = proj
    log(f"[bank] projection to {proj['n']:,} x {dim} ({proj['bank_bytes'] / GB:.1f} GB bank, RAM {ram / GB:.1f} GB, "
        f"fits: {proj['bank_fits_in_ram']}; derived, not measured): load_bank {proj['load_bank_s']:.0f} s + "
        + "; ".join(f"shard_size {p['shard_size']:,}: score_predictions {p['score_predictions_s']:.0f} s, torch_ranks "
                    f"{p['torch_ranks_s']:.0f} s; reads of the whole bank: search {p['bank_reads_search']}, exact fallback "
                    f">= {p['bank_reads_exact_fallback_at_least']}, torch_ranks {p['bank_reads_torch_ranks']}"
                    for p in proj["configs"]) + " (at the measured throughput; disk time on top where the bank exceeds RAM)")
    first = c["configs"][0]
    what = f"{n_queries:,} queries x {n:,} x {dim} bank"
    return [
        result("6 bank at scale", f"{what}: FAISS ranks identical, shard sizes {'/'.join(map(str, shard_sizes))}",
               float(same), 1.0, "higher", c),
        result("6 bank at scale", f"{what}: search FLOP rate / best matmul (shard_size {first['shard_size']})",
               first["score_predictions"]["share_of_best_matmul"], 0.70, "higher", {"see": "first bank row"}),
        result("6 bank at scale", f"{what}: peak RSS / bank bytes (memory-mapped)",
               c["peak_rss"] / c["bank_bytes"], 1.5, "lower", {"see": "first bank row"}),
        result("6 bank at scale", f"{what}: peak anonymous RSS / bank bytes (sampled)",
               c["peak_rss_anon_sampled"] / c["bank_bytes"], 1.5, "lower", {"see": "first bank row"}),
    ]


def _ivfpq_build_flops(n: int, dim: int) -> tuple[float, int, str]:
    """Coarse k-means (FAISS IndexIVF: 10 iterations over the training sample) + assigning every
    vector to a list, in matmul FLOPs; PQ training and encoding are left out (they do not grow with n
    once the sample exceeds PQ's 65,536-point cap)."""
    from lvmbench.evaluate.ann import TRAIN_PER_CENTROID, ivfpq_spec

    nlist, m, nbits = ivfpq_spec(n, dim)
    train_n = min(n, max(nlist, 2**nbits) * TRAIN_PER_CENTROID * 4)
    return 2.0 * dim * nlist * (10 * train_n + n), train_n, f"IVF{nlist},PQ{m}x{nbits}"


def project_ivfpq(c: dict[str, Any], n_to: int) -> dict[str, Any]:
    """The measured IVF-PQ build scaled to ``n_to`` vectors by its k-means + assignment FLOPs (derived)."""
    from lvmbench.evaluate.ann import ivfpq_spec

    dim, a = c["dim"], c["ann"]
    f_meas, _, _ = _ivfpq_build_flops(c["pool"], dim)
    f_to, train_n, spec = _ivfpq_build_flops(n_to, dim)
    nlist, m, nbits = ivfpq_spec(n_to, dim)
    return {"n": n_to, "index": spec, "train_points": train_n, "train_sample_bytes": train_n * dim * 4,
            "code_and_id_bytes": n_to * (math.ceil(m * nbits / 8) + 8), "flat_bytes": n_to * dim * 4,
            "build_s": a["build_s"] * f_to / f_meas, "build_flops": f_to, "measured_build_flops": f_meas}


def target_bank_ann(log: Callable[[str], None], workdir: Path, n: int, dim: int, n_queries: int, ann_n: int,
                    threads: int, noise: float = 2.0) -> list[dict[str, Any]]:
    path = bank_file(workdir, n, dim)
    ensure_bank(path, n, dim, log)
    c = _run_child("bank-ann", {"path": str(path), "n": n, "dim": dim, "queries": n_queries,
                                "ann_n": min(ann_n, n), "threads": threads, "noise": noise})
    a = c["ann"]
    c["projection_10m"] = project_ivfpq(c, 10_000_000)
    pj = c["projection_10m"]
    log(f"[bank-ann] projection to {pj['n']:,} x {dim} (derived, not measured): {pj['index']}, codes + ids "
        f"{pj['code_and_id_bytes'] / GB:.2f} GB, training sample {pj['train_sample_bytes'] / GB:.1f} GB in RAM, "
        f"build ~{pj['build_s']:.0f} s at the measured FLOP rate")
    log(f"[bank-ann] {a['index']} (nprobe {a['nprobe']}) over {c['pool']:,} x {dim}: build {a['build_s']:.1f} s, "
        f"search {a['search_s']:.2f} s for {n_queries:,} queries (exact scoring {c['exact']['seconds']:.1f} s); "
        f"recall@10 {a['recall@10']:.3f}; Hit@5 {a['hit@5']:.4f} via ANN vs {a['exact_hit@5']:.4f} exact; codes "
        f"{a['code_bytes'] / GB:.3f} GB vs flat {a['flat_bytes'] / GB:.2f} GB; peak RSS {c['ann_phase']['peak_rss'] / GB:.2f} GB")
    return [result("6 bank ANN (reported only)", f"IVF-PQ over {c['pool']:,} x {dim}: recall@10 vs exact",
                   a["recall@10"], 0.0, "higher", c)]


# --------------------------------------------------------------------------- CLI


ALL = ["scoring", "flat", "train", "memory", "precision"]
EXTRA = ["memory-1m", "bank", "bank-ann"]  # large: never part of 'all'


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_store-memory":
        set_threads(available_cores())
        print(json.dumps(_store_memory_child(argv[1])))
        return 0
    if argv and argv[0] == "_memory-1m":
        set_threads(available_cores())
        print(json.dumps(_memory_1m(int(argv[1]), int(argv[2]), int(argv[3]))))
        return 0
    if argv and argv[0] in ("_bank", "_bank-ann"):
        cfg = json.loads(argv[1])
        set_threads(cfg.get("threads") or available_cores())
        child = _bank_child if argv[0] == "_bank" else _bank_ann_child
        print(json.dumps(child(cfg), default=float))
        return 0
    p = argparse.ArgumentParser(prog="python -m benchmarks.targets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="*", choices=ALL + EXTRA + ["all"], default=[])
    p.add_argument("--threads", type=int, default=None, help="torch and FAISS threads (default: all available cores)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per timing (default 5)")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    g = p.add_argument_group("bank and bank-ann")
    g.add_argument("--bank-n", type=int, default=1_000_000, help="bank vectors (default 1,000,000)")
    g.add_argument("--bank-dim", type=int, default=768, help="bank dimension (default 768)")
    g.add_argument("--bank-queries", type=int, default=10_000, help="scored queries (default 10,000)")
    g.add_argument("--shard-sizes", type=lambda v: [int(x) for x in v.split(",")], default=list(BANK_SHARD_SIZES),
                   help="comma-separated --shard-size values to score with, ranks compared (default 0,262144)")
    g.add_argument("--workdir", type=Path, default=Path("/tmp/lvmbench-bank"),
                   help="where the bank .npy is written, or reused (default /tmp/lvmbench-bank)")
    g.add_argument("--cold", action="store_true",
                   help="drop the bank file's pages from the page cache before the run (load_bank then reads from disk)")
    g.add_argument("--pred-noise", type=float, default=2.0,
                   help="prediction = target + noise * N(0, I/D), normalised: cosine ~1/sqrt(1+noise^2) "
                        "(default 2: ~0.45; 8: ~0.12, ranks spread past the search depth)")
    g.add_argument("--ann-n", type=int, default=200_000, help="bank-ann: bank rows the IVF-PQ index covers (default 200,000)")
    args = p.parse_args(argv)
    chosen = [t for t in (args.targets or ["all"])]
    if "all" in chosen:
        chosen = ALL + [t for t in chosen if t in EXTRA]
    threads = args.threads or available_cores()
    set_threads(threads)

    def log(msg: str) -> None:
        print(msg, flush=True)

    env = environment()
    log(f"targets {', '.join(chosen)}; threads {threads}; {env['cpu']}; torch {env['torch']}, faiss {env['faiss']}")
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for name in chosen:
        set_threads(threads)
        if name == "scoring":
            results += target_scoring(args.rounds, log)
        elif name == "flat":
            results += target_flat(args.rounds, log)
        elif name == "train":
            results += target_train(args.rounds, log)
        elif name == "memory":
            results += target_memory(log)
        elif name == "memory-1m":
            results += target_memory_1m(log)
        elif name == "bank":
            results += target_bank(log, args.workdir, args.bank_n, args.bank_dim, args.bank_queries, args.shard_sizes,
                                   args.cold, threads, args.pred_noise)
        elif name == "bank-ann":
            results += target_bank_ann(log, args.workdir, args.bank_n, args.bank_dim, args.bank_queries, args.ann_n,
                                       threads, args.pred_noise)
        elif name == "precision":
            results += target_precision(args.rounds, threads, log)
    log("")
    log(f"{'target':32s} {'what':80s} {'value':>8s} {'limit':>7s}  met")
    for r in results:
        op = "<=" if r["better"] == "lower" else ">="
        log(f"{r['target']:32s} {r['what'][:80]:80s} {r['value']:8.3f} {op}{r['limit']:5.2f}  {'yes' if r['met'] else 'NO'}")
    log(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        env["loadavg_end"] = load_average()
        args.json.write_text(json.dumps({"env": env, "threads": threads, "argv": argv, "results": results},
                                        indent=2, default=float))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
