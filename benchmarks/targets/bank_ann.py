"""Target 6, ANN over the bank (reported only): ``ann_report('ivfpq')`` over the dataset part + the
bank's first ``--ann-n`` rows, recall@10 and Hit@5 against exact scoring, in a fresh process
(``_bank-ann``), and the IVF-PQ build projected to 10M vectors.  Not in 'all'."""

from __future__ import annotations

import argparse
import math
import resource
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import thread_info
from benchmarks.targets.common import (
    BANK_CHAIN_LEN, GB, Log, Result, bank_dataset, bank_file, cfg_child, child_log, ensure_bank, phase, result,
    run_child,
)
from lvmbench.config import Recipe
from lvmbench.evaluate.ann import TRAIN_PER_CENTROID, ann_report, ivfpq_spec
from lvmbench.evaluate.index import Bank, build_pool
from lvmbench.evaluate.queries import make_queries
from lvmbench.evaluate.summary import rank_and_summarise

CHILD = "bank-ann"


def _bank_ann_child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: exact scoring and ``ann_report('ivfpq')`` over the dataset part + the
    bank's first ``ann_n`` rows (a slice of the memory-mapped file; not hashed)."""
    path, n, dim, nq, ann_n = Path(cfg["path"]), cfg["n"], cfg["dim"], cfg["queries"], cfg["ann_n"]
    unit, offsets, chains, samples, pred = bank_dataset(n, dim, nq, cfg.get("noise", 2.0))
    raw = np.load(path, mmap_mode="r")
    bank = Bank(path=path, vectors=raw[:ann_n], sha256="(slice; not hashed)", mapped=True)
    pool = build_pool(unit, offsets, chains, "test", bank, 0)
    queries = make_queries(samples, pool, BANK_CHAIN_LEN)
    e = Recipe().eval
    child_log(f"[bank-ann child] exact scoring of {nq:,} queries against {pool.size:,}")
    ph_exact, scored = phase(lambda: rank_and_summarise("m", pred, pool, queries, unit, e.ks, e.search_depth,
                                                       e.bootstrap, 0))
    ph_ann, rep = phase(lambda: ann_report("ivfpq", pool, queries, pred, scored.faiss, e.ks, 0, child_log))
    child_log(f"[bank-ann child] {rep['index']}: build {rep['build_s']:.1f} s, search {rep['search_s']:.1f} s, "
              f"recall@10 {rep['recall@10']:.3f}, Hit@5 {rep['hit@5']:.3f} (exact {rep['exact_hit@5']:.3f})")
    return {"n_file": n, "ann_n": ann_n, "pred_noise": cfg.get("noise", 2.0), "pool": pool.size, "dim": dim,
            "queries": nq, "threads": thread_info(),
            "exact": ph_exact, "ann_phase": ph_ann, "ann": rep,
            "exact_hit@5": scored.metrics["hit@5"],
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def child_main(args: list[str]) -> str:
    """``_bank-ann JSON``: the child's one JSON line."""
    return cfg_child(args, _bank_ann_child)


def _ivfpq_build_flops(n: int, dim: int) -> tuple[float, int, str]:
    """Coarse k-means (FAISS IndexIVF: 10 iterations over the training sample) + assigning every
    vector to a list, in matmul FLOPs; PQ training and encoding are left out (they do not grow with n
    once the sample exceeds PQ's 65,536-point cap)."""
    nlist, m, nbits = ivfpq_spec(n, dim)
    train_n = min(n, max(nlist, 2**nbits) * TRAIN_PER_CENTROID * 4)
    return 2.0 * dim * nlist * (10 * train_n + n), train_n, f"IVF{nlist},PQ{m}x{nbits}"


def project_ivfpq(c: dict[str, Any], n_to: int) -> dict[str, Any]:
    """The measured IVF-PQ build scaled to ``n_to`` vectors by its k-means + assignment FLOPs (derived)."""
    dim, a = c["dim"], c["ann"]
    f_meas, _, _ = _ivfpq_build_flops(c["pool"], dim)
    f_to, train_n, spec = _ivfpq_build_flops(n_to, dim)
    nlist, m, nbits = ivfpq_spec(n_to, dim)
    return {"n": n_to, "index": spec, "train_points": train_n, "train_sample_bytes": train_n * dim * 4,
            "code_and_id_bytes": n_to * (math.ceil(m * nbits / 8) + 8), "flat_bytes": n_to * dim * 4,
            "build_s": a["build_s"] * f_to / f_meas, "build_flops": f_to, "measured_build_flops": f_meas}


def target_bank_ann(log: Log, workdir: Path, n: int, dim: int, n_queries: int, ann_n: int,
                    threads: int, noise: float = 2.0) -> list[Result]:
    path = bank_file(workdir, n, dim)
    ensure_bank(path, n, dim, log)
    c = run_child(CHILD, {"path": str(path), "n": n, "dim": dim, "queries": n_queries,
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
        f"{a['code_bytes'] / GB:.3f} GB vs flat {a['flat_bytes'] / GB:.2f} GB; "
        f"peak RSS {c['ann_phase']['peak_rss'] / GB:.2f} GB")
    return [result("6 bank ANN (reported only)", f"IVF-PQ over {c['pool']:,} x {dim}: recall@10 vs exact",
                   a["recall@10"], 0.0, "higher", c)]


def run(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_bank_ann(log, args.workdir, args.bank_n, args.bank_dim, args.bank_queries, args.ann_n,
                           threads, args.pred_noise)
