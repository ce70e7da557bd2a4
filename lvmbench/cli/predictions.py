"""``lvmbench task`` and ``lvmbench score``: the route for predictions made outside lvmbench."""

from __future__ import annotations

import argparse

from lvmbench.cli.common import EPILOG, add_allow_import, add_recipe_args, log, recipe_from_args

TASK_DESCRIPTION = (
    "Write the exact queries of a split to TASK.npz so a model outside lvmbench (JAX, a remote service, another "
    "team's code) can predict them: per query the target row, its context rows (oldest first, right-padded "
    "with -1) and the rows excluded from its candidates; the pool's rows; the dataset and split sha256 and the "
    "recipe fields that define the task (context length, exclusion, split). docs/guides/predictions.md "
    "documents the format. Recipe flags (--set data.context_len=20 ...) change the task as they change a run."
)
SCORE_DESCRIPTION = (
    "Score PRED.npy, an [n, D] float array whose row i is the prediction for query i of TASK.npz, through the "
    "same path as a trained model: each row L2-normalised as predict() does, ranked by exact FAISS search "
    "against the task's pool minus its excluded rows, with every baseline, Wilson and bootstrap intervals, lift "
    "and paired tests, the torch/FAISS consistency check and the run artefacts (results.json, predictions.npz, "
    "report.md) in RUN_DIR, so `compare`, `gate` and `trec` work on it. Refused with one line and exit 2: a "
    "wrong row count or dim, NaN/Inf or all-zero rows (the first is named), a pickled or object array, a "
    "task whose dataset or split hashes do not match the data."
)


def cmd_task(args: argparse.Namespace) -> int:
    from lvmbench.runs.predictions import write_task

    write_task(recipe_from_args(args), args.data, args.split, args.out, args.overwrite, log=log)
    return 0


def add_task(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("task", help="write a split's queries for predictions made outside lvmbench",
                       description=TASK_DESCRIPTION, epilog=EPILOG)
    t.add_argument("--data", help="chain-store directory or 'synth' (default: the default dataset)")
    t.add_argument("--split", choices=["test", "val"], default="test")
    t.add_argument("--out", required=True, metavar="TASK.npz", help="the task file to write")
    t.add_argument("--overwrite", action="store_true", help="replace an existing task file")
    add_recipe_args(t)
    t.set_defaults(func=cmd_task)


def cmd_score(args: argparse.Namespace) -> int:
    from lvmbench.runs.predictions import score_file

    score_file(args.predictions, args.task, args.data, args.out, args.overwrite, args.name,
               args.device or "cpu", log=log)
    return 0


def add_score(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("score", help="score predictions made outside lvmbench like a trained model",
                       description=SCORE_DESCRIPTION, epilog=EPILOG)
    s.add_argument("predictions", metavar="PRED.npy", help="[n, D] float array, row i = prediction for query i")
    s.add_argument("--task", required=True, metavar="TASK.npz", help="the task file the predictions answer")
    s.add_argument("--data", help="the task's dataset, if it moved (must have the recorded sha256)")
    s.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    s.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty run directory")
    s.add_argument("--name", help="the predictor's name in tables and results.json (default: the file's stem)")
    s.add_argument("--device", choices=["cpu", "cuda", "auto"], help="where to rank (default cpu)")
    add_allow_import(s)
    s.set_defaults(func=cmd_score)
