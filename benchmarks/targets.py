"""The speed and memory targets of issue 5, each measured as a ratio in one process.

    python -m benchmarks.targets                    # scoring, flat, train, memory, precision
    python -m benchmarks.targets scoring flat       # a subset
    python -m benchmarks.targets memory-1m          # 1M x 768 scoring memory (~12 GB RAM; not in 'all')
    python -m benchmarks.targets --json out.json    # also write every number as JSON

Each ratio's numerator and denominator are timed in the same process,
interleaved round by round, with the same threads (``--threads``, default all
available cores) and the median of the rounds taken.  Results and the method
behind each are in ``docs/performance.md``.

Targets:
  scoring    lvmbench's test-split scoring <= 1.10 x (model forward + bare IndexFlatIP.search)
  flat       batched flat search >= 70 % of the FLOP rate of a float32 matmul of the same shapes
  train      recipe trainer per optimiser step <= 1.05 x a bare PyTorch loop; sample assembly <= 5 % of step
  memory     a chain store costs its unique vectors + a sample index, never N x T x D
  memory-1m  scoring against a 1M x 768 float32 pool peaks below 1.5 x the pool's bytes
  precision  bf16 autocast, torch.compile and 1 vs 2 threads for memory_gru and transformer steps (speed only)
"""

from __future__ import annotations

import argparse
import copy
import json
import math
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
    available_cores, build_trainable, environment, load_average, make_train_step, median_time, random_batch,
    random_walk_store, reset_peak_rss, rss_bytes, set_threads, timed, unit_rows,
)
from lvmbench.config import Recipe
from lvmbench.data.prepare import DEFAULT_DATASET, prepare
from lvmbench.data.samples import gather_batch, make_samples
from lvmbench.data.store import ChainStore, load_store
from lvmbench.data.synth import write_synth
from lvmbench.evaluate import metrics
from lvmbench.evaluate.index import build_pool
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
    cand = queries.candidates(True, pool.size)
    e = recipe.eval
    fns = {
        "lvmbench_score_one": lambda: score_one(model_name, model, prep, recipe, unit_t, pool, queries),
        "bare_forward": bare_forward,
        "bare_search_k_equal": lambda: pool.index.search(pred, k_eq),
        "bare_search_k10": lambda: pool.index.search(pred, 10),
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
    pool = unit_rows(n, dim, seed=0)
    q = unit_rows(nq, dim, seed=0, n_centres=max(1, n // 100), sample_seed=1)
    index = faiss.IndexFlatIP(dim)
    index.add(pool)
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
    return {"pool": n, "dim": dim, "queries": nq, "flops": flops, "seconds": t, "gflops_per_s": rate,
            "reference": "numpy_matmul" if rate["numpy_matmul"] >= rate["torch_mm"] else "torch_mm",
            "share_k10": rate["faiss_k10"] / ref, "share_k1000": rate["faiss_k1000"] / ref,
            "share_k10_blas_forced": rate["faiss_k10_blas_forced"] / ref,
            "blas_path_by_default": bool(nq * dim >= default_threshold),
            "forced_blas_same_ids": bool(np.array_equal(i_def, i_blas)),
            "forced_blas_max_abs_score_diff": float(np.abs(d_def - d_blas).max()),
            "faiss_blas_database_bs": faiss.cvar.distance_compute_blas_database_bs,
            "faiss_blas_query_bs": faiss.cvar.distance_compute_blas_query_bs,
            "faiss_blas_threshold": faiss.cvar.distance_compute_blas_threshold}


def target_flat(rounds: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    out = []
    for n, dim in [(10_000, 384), (100_000, 384), (100_000, 768)]:
        c = flat_case(n, dim, 256, rounds)
        log(f"[flat] {n} x {dim}, 256 queries: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in c["gflops_per_s"].items())
            + f"; faiss k=10 / best matmul = {c['share_k10']:.2f}, k=1000: {c['share_k1000']:.2f}, "
            f"k=10 BLAS forced: {c['share_k10_blas_forced']:.2f} (BLAS path by default: {c['blas_path_by_default']})")
        out.append(result("2 flat search FLOP rate", f"{n // 1000}k x {dim}, 256 queries, k=10", c["share_k10"], 0.70,
                          "higher", c))
    return out


# --------------------------------------------------------------------------- 3. training-loop overhead


class _Timers:
    """Wraps the trainer's validation and file writes so their time can be taken out."""

    names = ("validate", "save_checkpoint", "atomic_write_json")

    def __init__(self) -> None:
        self.seconds = {k: 0.0 for k in self.names}
        self._orig = {k: getattr(loop, k) for k in self.names}

    def __enter__(self) -> "_Timers":
        for k in self.names:
            setattr(loop, k, self._wrap(k, self._orig[k]))
        return self

    def __exit__(self, *exc: Any) -> None:
        for k, fn in self._orig.items():
            setattr(loop, k, fn)

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[name] += time.perf_counter() - t0
        return wrapped


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
        with _Timers() as tm:
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
    import shutil

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
    """Run in a fresh process: RSS of each phase of scoring against an n x dim pool (pool = every vector)."""
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
        f"{ph['torch_ranks']['peak_rss'] / GB:.2f} GB; peak / pool = {c['peak_over_pool']:.2f}")
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
            with _Timers() as tm:
                t0 = time.perf_counter()
                hist = train(model, data, recipe, run_dir, model_name, log=lambda _m: None)
                total = time.perf_counter() - t0
            if r:
                times[bf16].append(total - sum(tm.seconds.values()))
            losses[bf16] = hist["history"][-1]["train_loss"]
    import shutil

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


# --------------------------------------------------------------------------- CLI


ALL = ["scoring", "flat", "train", "memory", "precision"]


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
    p = argparse.ArgumentParser(prog="python -m benchmarks.targets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("targets", nargs="*", choices=ALL + ["memory-1m", "all"], default=[])
    p.add_argument("--threads", type=int, default=None, help="torch and FAISS threads (default: all available cores)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per timing (default 5)")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    args = p.parse_args(argv)
    chosen = [t for t in (args.targets or ["all"])]
    if "all" in chosen:
        chosen = ALL + [t for t in chosen if t == "memory-1m"]
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
        elif name == "precision":
            results += target_precision(args.rounds, threads, log)
    log("")
    log(f"{'target':32s} {'what':72s} {'value':>8s} {'limit':>7s}  met")
    for r in results:
        op = "<=" if r["better"] == "lower" else ">="
        log(f"{r['target']:32s} {r['what'][:72]:72s} {r['value']:8.3f} {op}{r['limit']:5.2f}  {'yes' if r['met'] else 'NO'}")
    log(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        env["loadavg_end"] = load_average()
        args.json.write_text(json.dumps({"env": env, "threads": threads, "argv": argv, "results": results},
                                        indent=2, default=float))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
