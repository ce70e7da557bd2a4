"""``lvmbench suite list`` and ``lvmbench suite run``: the standard suite of real corpora."""

from __future__ import annotations

import argparse
import json

from lvmbench.cli.common import EPILOG, add_jobs_args, add_recipe_args, log, recipe_from_args, spec_from_args

RUN_DESCRIPTION = (
    "Train and score MODEL on every task of the standard suite (or --tasks a,b): each task's split and gates are "
    "the ones its manifest fixes, each task gets an ordinary run directory OUT/<task>/<model>-s<seed>-<hash>/ "
    "(with --folds K, one per fold: OUT/<task>/<model>-fold-<f>-s<seed>-<hash>/; the hash is the job key), and "
    "the run ends with the suite table (OUT/suite.json, OUT/suite.md, and the page OUT/report.html): per task "
    "Hit@1/5/10 with Wilson intervals, MRR, the lift over that task's best baseline with a paired bootstrap "
    "interval and exact McNemar p, Holm-corrected over the tasks, and the macro average. Before any training it "
    "times a few training steps per task and prints the estimated cost. Works with outside models "
    "(--model package.module:NAME or an entry point). An interrupted suite continues with `lvmbench suite run "
    "--resume OUT`."
)


def cmd_suite_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from lvmbench.runs.suite import suite_list

    tasks = suite_list(recipe_from_args(args), args.root)
    if args.json:
        print(json.dumps(tasks, indent=2))
        return 0
    rows = [[t["name"], t["domain"], t["chains"], t["vectors"], t["test_queries"], t["pool"],
             f"{100 * t['chance_hit@5']:.2f}", f"{t['source'].get('package', '?')} {t['source'].get('version', '')}",
             t["license"]] for t in tasks]
    print(tabulate(rows, headers=["task", "domain", "chains", "vectors", "test queries", "test pool",
                                  "chance Hit@5 %", "source", "licence"]))
    return 0


def cmd_suite_run(args: argparse.Namespace) -> int:
    from lvmbench.errors import UsageError

    if args.resume is not None:
        from lvmbench.runs.suite import resume_suite

        models = [args.model] if args.model else None
        return resume_suite(args.resume, log=log, models=models)[2]
    if not args.model:
        raise UsageError("suite run needs --model (or --resume OUT)")
    from lvmbench.runs.suite import suite_run

    from lvmbench.runs.series import parse_seeds

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    return suite_run(recipe_from_args(args), tasks, args.out, args.overwrite, args.folds or 0, log=log,
                     root=args.root, dry_run=args.dry_run, seeds=parse_seeds(args.seeds), spec=spec_from_args(args))[2]


def add_suite(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("suite", help="the standard suite of real corpora: list the tasks, run a model on them",
                       description="The standard suite: several real corpora from different domains, each with "
                       "thousands of test queries, shipped under fixtures/suite/ with their provenance.",
                       epilog=EPILOG)
    ssub = s.add_subparsers(dest="suite_command", metavar="SUBCOMMAND")
    ssub.required = True
    ls = ssub.add_parser("list", help="the tasks with their size, test queries, pool, chance and licence",
                         description="List the suite's tasks: chains, vectors, test queries and test pool under "
                         "the split the task fixes, chance Hit@5, source package and licence.", epilog=EPILOG)
    ls.add_argument("--json", action="store_true", help="a JSON list of objects")
    ls.add_argument("--root", help="a suite directory other than fixtures/suite")
    add_recipe_args(ls)
    ls.set_defaults(func=cmd_suite_list)
    r = ssub.add_parser("run", help="train and score a model on every task, then the suite table",
                        description=RUN_DESCRIPTION, epilog=EPILOG)
    r.add_argument("--model", help="a built-in model or baseline, an entry point, or package.module:NAME")
    r.add_argument("--tasks", metavar="A,B", help="only these tasks (default: every task)")
    r.add_argument("--folds", type=int, metavar="K", help="document-level K-fold cross-validation per task")
    r.add_argument("--out", help="suite directory (default runs/<timestamp>-<model>-suite)")
    r.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty suite directory")
    r.add_argument("--root", help="a suite directory other than fixtures/suite")
    r.add_argument("--resume", metavar="OUT", help="continue an interrupted suite run")
    r.add_argument("--dry-run", action="store_true",
                   help="prepare the tasks, time a few training steps and print the estimated cost; train nothing")
    add_recipe_args(r)
    add_jobs_args(r)
    r.set_defaults(func=cmd_suite_run)
