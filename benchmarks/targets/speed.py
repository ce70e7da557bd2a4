"""The speed targets of "Speed to the machine's limit", each a ratio measured side by side in one process.

* **useful-FLOP rate** of a memory_gru and a transformer training step with
  the recipe's defaults (length-grouped micro-batches, bf16 autocast), as a
  share of the bf16 matmul peak measured in the same process: >= 40 %.  Useful
  FLOPs are the forward + backward FLOPs of the real (unpadded) context
  positions: each timed micro-batch's FLOPs (``torch.utils.flop_counter``)
  times its share of real positions.
* **score**: ``lvmbench score`` of a predictions file (in-process
  ``score_file``, its baseline cache warm, then cold) against the pipeline a
  user would write (numpy + FAISS ``IndexFlatIP`` with k = 1100, excluded rows
  dropped, Hit@K and MRR) on git-manual: warm <= 1.5, cold <= 3.
* **rerank-1m**: the torch consistency re-rank / the FAISS search it checks,
  10k queries against a 1M x 384 pool: <= 0.5 (not in ``all``: ~4 GB, minutes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import numpy as np
import torch

from benchmarks._common import set_threads
from benchmarks.targets.common import Log, Result, interleaved, result
from lvmbench.config import Recipe
from lvmbench.data.prepare import REPO_ROOT, prepare, resolve_data
from lvmbench.data.samples import gather_batch
from lvmbench.models.build import build_model
from lvmbench.models.predict import predict
from lvmbench.runs.single import train_data
from lvmbench.train.distributed import ShardedOrder
from lvmbench.train.validate import batch_loss

SUITE_TASK = REPO_ROOT / "fixtures" / "suite" / "git-manual"


def bf16_peak(threads: int, n: int = 4096, rounds: int = 3) -> float:
    """The bf16 matmul rate (FLOP/s) of this machine: torch.mm of two n x n bf16 matrices."""
    set_threads(threads)
    a, b = (torch.randn(n, n).to(torch.bfloat16) for _ in range(2))
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(rounds))
    return 2 * n**3 / best


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _step(model: torch.nn.Module, data: Any, recipe: Recipe, idx: np.ndarray, device: torch.device) -> None:
    ctx, lens, target = gather_batch(data.unit, data.train.target[idx], data.train.start[idx], recipe.data.context_len)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe.train.bf16_autocast):
        pred = predict(model, ctx, lens)
    batch_loss(pred.float(), target, data.train.target[idx], data.train.start[idx], data, recipe)[0].backward()


def useful_flop_case(model_name: str, batches: int, log: Log) -> dict[str, Any]:
    """Useful FLOP/s of the recipe's training steps on the default data's first ``batches`` micro-batches."""
    from torch.utils.flop_counter import FlopCounterMode

    recipe = Recipe()
    recipe.model.name = model_name
    device = torch.device("cpu")
    prep = prepare(resolve_data(None, log=lambda m: None), recipe)
    data = train_data(prep, recipe, device)
    model = build_model(model_name, prep, recipe).train()
    lengths = np.minimum(data.train.target - data.train.start, recipe.data.context_len)
    order = ShardedOrder(len(data.train), recipe.train.micro_batch, recipe.train.accum_steps, recipe.seed,
                         lengths=lengths if recipe.train.bucket_by_length else None)
    order.set_epoch(1)
    picks = [order.batch(i) for i in range(min(batches, order.n_micro))]
    useful = 0.0
    for idx in picks:
        with FlopCounterMode(display=False) as counter:
            _step(model, data, recipe, idx, device)
        real = lengths[idx].sum() / (lengths[idx].max() * len(idx))
        useful += counter.get_total_flops() * real
    _step(model, data, recipe, picks[0], device)  # warm-up
    seconds = min(_seconds(lambda: [_step(model, data, recipe, idx, device) for idx in picks]) for _ in range(2))
    return {"model": model_name, "micro_batches": len(picks), "useful_flop": useful, "seconds": seconds,
            "useful_flop_per_s": useful / seconds, "bucket_by_length": recipe.train.bucket_by_length,
            "bf16_autocast": recipe.train.bf16_autocast}


def target_useful(threads: int, log: Log) -> list[Result]:
    out = []
    peak = bf16_peak(threads)
    log(f"[useful] bf16 matmul peak: {peak / 1e9:.0f} GFLOP/s with {threads} threads")
    for model_name in ("memory_gru", "transformer"):
        c = useful_flop_case(model_name, 16, log)
        share = c["useful_flop_per_s"] / peak
        log(f"[useful] {model_name}: {c['useful_flop_per_s'] / 1e9:.0f} useful GFLOP/s over {c['micro_batches']} "
            f"micro-batches = {100 * share:.0f}% of the bf16 peak (grouped by length: {c['bucket_by_length']}, "
            f"bf16: {c['bf16_autocast']})")
        out.append(result("speed: useful FLOPs", f"{model_name} training step, useful FLOP/s / bf16 matmul peak",
                          share, 0.40, "higher", {**c, "bf16_peak_flop_per_s": peak}))
    return out


def _hand_rolled(task_path: str, pred_path: str, data_dir: str) -> dict[str, float]:
    """The pipeline a user would write: numpy + FAISS IndexFlatIP (k = 1100), excluded rows dropped, Hit@K, MRR."""
    import faiss

    t = np.load(task_path)
    pred = np.load(pred_path).astype(np.float32)
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    vecs = np.load(os.path.join(data_dir, "vectors.npy")).astype(np.float32)
    pool_ids = t["pool_ids"]
    pool = vecs[pool_ids]
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(pool.shape[1])
    index.add(pool)
    _, found = index.search(pred, 1100)
    ids = pool_ids[np.maximum(found, 0)]
    keep = ~((ids >= t["exclude_lo"][:, None]) & (ids < t["exclude_hi"][:, None]))
    hit = (ids == t["target_ids"][:, None]) & keep
    rank = np.where(hit.any(1), np.cumsum(keep, axis=1)[np.arange(len(ids)), hit.argmax(1)], 10**9)
    return {**{f"hit@{k}": float((rank <= k).mean()) for k in (1, 5, 10)}, "mrr": float((1.0 / rank).mean())}


def target_score(rounds: int, log: Log) -> list[Result]:
    from lvmbench.runs.predictions import score_file, write_task

    work = tempfile.mkdtemp(prefix="lvmbench-target-score-")
    task, pred = os.path.join(work, "task.npz"), os.path.join(work, "pred.npy")
    write_task(Recipe(), str(SUITE_TASK), "test", task, log=lambda m: None)
    vecs = np.load(SUITE_TASK / "vectors.npy").astype(np.float32)
    noise = np.random.default_rng(0).normal(size=(len(np.load(task)["target_ids"]), vecs.shape[1]))
    np.save(pred, vecs[np.load(task)["target_ids"] - 1] + 0.01 * noise.astype(np.float32))  # copy_last, perturbed
    caches = iter(range(10**6))

    def lvm(cold: bool) -> None:
        if cold:
            os.environ["LVMBENCH_CACHE"] = os.path.join(work, f"cache-{next(caches)}")
        score_file(pred, task, None, os.path.join(work, "run"), overwrite=True, log=lambda m: None)
        if cold:
            os.environ["LVMBENCH_CACHE"] = os.path.join(work, "cache-warm")

    os.environ["LVMBENCH_CACHE"] = os.path.join(work, "cache-warm")
    t = interleaved({"hand": lambda: _hand_rolled(task, pred, str(SUITE_TASK)), "warm": lambda: lvm(False),
                     "cold": lambda: lvm(True)}, rounds)
    warm, cold = t["warm"] / t["hand"], t["cold"] / t["hand"]
    log(f"[score] git-manual, 3,874 queries, pool 3,936: numpy + IndexFlatIP {t['hand']:.2f} s, lvmbench score "
        f"warm {t['warm']:.2f} s (x{warm:.2f}), cold {t['cold']:.2f} s (x{cold:.2f})")
    return [result("speed: score", "lvmbench score (baseline cache warm) / numpy + IndexFlatIP pipeline", warm, 1.5,
                   "lower", t),
            result("speed: score", "lvmbench score (cold: baselines computed) / numpy + IndexFlatIP pipeline", cold,
                   3.0, "lower", t)]


def run_useful(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_useful(threads, log)


def run_score(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_score(args.rounds, log)



def target_rerank_1m(n_pool: int, n_queries: int, dim: int, log: Log) -> list[Result]:
    """torch's consistency re-rank / the FAISS search it checks, on a synthetic pool of unit vectors."""
    from lvmbench.data.samples import Samples
    from lvmbench.evaluate.index import Pool, search
    from lvmbench.evaluate.queries import Queries
    from lvmbench.evaluate.ranking import torch_ranks, torch_ranks_listed
    from lvmbench.evaluate.ties import TargetCopies

    rng = np.random.default_rng(0)
    vecs = np.empty((n_pool, dim), dtype=np.float32)
    for s in range(0, n_pool, 1 << 17):  # blockwise: a float64 draw of the whole pool would double the peak
        v = rng.standard_normal((min(1 << 17, n_pool - s), dim), dtype=np.float32)
        vecs[s : s + len(v)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    target = np.sort(rng.choice(n_pool, size=n_queries, replace=False))
    pred = vecs[target] + 0.9 * rng.standard_normal((n_queries, dim), dtype=np.float32) / np.sqrt(dim)
    pred = (pred / np.linalg.norm(pred, axis=1, keepdims=True)).astype(np.float32)  # np.sqrt gave float64
    pool = Pool("synthetic", np.arange(n_pool, dtype=np.int64), [vecs])
    none = target.copy()  # nothing excluded: lo == hi
    queries = Queries(Samples(target, target, np.zeros(n_queries, np.int64)), target, none, none,
                      np.full((n_queries, 1), -1), TargetCopies(np.empty(0, np.int64), np.empty(0, np.int64), n_pool))
    k = 110  # max(eval.ks) plus a 100-vector excluded window, as a run searches
    t0 = time.perf_counter()
    _, returned = search(pool, pred, k)
    faiss_s = time.perf_counter() - t0
    pred_t = torch.from_numpy(pred)
    t0 = time.perf_counter()
    _, _, missed = torch_ranks_listed(pred_t, pool, queries, returned, exclude=False)
    listed_s = time.perf_counter() - t0
    part = max(1, n_queries // 16)  # the full pass it replaces, on a sixteenth of the queries (then scaled)
    sub = queries.subset(np.arange(part))
    t0 = time.perf_counter()
    torch_ranks(pred_t[:part], torch.from_numpy(vecs), sub, exclude=False)
    full_s = (time.perf_counter() - t0) * n_queries / part
    log(f"[rerank-1m] {n_queries:,} queries x {n_pool:,} x {dim}: FAISS search (k={k}) {faiss_s:.1f} s; torch "
        f"re-rank over the returned lists + probe {listed_s:.1f} s (x{listed_s / faiss_s:.2f}, {missed} missed); "
        f"a full torch pass would take ~{full_s:.0f} s (x{full_s / faiss_s:.2f}, from {part:,} queries)")
    details = {"faiss_search_s": faiss_s, "torch_listed_s": listed_s, "torch_full_pass_s_scaled": full_s,
               "queries": n_queries, "pool": n_pool, "dim": dim, "k": k, "probe_missed": missed}
    return [result("speed: re-rank", f"torch consistency re-rank / FAISS search, {n_pool:,} x {dim}",
                   listed_s / faiss_s, 0.5, "lower", details)]


def run_rerank_1m(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_rerank_1m(1_000_000, 4_000, 384, log)


def target_small_search(rounds: int, log: Log) -> list[Result]:
    """lvmbench's exact search / FAISS IndexFlatIP.search at equal k, on a pool of 3,936 (git-manual's test pool)."""
    import faiss

    from lvmbench.evaluate.index import Pool, search

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3936, 384), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((3874, 384), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    pool = Pool("t", np.arange(len(x)), [x])
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    out = []
    for k in (10, 110, 1100):
        t = interleaved({"faiss": lambda k=k: index.search(q, k), "lvmbench": lambda k=k: search(pool, q, k)}, rounds)
        ratio = t["lvmbench"] / t["faiss"]
        log(f"[search] k={k}: IndexFlatIP {t['faiss']:.3f} s, lvmbench {t['lvmbench']:.3f} s (x{ratio:.2f})")
        out.append(result("speed: search", f"lvmbench search / IndexFlatIP.search, pool 3,936, k={k}", ratio, 1.2,
                          "lower", {**t, "k": k}))
    return out


def run_small_search(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_small_search(args.rounds, log)
