"""``lvmbench gate``, ``lvmbench benchmark`` and ``lvmbench latency``: the deploy decision and what it holds."""

from __future__ import annotations

import argparse

from lvmbench.cli.common import EPILOG, add_allow_import, log

GATE_DESCRIPTION = (
    "Hold a run against a gate policy: exit 0 when every criterion passes, 1 when one fails. Criteria: thresholds "
    "on metrics (rates where higher is better - hit@K, ndcg@K, mrr, ca - against a minimum in [0, 1], 55 % is "
    "--min 0.55; par against a maximum), each on the value or its interval bound; the benchmark the run must be "
    "measured on (--benchmark: dataset, split, queries, pool, context, exclusion and K pinned, any difference "
    "named); the deployed run it must not be worse than (--against: a paired non-inferiority test on the same "
    "queries); the latency budget (--max-p95-ms, the recorded batch-1 model p95 per query). --policy GATE.toml "
    "holds any number of them (a recipe file's [gate] table works too); the flags are shorthand for one policy. "
    "Nothing is taken on the file's word: every metric is recomputed from predictions.npz beside results.json, "
    "the consistency record is re-checked, and only a finished, consistent run is gated (exit 3 otherwise). "
    "Without --benchmark the verdict says what the run was measured on and that it is not pinned to a benchmark."
)


def _policy(args: argparse.Namespace):  # -> Policy
    from lvmbench.report.policy import Against, Policy, Threshold, load

    p = load(args.policy) if args.policy else Policy()
    others = args.benchmark or args.against or args.max_p95_ms is not None or args.policy or args.lift_every_seed
    if args.min is not None or args.max is not None or not others:
        kind = "max" if args.max is not None else "min"
        bound = args.max if args.max is not None else (0.55 if args.min is None else args.min)
        p.thresholds.insert(0, Threshold(args.metric, bound, kind, args.on))
    if args.benchmark:
        p.benchmark = args.benchmark
    if args.against:
        p.against = Against(args.against, args.metric, args.margin)
    if args.max_p95_ms is not None:
        p.max_p95_ms = args.max_p95_ms
    p.require_predictions = p.require_predictions or args.require_predictions
    p.lift_every_seed = p.lift_every_seed or args.lift_every_seed
    return p


def cmd_gate(args: argparse.Namespace) -> int:
    from lvmbench.report.verdict import evaluate, render

    verdict = evaluate(_policy(args), args.results)
    print(render(verdict, args.format))
    return 0 if verdict.passed else 1


def add_gate(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("gate", help="exit 0 if a run passes the deploy gate's policy, 1 if not (numbers re-checked)",
                       description=GATE_DESCRIPTION, epilog=EPILOG)
    g.add_argument("results", metavar="RUN", help="run directory (or its results.json); a suite directory with "
                   "--against; a directory of several runs (suite, folds, seeds) with --lift-every-seed")
    g.add_argument("--metric", default="hit@5", type=str.lower,
                   help="the metric of --min/--max and of --against (default hit@5)")
    g.add_argument("--min", type=float, help="threshold: the metric must be at least this fraction (default 0.55 "
                   "when no other criterion is given)")
    g.add_argument("--max", type=float, help="threshold: the metric (par) must be at most this")
    g.add_argument("--on", choices=["value", "ci_low", "ci_high"], default="value",
                   help="hold the point estimate, or the conservative end of its 95%% interval: ci_low for a "
                   "minimum, ci_high for a maximum (default value)")
    g.add_argument("--benchmark", metavar="NAME|BENCH.json",
                   help="refuse (exit 1) a run not measured on this benchmark: a shipped name (`lvmbench benchmark "
                   "list`) or a file from `lvmbench benchmark pin`")
    g.add_argument("--against", metavar="DEPLOYED_RUN",
                   help="regression gate: pass when the lower bound of the paired 95%% bootstrap interval of "
                   "(RUN - DEPLOYED_RUN) in --metric is >= -margin; both on identical queries and pool (exit 2 "
                   "otherwise); suite directories are compared task by task (Holm) and on the macro average")
    g.add_argument("--margin", type=float, default=0.01, help="non-inferiority margin of --against, a fraction "
                   "(default 0.01 = 1 point)")
    g.add_argument("--max-p95-ms", type=float, metavar="MS",
                   help="latency budget: the recorded batch-1 model p95 per query must be at most MS (refused, "
                   "exit 2, for a run without a latency record)")
    g.add_argument("--lift-every-seed", action="store_true",
                   help="for a directory of `run --seeds`, `run --folds` or `suite run`: pass only when, on every "
                   "task and every training seed, the paired 95%% bootstrap interval of the Hit@5 lift over that "
                   "seed's best baseline lies above 0 (each run re-read; a job that did not finish fails it)")
    g.add_argument("--policy", metavar="GATE.toml", help="a gate policy file (or a recipe file with a [gate] "
                   "table) holding any number of criteria; the flags above add to it")
    g.add_argument("--require-predictions", action="store_true",
                   help="refuse (exit 2) a results.json without predictions.npz beside it, instead of gating "
                   "the unverified number")
    g.add_argument("--format", choices=["text", "json", "junit", "markdown"], default="text",
                   help="text (default), json, junit (XML for CI systems: one testcase per criterion) or markdown "
                   "(a job summary)")
    g.set_defaults(func=cmd_gate)


def cmd_benchmark(args: argparse.Namespace) -> int:
    import json

    from lvmbench.report import benchmark

    if args.action == "list":
        benches = [benchmark.load(str(p)) for p in benchmark.shipped().values()]
        if args.json:
            print(json.dumps(benches, indent=2))
            return 0
        from tabulate import tabulate

        rows = [[b["name"], (b.get("dataset") or {}).get("name"), f"{b['pins']['queries']} {b['pins']['split']}",
                 b["pins"]["pool"], f"{b['pins']['context_len']} / {b['pins']['exclude_len']}",
                 ",".join(map(str, b["pins"]["ks"])), b["pins"]["split_sha256"][:12] + "…",
                 b["pins"]["queries_sha256"][:12] + "…"] for b in benches]
        print(tabulate(rows, headers=["benchmark", "dataset", "queries", "pool", "context / excluded", "K",
                                      "split sha256", "queries sha256"]))
        return 0
    return _pin(args)


def _pin(args: argparse.Namespace) -> int:
    from lvmbench.report import benchmark
    from lvmbench.report.regression import load_scored

    run = load_scored(args.run_dir, "benchmark pin")
    bench = benchmark.pin(run.results, run.target_ids, args.name, args.description or "", str(run.path))
    out = benchmark.write(bench, args.out, args.overwrite)
    p = bench["pins"]
    log(f"wrote {out}: benchmark '{args.name}' = {p['queries']} {p['split']} queries, pool {p['pool']}, dataset "
        f"{p['dataset_sha256'][:12]}…, split {p['split_sha256'][:12]}…")
    return 0


def add_benchmark(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("benchmark", help="list the shipped benchmarks, or pin one from a finished run",
                       epilog=EPILOG, description="A benchmark pins what a number is measured on: the dataset "
                       "(sha256), the split and which split is scored, the exact queries, the pool, the context "
                       "length, the minimum context, the excluded window and the K's. `gate --benchmark` refuses a "
                       "run whose pins differ.")
    bs = b.add_subparsers(dest="action", metavar="ACTION")
    bs.required = True
    ls = bs.add_parser("list", help="the shipped benchmarks and their pins", epilog=EPILOG,
                       description="The benchmarks that ship with lvmbench (lvmbench/pins/): default (python-docs "
                       "with its shipped split) and each task of the standard suite, with their pins.")
    ls.add_argument("--json", action="store_true", help="every pin, as JSON")
    pn = bs.add_parser("pin", help="write a BENCH.json from a finished, consistent run", epilog=EPILOG,
                       description="Pin what RUN_DIR was measured on (dataset, split, queries, pool, context, "
                       "exclusion, K) into BENCH.json, for `lvmbench gate RUN --benchmark BENCH.json`.")
    pn.add_argument("run_dir", metavar="RUN_DIR")
    pn.add_argument("--name", required=True)
    pn.add_argument("--out", required=True, metavar="BENCH.json")
    pn.add_argument("--description", help="one line saying what the benchmark is for")
    pn.add_argument("--overwrite", action="store_true")
    b.set_defaults(func=cmd_benchmark)


def cmd_latency(args: argparse.Namespace) -> int:
    from lvmbench.runs.latency import measure_run

    measure_run(args.run_dir, args.data, args.device, args.calls, args.seconds, args.json, args.model, log=log)
    return 0


def add_latency(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("latency", help="measure a saved run's inference and search latency on this machine",
                       epilog=EPILOG, description="Re-measure the latency a run records, on the machine this runs "
                       "on (deploy hardware is rarely the CI machine): predict() per query at batch 1 and at the "
                       "scoring batch, and the exact search per query against the run's pool, p50/p95/p99 over the "
                       "timed calls after untimed warm-up calls, with device, threads and CPU/GPU name. Reads the "
                       "best checkpoint (or rebuilds a baseline run's baseline) and the run's own dataset.")
    t.add_argument("run_dir", metavar="RUN_DIR")
    t.add_argument("--data", help="the run's dataset if it moved (must have the recorded sha256)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to measure (default: the recipe's)")
    t.add_argument("--calls", type=int, help="timed calls per measurement (default: the recipe's eval.latency_calls)")
    t.add_argument("--seconds", type=float, help="time limit per measurement (default: eval.latency_seconds)")
    t.add_argument("--model", metavar="SPEC", help="confirm the run's outside model import path")
    t.add_argument("--json", action="store_true", help="print the record as JSON")
    add_allow_import(t)
    t.set_defaults(func=cmd_latency)
