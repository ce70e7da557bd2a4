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
    add_allow_import(p)


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
    """The default recipe, then --recipe, then --set / --seed / --device / --model; a TOML's code names checked."""
    overrides = list(args.overrides)
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    if getattr(args, "device", None):
        overrides.append(f"train.device={args.device}")
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
