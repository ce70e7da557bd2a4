"""``lvmbench run`` and ``lvmbench sweep``: the commands that train."""

from __future__ import annotations

import argparse

from lvmbench.cli.common import (
    EPILOG, add_jobs_args, add_recipe_args, jobs_flags_given, log, recipe_from_args, spec_from_args,
)
from lvmbench.errors import UsageError

RUN_DESCRIPTION = (
    "Train MODEL through the consultant recipe (early stopping on val Hit@5), then score the "
    "best checkpoint and every baseline on the held-out test split against a FAISS IndexFlatIP pool. "
    "Writes best_val_<metric>.pt (the best epoch by train.stop_metric: best_val_hit5.pt, or best_val_mrr.pt "
    "for the contrastive recipe), last.pt, training_history.json, results.json, predictions.npz, report.md, "
    "report.html (the same run as one self-contained page: `lvmbench report`), "
    "split.json, data_report.json, recipe.json and curves.png (with matplotlib) into the run directory. Every file "
    "is written to a temporary file and renamed; Ctrl-C keeps last.pt (the last completed epoch), prints the resume "
    "command and exits 130. Launched as `torchrun --standalone --nproc-per-node N -m lvmbench run --model M ...` it "
    "trains one model with DistributedDataParallel on N processes (gloo on CPU, nccl on CUDA) with the recipe's "
    "effective batch (train.accum_steps, the global micro-batches per step, must be a multiple of N); rank 0 writes "
    "and scores. The last line printed is the deploy gate's verdict on the recipe's gate (hit@5 >= 0.55 by "
    "default), but a run that finishes exits 0 whatever the verdict: it produced a measurement, and gating is "
    "a separate decision (`lvmbench gate RUN_DIR`, exit 1 on FAIL), so a series or a CI step can gate each run "
    "with its own threshold."
)


def _refuse_with_resume(args: argparse.Namespace, flags: tuple[str, ...]) -> None:
    """--resume continues with what the directory recorded: recipe flags would contradict it."""
    clash = [f"--{f.replace('_', '-')}" if f != "overrides" else "--set" for f in flags
             if getattr(args, f, None) not in (None, False, [])]
    if clash:
        raise UsageError(f"--resume continues {args.resume} with its own recorded recipe; drop {', '.join(clash)}")


def resume(args: argparse.Namespace) -> int:
    """``run --resume`` / ``sweep --resume``: a single run, or a whole series (series.json)."""
    from pathlib import Path

    from lvmbench.runs.series import PLAN

    plan = Path(args.resume) / PLAN
    models = [m.strip() for m in args.model.split(",") if m.strip()] if args.model else None
    if plan.is_file():
        from lvmbench.io import read_json

        kind = read_json(plan, UsageError).get("kind")
        if kind == "sweep":
            from lvmbench.runs.sweep import resume_sweep

            return resume_sweep(args.resume, args.data, log=log, models=models)[2]
        if kind == "folds":
            from lvmbench.runs.folds import resume_cv

            return resume_cv(args.resume, args.data, log=log, models=models)[2]
        if kind == "suite":
            from lvmbench.runs.suite import resume_suite

            return resume_suite(args.resume, log=log, models=models)[2]
        from lvmbench.runs.multi import resume_many
        from lvmbench.runs.series import series_exit_code

        return series_exit_code(resume_many(args.resume, args.data, log=log, models=models)[1])
    from lvmbench.runs.resume import resume_run

    resume_run(args.resume, args.data, log=log, model=args.model)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        _refuse_with_resume(args, ("out", "overwrite", "recipe", "overrides", "seed", "device", "logger", "folds",
                                   "seeds"))
        return resume(args)
    from lvmbench.runs.multi import run_many
    from lvmbench.runs.series import is_multi, parse_models, parse_seeds, series_exit_code
    from lvmbench.runs.single import run

    seeds, spec = parse_seeds(args.seeds), spec_from_args(args)
    if args.folds:
        from lvmbench.runs.folds import run_cv

        if is_multi(args.model):
            raise UsageError("--folds takes one model (cross-validate each model in its own run)")
        return run_cv(recipe_from_args(args), args.folds, args.data, args.out, args.overwrite, log=log,
                      seeds=seeds, spec=spec)[2]
    if is_multi(args.model) or seeds is not None:
        models = parse_models(args.model) if args.model else ["memory_gru"]
        args.model = None
        _, outcomes = run_many(recipe_from_args(args), models, args.data, args.out, overwrite=args.overwrite, log=log,
                               seeds=seeds, spec=spec)
        return series_exit_code(outcomes)
    if jobs_flags_given(args):
        raise UsageError(f"{', '.join(jobs_flags_given(args))}: a single run is one job; these apply to several "
                         "(--model a,b, --seeds, --folds)")
    run(recipe_from_args(args), args.data, args.out, overwrite=args.overwrite, log=log)
    return 0


def add_run(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "run", help="train a model through the recipe, score it and the baselines on the test split",
        description=RUN_DESCRIPTION, epilog=EPILOG,
    )
    r.add_argument("--model", help="model or baseline: a built-in name (see `lvmbench models`), an installed "
                   "package's 'lvmbench.models' entry point, or an import path package.module:NAME; default "
                   "memory_gru. With --resume it only confirms the import path(s) the run recorded. "
                   "Several, comma-separated (a,b,c), or 'all' (every trainable model): each runs into "
                   "OUT/<model>-s<seed>-<hash>/ (default runs/<timestamp>-multi/; the hash is the job key, so a "
                   "re-run reuses finished runs) on the same data, queries and pool, a failed model is "
                   "reported and the rest still run, and the compare leaderboard of those that finished ends the "
                   "output (OUT/leaderboard.md, OUT/multi.json, OUT/report.html)")
    r.add_argument("--data", help="chain-store directory, or 'synth'; default: the shipped default dataset "
                   "fixtures/python-docs (MiniLM paragraphs of the Python 3.11 docs); "
                   "with --resume, the run's own dataset")
    r.add_argument("--out", help="run directory (default runs/<model>-<timestamp>; with several models the parent "
                   "of their run directories)")
    r.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty run directory")
    r.add_argument("--folds", type=int, metavar="K",
                   help="document-level K-fold cross-validation (K >= 3): fold f tests one K-th of the documents "
                   "(OUT/<model>-fold-<f>-s<seed>-<hash>/, an ordinary run scored against that fold's own test "
                   "pool), so every document "
                   "is tested once; the test queries of all folds are pooled for the intervals and paired tests "
                   "(OUT/cv.json, OUT/cv.md, OUT/report.html, with each fold's Hit@5)")
    r.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run (the command an interrupt prints): from RUN_DIR/last.pt with "
                   "RUN_DIR/recipe.json (model, optimiser, scheduler, early-stopping and RNG state restored), from "
                   "epoch 1 if it stopped before its first checkpoint; a directory of several models (series.json) "
                   "keeps the finished ones and continues the rest. The dataset must have the recorded sha256; "
                   "takes no recipe flags")
    add_recipe_args(r)
    add_jobs_args(r)
    r.set_defaults(func=cmd_run)


def cmd_sweep(args: argparse.Namespace) -> int:
    from lvmbench.runs.sweep import check_overrides, parse_contexts, sweep
    from lvmbench.train.distributed import refuse_series

    refuse_series("sweep")
    if args.resume is not None:
        _refuse_with_resume(args, ("context", "out", "overwrite", "recipe", "overrides", "seed", "device", "logger"))
        return resume(args)
    missing = [f for f, v in (("--model", args.model), ("--context", args.context)) if not v]
    if missing:
        raise UsageError(f"sweep needs {' and '.join(missing)} (or --resume SWEEP_DIR)")
    contexts = parse_contexts(args.context)
    check_overrides(args.overrides)
    _, _, code = sweep(recipe_from_args(args), contexts, args.data, args.out, overwrite=args.overwrite, log=log,
                       spec=spec_from_args(args))
    return code


def add_sweep(sub: argparse._SubParsersAction) -> None:
    sw = sub.add_parser(
        "sweep", help="retrain a model at several context lengths and score every point on the same queries and pool",
        description="Retrain MODEL with data.context_len = each --context value (OUT/ctx-<C>/ run directories) "
        "and score every point against the same test queries, the same pool and the same candidates per query "
        "(each query's max(C) preceding vectors excluded at every point); checks that query ids and pool "
        "sha256 are identical across points, then writes OUT/sweep.json, OUT/sweep.md and OUT/report.html: "
        "context -> Hit@K with Wilson intervals, MRR, and copy_last (which reads only the last vector) as a row "
        "that is the same at every context length.",
        epilog=EPILOG,
    )
    sw.add_argument("--model", help="model name (see `lvmbench models`); required unless --resume")
    sw.add_argument("--context", metavar="C1,C2,...", help="context lengths, e.g. 5,20,100; required unless --resume")
    sw.add_argument("--data", help="chain-store directory, or 'synth' (default: the default dataset)")
    sw.add_argument("--out", help="sweep directory (default runs/<timestamp>-<model>-sweep)")
    sw.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty sweep directory")
    sw.add_argument("--resume", metavar="SWEEP_DIR",
                    help="continue an interrupted sweep (the command an interrupt prints): finished points are "
                    "kept, an interrupted point resumes from its last.pt, the rest start; then sweep.json is written")
    add_recipe_args(sw)
    add_jobs_args(sw, seeds=False)
    sw.set_defaults(func=cmd_sweep)
