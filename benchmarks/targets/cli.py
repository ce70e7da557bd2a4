"""The speed and memory targets (docs/performance.md, "Targets"), each measured as a ratio in one process.

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
  useful     useful-FLOP rate of memory_gru and transformer training steps (recipe defaults) >= 40 % of bf16 peak
  score      lvmbench score / numpy + IndexFlatIP pipeline on git-manual: <= 1.5 baseline cache warm, <= 3 cold
  search     lvmbench's exact search / IndexFlatIP.search at equal k (10, 110, 1100), pool 3,936: <= 1.2
  rerank-1m  torch consistency re-rank / FAISS search, 4k queries x 1M x 384: <= 0.5 (not in 'all'; ~3 GB)
  bank       lvmbench's scoring path (load_bank, build_pool, rank_and_summarise, torch_ranks) for
             --bank-queries queries against a --bank-n x --bank-dim float32 unit bank written to
             --workdir (reused when present), once per --shard-sizes value in a fresh process:
             time and RSS per phase, throughput, ranks identical across shard sizes, a 10x projection
  bank-ann   ann_report('ivfpq') over the bank's first --ann-n rows: recall@10 and Hit@5 vs exact
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

from benchmarks._common import available_cores, environment, load_average, set_threads
from benchmarks.targets import bank, bank_ann, flat, memory, memory_1m, precision, scoring, speed, train
from benchmarks.targets.common import BANK_SHARD_SIZES, Log, Result

RunTarget = Callable[[argparse.Namespace, int, Log], list[Result]]


class Target(NamedTuple):
    run: RunTarget  # (parsed options, threads, log) -> result rows
    in_all: bool  # False: large, run only when named


TARGETS: dict[str, Target] = {  # in --help's order; adding a target: its module and one line here
    "scoring": Target(scoring.run, True),
    "flat": Target(flat.run, True),
    "train": Target(train.run, True),
    "memory": Target(memory.run, True),
    "precision": Target(precision.run, True),
    "useful": Target(speed.run_useful, True),
    "score": Target(speed.run_score, True),
    "search": Target(speed.run_small_search, True),
    "rerank-1m": Target(speed.run_rerank_1m, False),
    "memory-1m": Target(memory_1m.run, False),
    "bank": Target(bank.run, False),
    "bank-ann": Target(bank_ann.run, False),
}
ALL = [name for name, t in TARGETS.items() if t.in_all]
EXTRA = [name for name, t in TARGETS.items() if not t.in_all]  # large: never part of 'all'

CHILDREN: dict[str, Callable[[list[str]], str]] = {  # "_<kind> ARGS": a fresh process measuring memory
    f"_{m.CHILD}": m.child_main for m in (memory, memory_1m, bank, bank_ann)
}


def build_parser() -> argparse.ArgumentParser:
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
                   help="drop the bank file's pages from the page cache before the run "
                        "(load_bank then reads from disk)")
    g.add_argument("--pred-noise", type=float, default=2.0,
                   help="prediction = target + noise * N(0, I/D), normalised: cosine ~1/sqrt(1+noise^2) "
                        "(default 2: ~0.45; 8: ~0.12, ranks spread past the search depth)")
    g.add_argument("--ann-n", type=int, default=200_000,
                   help="bank-ann: bank rows the IVF-PQ index covers (default 200,000)")
    return p


def log_table(results: list[Result], log: Log) -> None:
    """Every result row, value against limit, in the order measured."""
    log("")
    log(f"{'target':32s} {'what':80s} {'value':>8s} {'limit':>7s}  met")
    for r in results:
        op = "<=" if r["better"] == "lower" else ">="
        log(f"{r['target']:32s} {r['what'][:80]:80s} {r['value']:8.3f} {op}{r['limit']:5.2f}  "
            f"{'yes' if r['met'] else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CHILDREN:  # a child re-launched by a target: its result is stdout's last line
        print(CHILDREN[argv[0]](argv[1:]))
        return 0
    args = build_parser().parse_args(argv)
    chosen = [t for t in (args.targets or ["all"])]
    if "all" in chosen:
        chosen = ALL + [t for t in chosen if t in EXTRA]
    threads = args.threads or available_cores()
    set_threads(threads)

    def log(msg: str) -> None:
        print(msg, flush=True)

    env = environment()
    log(f"targets {', '.join(chosen)}; threads {threads}; {env['cpu']}; torch {env['torch']}, faiss {env['faiss']}")
    results: list[Result] = []
    t0 = time.perf_counter()
    for name in chosen:
        set_threads(threads)
        results += TARGETS[name].run(args, threads, log)
    log_table(results, log)
    log(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        env["loadavg_end"] = load_average()
        out: dict[str, Any] = {"env": env, "threads": threads, "argv": argv, "results": results}
        args.json.write_text(json.dumps(out, indent=2, default=float))
        log(f"wrote {args.json}")
    return 0
