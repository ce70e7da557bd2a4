"""The ``lvmbench`` command.

Exit codes: 0 success (and ``gate`` passed); 1 ``gate`` failed; 2 bad input
(a missing or malformed file, an unknown model or setting); 3 an integrity
failure (leakage between splits, or training-time Hit@K disagreeing with index
retrieval); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from lvmbench import __version__
from lvmbench.errors import LvmbenchError, UsageError, error_line

EPILOG = """exit codes: 0 ok / gate passed, 1 gate failed, 2 bad input, 3 integrity failure
(leakage or train/index Hit@K disagreement), 130 interrupted."""


def _log(msg: str) -> None:
    print(msg, flush=True)


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", metavar="TOML", help="a recipe TOML file overriding the consultant defaults")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one recipe value, e.g. --set train.lr=3e-4 --set data.context_len=20 (repeatable)",
    )
    p.add_argument("--seed", type=int, help="shorthand for --set seed=N")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="shorthand for --set train.device=...")


def _recipe(args: argparse.Namespace):
    from lvmbench.config import load_recipe

    overrides = list(args.overrides)
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    if getattr(args, "device", None):
        overrides.append(f"train.device={args.device}")
    if getattr(args, "model", None):
        overrides.append(f"model.name={args.model}")
    return load_recipe(args.recipe, overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from lvmbench.pipeline import resume_run, run

    if args.resume is not None:
        clash = [flag for flag, value in (
            ("--model", args.model), ("--out", args.out), ("--overwrite", args.overwrite), ("--recipe", args.recipe),
            ("--set", args.overrides), ("--seed", args.seed), ("--device", args.device),
        ) if value is not None and value is not False and value != []]
        if clash:
            raise UsageError(f"--resume continues {args.resume} with its own recipe.json; drop {', '.join(clash)}")
        resume_run(args.resume, args.data, log=_log)
        return 0
    from lvmbench.pipeline import is_multi, parse_models, run_many, series_exit_code

    if is_multi(args.model):
        models = parse_models(args.model)
        args.model = None
        recipe = _recipe(args)
        _, outcomes = run_many(recipe, models, args.data, args.out, overwrite=args.overwrite, log=_log)
        return series_exit_code(outcomes)
    recipe = _recipe(args)
    run(recipe, args.data, args.out, overwrite=args.overwrite, log=_log)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from lvmbench.sweep import check_overrides, parse_contexts, sweep
    from lvmbench.train.distributed import refuse_series

    refuse_series("sweep")
    contexts = parse_contexts(args.context)
    check_overrides(args.overrides)
    recipe = _recipe(args)
    _, _, code = sweep(recipe, contexts, args.data, args.out, overwrite=args.overwrite, log=_log)
    return code


def cmd_eval(args: argparse.Namespace) -> int:
    from lvmbench.pipeline import evaluate_checkpoint

    overrides = list(args.overrides)
    if args.pool:
        overrides.append(f"eval.pool={args.pool}")
    if args.include_context:
        overrides.append("eval.exclude_context=false")
    if args.device:
        overrides.append(f"train.device={args.device}")
    run_dir, _ = evaluate_checkpoint(args.checkpoint, args.data, overrides, args.out, args.split, args.overwrite, log=_log,
                                     bank=args.bank, shard_size=args.shard_size, ann=args.ann)
    if args.trec:
        from lvmbench.trec import export_run

        export_run(run_dir, args.trec, args.trec_depth, data=args.data, log=_log)
    return 0


def cmd_trec(args: argparse.Namespace) -> int:
    from lvmbench.trec import export_run

    export_run(args.run_dir, args.out, args.depth, data=args.data, log=_log)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from lvmbench.report import gate_line, gate_verdict, load_results

    results = load_results(args.results)
    verdict = gate_verdict(results, args.metric, args.min, args.on, where=str(args.results))
    print(gate_line(verdict))
    return 0 if verdict["passed"] else 1


def cmd_models(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from lvmbench.config import ModelConfig
    from lvmbench.models import registry

    rows = []
    for name, entry in registry.REGISTRY.items():
        if entry.kind == "model":
            params = f"{registry.n_params(registry.build(name, args.dim, ModelConfig())):,}"
        else:
            params = "0"
        rows.append([name, entry.kind, params, entry.description])
    print(tabulate(rows, headers=["name", "kind", f"params @ D={args.dim}", "description"]))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lvmbench.compare import compare

    print(compare(args.runs, args.metric, args.format, args.force, warn=lambda m: print(m, file=sys.stderr),
                  plot=args.plot))
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from lvmbench.data.synth import write_synth

    store = write_synth(args.out, n_chains=args.chains, dim=args.dim, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {store.n_chains} chains, {store.n_vectors} vectors of dim {store.dim} to {store.path}")
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from lvmbench.data.corpus import run_build

    return run_build(args, log=_log)


def cmd_data_info(args: argparse.Namespace) -> int:
    import json

    from lvmbench.data.prepare import resolve_data
    from lvmbench.info import dataset_info, render_info

    store = resolve_data(args.dataset, log=_log)
    info = dataset_info(store, _recipe(args))
    print(json.dumps(info, indent=2) if args.json else render_info(info))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lvmbench",
        description="Train latent vector models through the consultant recipe and score them end to end "
        "against a FAISS index, with baselines, intervals and integrity checks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"lvmbench {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser(
        "run", help="train a model through the recipe, score it and the baselines on the test split",
        description="Train MODEL through the consultant recipe (early stopping on val Hit@5), then score the "
        "best checkpoint and every baseline on the held-out test split against a FAISS IndexFlatIP pool. "
        "Writes best_val_hit5.pt, last.pt, training_history.json, results.json, predictions.npz, report.md, "
        "split.json, data_report.json, recipe.json and curves.png (with matplotlib) into the run directory. Every file is written to a temporary "
        "file and renamed; Ctrl-C keeps last.pt (the last completed epoch), prints the resume command and exits 130. "
        "Launched as `torchrun --standalone --nproc-per-node N -m lvmbench run --model M ...` it trains one model "
        "with DistributedDataParallel on N processes (gloo on CPU, nccl on CUDA) with the recipe's effective batch "
        "(train.accum_steps, the global micro-batches per step, must be a multiple of N); rank 0 writes and scores.",
        epilog=EPILOG,
    )
    r.add_argument("--model", help="model or baseline name (see `lvmbench models`); default memory_gru. "
                   "Several, comma-separated (a,b,c), or 'all' (every trainable model): each runs into OUT/<model>/ "
                   "(default runs/<timestamp>-multi/<model>/) on the same data, queries and pool, a failed model is "
                   "reported and the rest still run, and the compare leaderboard of those that finished ends the "
                   "output (OUT/leaderboard.md, OUT/multi.json)")
    r.add_argument("--data", help="chain-store directory, or 'synth'; default: the shipped default dataset "
                   "fixtures/python-docs (MiniLM paragraphs of the Python 3.11 docs); with --resume, the run's own dataset")
    r.add_argument("--out", help="run directory (default runs/<model>-<timestamp>; with several models the parent "
                   "of their run directories)")
    r.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty run directory")
    r.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run from RUN_DIR/last.pt with RUN_DIR/recipe.json (model, optimiser, "
                   "scheduler, early-stopping and RNG state restored; the dataset must have the recorded sha256); "
                   "takes no recipe flags")
    _add_recipe_args(r)
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("eval", help="score a saved checkpoint on a split", epilog=EPILOG,
                       description="Score CHECKPOINT (a .pt file or a run directory) and every baseline against "
                       "the FAISS pool, using the recipe stored in the checkpoint plus any --set overrides.")
    e.add_argument("checkpoint", help="a checkpoint file or a run directory holding best_val_hit5.pt")
    e.add_argument("--data", help="chain-store directory or 'synth' (default: the default dataset)")
    e.add_argument("--split", choices=["test", "val"], default="test")
    e.add_argument("--pool", choices=["split", "full"], help="candidate pool (default: the recipe's, 'split')")
    e.add_argument("--include-context", action="store_true", help="leave the query's context vectors in the pool")
    e.add_argument("--bank", metavar="PATH",
                   help="add an external bank of candidate vectors to the pool: an .npy file of [N, D] float16/float32 "
                   "vectors (or a chain-store directory), memory-mapped and checked block by block; a float32 bank "
                   "of unit vectors is searched in place, any other is normalised into memory block by block")
    e.add_argument("--shard-size", type=int, default=0, metavar="N",
                   help="search the pool in shards of at most N vectors (rounded up to FAISS's 1,024-row blocks), "
                   "merging their top-k lists: the same scores and ranks as one flat index, bit for bit; "
                   "default 0 = the dataset part and the bank one shard each")
    e.add_argument("--ann", choices=["ivfpq"],
                   help="also build a compressed FAISS IVF-PQ index over the pool and report its recall@10 against "
                   "exact search and its Hit@K under results.json 'ann' (the headline stays exact)")
    e.add_argument("--out", help="output directory (default <run dir>/eval-<split>)")
    e.add_argument("--overwrite", action="store_true")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    e.add_argument("--device", choices=["auto", "cpu", "cuda"])
    e.add_argument("--trec", metavar="DIR", help="also write TREC files (run.trec, qrels.trec, trec.json) to DIR")
    e.add_argument("--trec-depth", type=int, default=100, metavar="N",
                   help="candidates per query in run.trec (default 100; 0 = every candidate)")
    e.set_defaults(func=cmd_eval)

    sw = sub.add_parser(
        "sweep", help="retrain a model at several context lengths and score every point on the same queries and pool",
        description="Retrain MODEL with data.context_len = each --context value (OUT/ctx-<C>/ run directories) "
        "and score every point against the same test queries, the same pool and the same candidates per query "
        "(each query's max(C) preceding vectors excluded at every point); checks that query ids and pool "
        "sha256 are identical across points, then writes OUT/sweep.json and OUT/sweep.md: context -> Hit@K "
        "with Wilson intervals, MRR, and copy_last as the reference.",
        epilog=EPILOG,
    )
    sw.add_argument("--model", required=True, help="model name (see `lvmbench models`)")
    sw.add_argument("--context", required=True, metavar="C1,C2,...", help="context lengths, e.g. 5,20,100")
    sw.add_argument("--data", help="chain-store directory, or 'synth' (default: the default dataset)")
    sw.add_argument("--out", help="sweep directory (default runs/<timestamp>-<model>-sweep)")
    sw.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty sweep directory")
    _add_recipe_args(sw)
    sw.set_defaults(func=cmd_sweep)

    t = sub.add_parser(
        "trec", help="export a scored run as TREC run and qrels files (trec_eval, pytrec_eval, ranx, ir_measures)",
        description="Write RUN_DIR's top-N retrieved candidates per query ('qid Q0 docid rank score tag', the "
        "query's excluded context removed) to OUT/run.trec and its targets ('qid 0 docid 1') to OUT/qrels.trec. "
        "qid q<i> = the i-th query of predictions.npz; docid = the candidate's row in vectors.npy. trec_eval's "
        "success_K equals Hit@K; its recip_rank equals lvmbench's (untruncated) MRR only when every target is "
        "within N (--depth 0 writes every candidate).",
    )
    t.add_argument("run_dir", metavar="RUN_DIR", help="a run or eval directory holding results.json and predictions.npz")
    t.add_argument("--out", required=True, metavar="DIR", help="output directory")
    t.add_argument("--depth", type=int, default=100, metavar="N",
                   help="candidates per query (default 100; 0 = every candidate)")
    t.add_argument("--data", help="the run's dataset if it moved (must have the recorded sha256)")
    t.set_defaults(func=cmd_trec)

    g = sub.add_parser("gate", help="exit 0 if a results file passes the deploy gate, 1 if not, 2 on bad input",
                       epilog=EPILOG)
    g.add_argument("results", help="results.json (or the run directory holding it)")
    g.add_argument("--metric", default="hit@5", help="metric key in results.json 'metrics' (default hit@5)")
    g.add_argument("--min", type=float, default=0.55, help="threshold as a fraction (default 0.55)")
    g.add_argument("--on", choices=["value", "ci_low"], default="value",
                   help="gate the point estimate or the Wilson 95%% lower bound (default value)")
    g.set_defaults(func=cmd_gate)

    m = sub.add_parser("models", help="list models and baselines with parameter counts")
    m.add_argument("--dim", type=int, default=768, help="embedding dimension for the parameter counts (default 768)")
    m.set_defaults(func=cmd_models)

    c = sub.add_parser(
        "compare", help="leaderboard of several runs and their baselines on the same queries, with paired tests",
        description="Rank the models of RUN_DIRs and the first run's baselines by their per-query ranks "
        "(predictions.npz): Hit@1/5/10 with Wilson intervals, MRR with a bootstrap interval, lift over the best "
        "baseline, exact McNemar on Hit@5 vs that baseline (Holm-corrected across models) and per-query "
        "win/tie/loss.  Refuses runs whose dataset, split or pool sha256 differ (unless --force) and runs "
        "scored on different queries.",
        epilog=EPILOG,
    )
    c.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories holding results.json and predictions.npz")
    c.add_argument("--metric", default="hit@5", type=str.lower, choices=["hit@1", "hit@5", "hit@10", "mrr"],
                   help="sort rows and pick the best baseline by this metric (default hit@5)")
    c.add_argument("--format", default="table", choices=["table", "markdown", "csv", "json"])
    c.add_argument("--force", action="store_true", help="compare runs whose dataset/split/pool hashes differ")
    c.add_argument("--plot", metavar="PATH", help="also draw the leaderboard (Hit@5 with Wilson interval bars, "
                   "baselines grey) to this PNG; needs matplotlib (pip install -e \".[plot]\"), skipped with a note without it")
    c.set_defaults(func=cmd_compare)

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dsub.required = True
    s = dsub.add_parser("synth", help="write the synthetic corpus (hidden rotating state + noise) as a chain store")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--chains", type=int, default=200)
    s.add_argument("--dim", type=int, default=384)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_data_synth)
    b = dsub.add_parser(
        "build", help="turn a folder of documents (or a JSONL file) into a chain store of sentence embeddings",
        description="One document = one chain, paragraphs (or sentences) in reading order. Strips markup, skips "
        "code blocks, tables and navigation, drops short units and boilerplate repeated across documents, "
        "encodes with MiniLM (the 'encode' extra: pip install -e \".[encode]\"), caches encodings so an "
        "interrupted build resumes, and records every setting and hash in the manifest.",
    )
    from lvmbench.data.corpus import add_build_arguments

    add_build_arguments(b)
    b.set_defaults(func=cmd_data_build)
    i = dsub.add_parser(
        "info", help="chains, lengths, adjacent cosines, duplicates and baseline difficulty of a dataset",
        description="Describe a chain store: chain-length and adjacent-cosine distributions, duplicate rate, "
        "what the quality gates remove, the split, and the dataset's difficulty (Hit@1/5/10 and MRR of "
        "copy_last, mean_context and random on the test pool, with pool size and chance rate).",
    )
    i.add_argument("dataset", nargs="?", help="chain-store directory or 'synth' (default: the default dataset)")
    i.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_recipe_args(i)
    i.set_defaults(func=cmd_data_info)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LvmbenchError as exc:
        if not exc.reported:
            print(error_line(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lvmbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lvmbench ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
