"""The ``lvmbench`` command.

Exit codes: 0 success (and ``gate`` passed); 1 ``gate`` failed; 2 bad input
(a missing or malformed file, an unknown model or setting); 3 an integrity
failure (leakage between splits, or training-time Hit@K disagreeing with index
retrieval); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lvmbench import __version__
from lvmbench.errors import LvmbenchError

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
    from lvmbench.pipeline import run

    recipe = _recipe(args)
    run(recipe, args.data, args.out, overwrite=args.overwrite, log=_log)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from lvmbench.pipeline import evaluate_checkpoint

    overrides = list(args.overrides)
    if args.pool:
        overrides.append(f"eval.pool={args.pool}")
    if args.include_context:
        overrides.append("eval.exclude_context=false")
    if args.device:
        overrides.append(f"train.device={args.device}")
    evaluate_checkpoint(args.checkpoint, args.data, overrides, args.out, args.split, args.overwrite, log=_log)
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


def cmd_data_synth(args: argparse.Namespace) -> int:
    from lvmbench.data.synth import write_synth

    store = write_synth(args.out, n_chains=args.chains, dim=args.dim, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {store.n_chains} chains, {store.n_vectors} vectors of dim {store.dim} to {store.path}")
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
        "split.json, data_report.json and recipe.json into the run directory.",
        epilog=EPILOG,
    )
    r.add_argument("--model", default="memory_gru", help="model or baseline name (see `lvmbench models`); default memory_gru")
    r.add_argument("--data", help="chain-store directory, or 'synth'; default: the shipped default dataset "
                   "(the synthetic corpus until a real one ships)")
    r.add_argument("--out", help="run directory (default runs/<model>-<timestamp>)")
    r.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty run directory")
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
    e.add_argument("--out", help="output directory (default <run dir>/eval-<split>)")
    e.add_argument("--overwrite", action="store_true")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    e.add_argument("--device", choices=["auto", "cpu", "cuda"])
    e.set_defaults(func=cmd_eval)

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
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LvmbenchError as exc:
        print(f"lvmbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lvmbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
