"""What several subcommands share: the exit-code note, logging, and the recipe flags."""

from __future__ import annotations

import argparse

from lvmbench.config import Recipe, load_recipe
from lvmbench.trust import check_recipe_imports, specs_in

EPILOG = """exit codes: 0 ok / gate passed, 1 gate failed, 2 bad input (or a directory another command holds),
3 integrity failure (leakage, train/index Hit@K disagreement, predictions that tie every candidate, a run that
did not finish), 130 interrupted."""


def log(msg: str) -> None:
    print(msg, flush=True)


def add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", metavar="TOML", help="a recipe TOML file overriding the consultant defaults")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one recipe value, e.g. --set train.lr=3e-4 --set data.context_len=20 (repeatable)",
    )
    p.add_argument("--seed", type=int, help="shorthand for --set seed=N")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="shorthand for --set train.device=...")
    p.add_argument("--logger", choices=["none", "tensorboard"],
                   help="shorthand for --set train.logger=...: tensorboard also writes TensorBoard event files in "
                   "the run directory (metrics.jsonl is written either way; needs pip install -e \".[tensorboard]\")")
    add_allow_import(p)


def add_jobs_args(p: argparse.ArgumentParser, seeds: bool = True) -> None:
    """Where a multi-run command's jobs run, whether finished ones rerun, and (``seeds``) the seeds axis."""
    g = p.add_argument_group("jobs (every training-and-scoring point is a job with its own run directory)")
    if seeds:
        g.add_argument("--seeds", metavar="S1,S2,...",
                       help="train every point once per training seed (train.seed: initialisation and data order; "
                       "the split, queries and pool stay) and report the mean and min-max across seeds, the "
                       "seed-averaged model's intervals and the paired test against the best baseline per seed "
                       "and pooled")
    g.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local (default): on this machine; ray: each job a Ray task on the cluster at --ray-address "
                   "(a local Ray instance without it; needs pip install -e \".[ray]\"), one GPU per job on CUDA")
    g.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="local executor: N worker processes, the cores divided between them unless train.threads "
                   "is set (default 1: one job after another in this process)")
    g.add_argument("--ray-address", metavar="ADDR", help="a running Ray cluster, e.g. ray://head:10001 or auto")
    g.add_argument("--rerun", action="store_true",
                   help="run every job again, even those whose run directory in OUT already holds a finished run "
                   "with the same job key (by default they are reused)")


def spec_from_args(args: argparse.Namespace):  # -> ExecutorSpec
    """The executor flags as a checked ExecutorSpec (bad values: one line, exit 2)."""
    from lvmbench.runs.executors import ExecutorSpec

    spec = ExecutorSpec(args.executor, args.jobs, args.ray_address, args.rerun)
    spec.check()
    return spec


def jobs_flags_given(args: argparse.Namespace) -> list[str]:
    """The executor flags set away from their defaults (a single run is one job: they do not apply)."""
    given = {"--executor": args.executor != "local", "--jobs": args.jobs != 1, "--ray-address": bool(args.ray_address),
             "--rerun": args.rerun}
    return [flag for flag, on in given.items() if on]


def add_allow_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-import", action="append", default=[], metavar="PKG.MOD:NAME",
                   help="confirm an import path that a file names as a baseline (eval.baselines of a TOML recipe, "
                   "recipe.json, a checkpoint or a task file): lvmbench never imports a module path read from a "
                   "file unless the command line names it too (repeatable, or comma-separated)")


def trusted_specs(args: argparse.Namespace) -> set[str]:
    """The import paths this command line names: --model, --set model.name= / eval.baselines=, --allow-import."""
    values = [getattr(args, "model", None), *(getattr(args, "allow_import", None) or [])]
    for item in getattr(args, "overrides", None) or []:
        key, _, value = item.partition("=")
        if key.strip() in ("model.name", "eval.baselines"):
            values.append(value)
    return specs_in(values)


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The default recipe, then --recipe, then --set and its shorthands (--seed, --device, --logger, --model);
    a TOML's code names checked."""
    overrides = list(args.overrides)
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    if getattr(args, "device", None):
        overrides.append(f"train.device={args.device}")
    if getattr(args, "logger", None):
        overrides.append(f"train.logger={args.logger}")
    if getattr(args, "model", None):
        overrides.append(f"model.name={args.model}")
    recipe = load_recipe(args.recipe, overrides)
    if args.recipe is not None:
        check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(args.recipe))
    return recipe


def same_command(args: argparse.Namespace) -> str:
    """The command line that started this command, to print as the way to continue or retry it."""
    import shlex

    return shlex.join(["lvmbench", *getattr(args, "argv", [])])
