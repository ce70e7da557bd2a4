"""Target 6, an external bank at scale: lvmbench's scoring path (``load_bank``, ``build_pool``,
``rank_and_summarise``, ``torch_ranks``) for ``--bank-queries`` queries against a ``--bank-n`` x
``--bank-dim`` float32 unit bank, once per ``--shard-sizes`` value, in a fresh process (``_bank``):
time and RSS per phase, throughput, ranks identical across shard sizes, and a 10x projection.
Not in 'all'."""

from __future__ import annotations

import argparse
import os
import resource
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from benchmarks._common import rss_bytes, thread_info
from benchmarks.targets.common import (
    BANK_CHAIN_LEN, GB, CallTimer, Log, Result, bank_dataset, bank_file, cfg_child, child_log, ensure_bank,
    interleaved, phase, result, run_child,
)
from lvmbench.config import Recipe
from lvmbench.evaluate import ranking as ranking_mod
from lvmbench.evaluate.index import Bank, Pool, build_pool, load_bank, shard_rows
from lvmbench.evaluate.queries import make_queries
from lvmbench.evaluate.ranking import torch_ranks
from lvmbench.evaluate.consistency import check_consistency
from lvmbench.evaluate.summary import rank_and_summarise

CHILD = "bank"


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


# --------------------------------------------------------------------------- the child (a fresh process)


@dataclass
class _BankInputs:
    """What every shard size is scored with: the dataset part, its predictions and the loaded bank."""

    unit: np.ndarray
    offsets: np.ndarray
    chains: np.ndarray
    samples: Any
    pred: np.ndarray
    bank: Bank
    dim: int
    ev: Any  # Recipe().eval: ks, search depth, bootstrap, tie tolerance
    best_matmul_gflops: float


def _matmul_reference(pred: np.ndarray, bank: Bank, dim: int) -> dict[str, float]:
    """The best plain float32 matmul of these shapes (1,024 queries x 65,536 bank rows, in RAM),
    GFLOP/s; its 200 MB of arrays are freed on return, before the measured phases."""
    qb, bb = pred[:1024], np.array(bank.vectors[:65_536])  # a copy in RAM
    out_np = np.empty((len(qb), len(bb)), dtype=np.float32)
    qb_t, bb_t, out_t = torch.from_numpy(qb), torch.from_numpy(bb), torch.empty(len(qb), len(bb))
    ref_t = interleaved({"numpy_matmul": lambda: np.matmul(qb, bb.T, out=out_np),
                         "torch_mm": lambda: torch.mm(qb_t, bb_t.T, out=out_t)}, rounds=3)
    return {k: 2.0 * len(qb) * len(bb) * dim / v / GB for k, v in ref_t.items()}


def _score_phase(inp: _BankInputs, pool: Pool, queries: Any, pairs: float, flops: float) -> tuple[dict[str, Any], Any]:
    """``rank_and_summarise`` as one phase, its search and exact fallback timed apart."""
    e = inp.ev
    with CallTimer(ranking_mod, ("search", "_exact_counts")) as ct:
        ph_score, scored = phase(lambda: rank_and_summarise("m", inp.pred, pool, queries, inp.unit, e.ks,
                                                           e.search_depth, e.bootstrap, 0))
    search_s = ct.seconds["search"]
    ph_score.update({"search_s": search_s, "search_calls": ct.calls["search"],
                     "exact_fallback_s": ct.seconds["_exact_counts"],
                     "rest_s": ph_score["seconds"] - search_s - ct.seconds["_exact_counts"],
                     "exact_fallback_queries": scored.faiss.exact_fallback, "search_k": scored.faiss.depth,
                     "pairs_per_s_search": pairs / search_s, "gflops_per_s_search": flops / search_s / GB,
                     "share_of_best_matmul": flops / search_s / GB / inp.best_matmul_gflops,
                     "metrics": {k: v for k, v in scored.metrics.items() if not isinstance(v, dict)}})
    child_log(f"[bank child]   {ph_score['seconds']:.1f} s (search {search_s:.1f} s, "
              f"{ph_score['gflops_per_s_search']:.1f} GFLOP/s; fallback {scored.faiss.exact_fallback} queries "
              f"{ct.seconds['_exact_counts']:.1f} s); torch_ranks")
    return ph_score, scored


def _torch_phase(inp: _BankInputs, pool: Pool, queries: Any, scored: Any, pairs: float, flops: float,
                 ) -> tuple[dict[str, Any], np.ndarray]:
    """``torch_ranks`` over the same pool as one phase, checked against the FAISS ranks."""
    e = inp.ev
    nq = len(inp.pred)
    pred_t = torch.from_numpy(inp.pred)
    with warnings.catch_warnings():  # the memory-mapped bank is read-only; torch only reads it
        warnings.filterwarnings("ignore", message=".*not writable.*")
        pool_t = [(start, torch.from_numpy(shard)) for start, shard in pool.blocks()]
    ph_torch, (t_rank, t_gap) = phase(lambda: torch_ranks(pred_t, pool_t, queries))
    largest = max(len(sh) for sh in pool.shards)
    block = max(1, min(1024, (1 << 28) // (largest * 4)))  # torch_ranks' query block (scoring.py)
    cons = check_consistency(t_rank, t_gap, scored.faiss.retrieved, e.ks, e.tie_tol)
    ph_torch.update({"query_block": block, "passes_over_pool": -(-nq // block),
                     "pairs_per_s": pairs / ph_torch["seconds"], "gflops_per_s": flops / ph_torch["seconds"] / GB,
                     "ranks_equal_faiss": int((t_rank == scored.faiss.rank).sum()),
                     "consistency_ok": cons["ok"], "near_ties": cons["n_near_ties"], "mismatch": cons["n_mismatch"]})
    child_log(f"[bank child]   torch_ranks {ph_torch['seconds']:.1f} s ({block} queries per block, "
              f"{ph_torch['passes_over_pool']} passes over the pool); consistency ok {cons['ok']}")
    return ph_torch, t_rank


def _score_shard_size(inp: _BankInputs, shard_size: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Dataset part + bank as one pool sharded by ``shard_size``: both phases, and the arrays that
    must not depend on the sharding.  The pool is freed on return, before the next shard size."""
    pool = build_pool(inp.unit, inp.offsets, inp.chains, "test", inp.bank, shard_size)
    queries = make_queries(inp.samples, pool, BANK_CHAIN_LEN)
    pairs = float(len(inp.pred)) * pool.size
    flops = 2.0 * pairs * inp.dim
    child_log(f"[bank child] shard_size {shard_size}: pool {pool.size:,} in {len(pool.shards)} shards; "
              "rank_and_summarise")
    ph_score, scored = _score_phase(inp, pool, queries, pairs, flops)
    ph_torch, t_rank = _torch_phase(inp, pool, queries, scored, pairs, flops)
    config = {"shard_size": shard_size, "shard_rows": shard_rows(shard_size), "shards": len(pool.shards),
              "largest_shard": max(len(sh) for sh in pool.shards), "pool": pool.size, "pairs": pairs,
              "flops": flops, "rank_and_summarise": ph_score, "torch_ranks": ph_torch}
    fr = scored.faiss
    return config, {"rank": fr.rank, "rank_with_context": fr.rank_with_context, "retrieved": fr.retrieved,
                    "ties": fr.ties, "top": fr.top, "torch_rank": t_rank}


def _bank_child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: load the bank, then score ``queries`` predictions against the
    dataset part + bank for each shard size, through lvmbench's own path."""
    path, n, dim, nq = Path(cfg["path"]), cfg["n"], cfg["dim"], cfg["queries"]
    phases: dict[str, Any] = {"start": rss_bytes()}
    unit, offsets, chains, samples, pred = bank_dataset(n, dim, nq, cfg.get("noise", 2.0))
    phases["dataset"] = {**rss_bytes(), "vectors": len(unit), "chains": len(chains)}
    child_log(f"[bank child] load_bank {path}")
    phases["load_bank"], bank = phase(lambda: load_bank(path, dim, log=child_log))
    phases["load_bank"].update({"memory_mapped": bank.mapped, "bank_bytes": int(bank.vectors.nbytes),
                                "gb_per_s": bank.vectors.nbytes / phases["load_bank"]["seconds"] / GB,
                                "page_cache_cold_before": bool(cfg.get("cold"))})
    ref_gflops = _matmul_reference(pred, bank, dim)
    inp = _BankInputs(unit, offsets, chains, samples, pred, bank, dim, Recipe().eval, max(ref_gflops.values()))
    configs: list[dict[str, Any]] = []
    arrays: list[dict[str, np.ndarray]] = []
    for shard_size in cfg["shard_sizes"]:
        config, arr = _score_shard_size(inp, shard_size)
        configs.append(config)
        arrays.append(arr)
    same = {k: all(np.array_equal(a[k], arrays[0][k]) for a in arrays[1:]) for k in arrays[0]}
    peaks = [c[p]["peak_rss"] for c in configs for p in ("rank_and_summarise", "torch_ranks")]
    anon = [c[p]["peak_rss_anon_sampled"] for c in configs for p in ("rank_and_summarise", "torch_ranks")]
    return {"n": n, "dim": dim, "queries": nq, "pred_noise": cfg.get("noise", 2.0),
            "pred_cos_target_mean": float(np.einsum("ij,ij->i", pred, unit[samples.target]).mean()),
            "bank_bytes": int(bank.vectors.nbytes), "bank_sha256": bank.sha256,
            "threads": thread_info(), "phases": phases, "matmul_reference_gflops": ref_gflops, "configs": configs,
            "identical_across_shard_sizes": same,
            "faiss_ranks_identical": all(v for k, v in same.items() if k != "torch_rank"),
            "peak_rss": max([phases["load_bank"]["peak_rss"]] + peaks),
            "peak_rss_anon_sampled": max([phases["load_bank"]["peak_rss_anon_sampled"]] + anon),
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def child_main(args: list[str]) -> str:
    """``_bank JSON``: the child's one JSON line."""
    return cfg_child(args, _bank_child)


# --------------------------------------------------------------------------- the parent: projection, log, results


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
        sp = cf["rank_and_summarise"]
        group = min(nq, max(1024, (1 << 24) // max(sp["search_k"], 1)))
        reads_per_call = -(-group // qbs)
        out["configs"].append({
            "shard_size": cf["shard_size"], "largest_shard_bytes": shard_bytes,
            "rank_and_summarise_s": sp["seconds"] * f, "search_s": sp["search_s"] * f,
            "torch_ranks_s": cf["torch_ranks"]["seconds"] * f,
            "bank_reads_search": sp["search_calls"] * (1 if shard_bytes < 0.25 * ram_bytes else reads_per_call),
            "bank_reads_exact_fallback_at_least": -(-sp["exact_fallback_queries"] // fb_block),
            "bank_reads_torch_ranks": -(-nq // torch_block), "torch_ranks_query_block": torch_block,
            "peak_rss_anon": max(sp["peak_rss_anon_sampled"], cf["torch_ranks"]["peak_rss_anon_sampled"]),
        })
    return out


def _log_bank_run(c: dict[str, Any], n: int, dim: int, shard_sizes: list[int], log: Log) -> None:
    """The child's measurements, one line for the bank and one per shard size."""
    lb = c["phases"]["load_bank"]
    log(f"[bank] {n:,} x {dim} float32 bank, {c['bank_bytes'] / GB:.2f} GB; load_bank {lb['seconds']:.1f} s "
        f"({lb['gb_per_s']:.2f} GB/s, memory-mapped {lb['memory_mapped']}); matmul reference "
        + ", ".join(f"{k} {v:.1f}" for k, v in c["matmul_reference_gflops"].items()) + " GFLOP/s")
    for cf in c["configs"]:
        sp, tr = cf["rank_and_summarise"], cf["torch_ranks"]
        log(f"[bank] shard_size {cf['shard_size']:,} ({cf['shards']} shards): rank_and_summarise {sp['seconds']:.1f} s "
            f"(search {sp['search_s']:.1f} s in {sp['search_calls']} call(s): {sp['pairs_per_s_search']:.3g} pairs/s, "
            f"{sp['gflops_per_s_search']:.1f} GFLOP/s = {sp['share_of_best_matmul']:.2f} x matmul; exact fallback "
            f"{sp['exact_fallback_queries']} queries {sp['exact_fallback_s']:.1f} s; rest {sp['rest_s']:.1f} s), "
            f"Hit@5 {sp['metrics']['hit@5']:.4f}; peak RSS {sp['peak_rss'] / GB:.2f} GB "
            f"(anon {sp['peak_rss_anon_sampled'] / GB:.2f}, "
            f"file {sp['peak_rss_file_sampled'] / GB:.2f}); torch_ranks {tr['seconds']:.1f} s "
            f"({tr['query_block']} queries/block, "
            f"{tr['passes_over_pool']} passes; {tr['gflops_per_s']:.1f} GFLOP/s), "
            f"peak RSS {tr['peak_rss'] / GB:.2f} GB "
            f"(anon {tr['peak_rss_anon_sampled'] / GB:.2f}); consistency ok {tr['consistency_ok']}")
    same = c["faiss_ranks_identical"]
    log(f"[bank] FAISS ranks identical across shard sizes {shard_sizes}: {same} {c['identical_across_shard_sizes']}")
    if not same:
        log("[bank] ERROR: sharding changed the ranks")


def _log_projection(proj: dict[str, Any], dim: int, ram: int, log: Log) -> None:
    log(f"[bank] projection to {proj['n']:,} x {dim} ({proj['bank_bytes'] / GB:.1f} GB bank, RAM {ram / GB:.1f} GB, "
        f"fits: {proj['bank_fits_in_ram']}; derived, not measured): load_bank {proj['load_bank_s']:.0f} s + "
        + "; ".join(f"shard_size {p['shard_size']:,}: rank_and_summarise {p['rank_and_summarise_s']:.0f} s, "
                    "torch_ranks "
                    f"{p['torch_ranks_s']:.0f} s; reads of the whole bank: search {p['bank_reads_search']}, "
                    f"exact fallback >= {p['bank_reads_exact_fallback_at_least']}, "
                    f"torch_ranks {p['bank_reads_torch_ranks']}"
                    for p in proj["configs"])
        + " (at the measured throughput; disk time on top where the bank exceeds RAM)")


def target_bank(log: Log, workdir: Path, n: int, dim: int, n_queries: int,
                shard_sizes: list[int], cold: bool, threads: int, noise: float = 2.0) -> list[Result]:
    path = bank_file(workdir, n, dim)
    written = ensure_bank(path, n, dim, log)
    if cold:
        log(f"[bank] evicting {path.name} from the page cache: {evict_from_page_cache(path)}")
    cfg = {"path": str(path), "n": n, "dim": dim, "queries": n_queries, "shard_sizes": shard_sizes, "cold": cold,
           "threads": threads, "noise": noise}
    c = run_child(CHILD, cfg)
    c["bank_file"] = written
    _log_bank_run(c, n, dim, shard_sizes, log)
    same = c["faiss_ranks_identical"]
    ram = int(Path("/proc/meminfo").read_text().split()[1]) * 1024 if Path("/proc/meminfo").is_file() else 0
    proj = project_bank(c, 10 * n, ram)
    c["projection_10x"] = proj
    _log_projection(proj, dim, ram, log)
    first = c["configs"][0]
    what = f"{n_queries:,} queries x {n:,} x {dim} bank"
    return [
        result("6 bank at scale", f"{what}: FAISS ranks identical, shard sizes {'/'.join(map(str, shard_sizes))}",
               float(same), 1.0, "higher", c),
        result("6 bank at scale", f"{what}: search FLOP rate / best matmul (shard_size {first['shard_size']})",
               first["rank_and_summarise"]["share_of_best_matmul"], 0.70, "higher", {"see": "first bank row"}),
        result("6 bank at scale", f"{what}: peak RSS / bank bytes (memory-mapped)",
               c["peak_rss"] / c["bank_bytes"], 1.5, "lower", {"see": "first bank row"}),
        result("6 bank at scale", f"{what}: peak anonymous RSS / bank bytes (sampled)",
               c["peak_rss_anon_sampled"] / c["bank_bytes"], 1.5, "lower", {"see": "first bank row"}),
    ]


def run(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_bank(log, args.workdir, args.bank_n, args.bank_dim, args.bank_queries, args.shard_sizes,
                       args.cold, threads, args.pred_noise)
