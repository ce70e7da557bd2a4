"""``lvmbench compare`` and ``models``: reading results and the zoo."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from lvmbench.cli.common import EPILOG

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from lvmbench.models.entry import Context


def _probe_context(dim: int) -> Context:
    """A tiny seeded train/val split of random unit vectors, for counting parameters only.

    An entry-point model may fit something on the training split when it is
    built (``reference`` picks its decayed-mean coefficients on val); its
    parameter count depends on ``dim`` and its options, not on that data.
    """
    import numpy as np

    from lvmbench.models.entry import Context

    n = 8
    unit = np.random.default_rng(0).standard_normal((2 * n, dim)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    train, val = np.arange(n), np.arange(n, 2 * n)
    return Context(train_mean=unit[:n].mean(axis=0), unit=unit, train_pairs=(train[:-1], train[1:]),
                   train_targets=train[1:], train_starts=np.zeros(n - 1, np.int64), train_rows=train,
                   val_targets=val[1:], val_starts=np.full(n - 1, n, np.int64), val_rows=val,
                   context_len=n, exclusion=n)


def _entry_point_row(ep: EntryPoint, dim: int) -> list[str]:
    """One entry point's row: its parameters counted only when its code is lvmbench's own, a shadow noted.

    Listing must not import another package's code (it runs only when --model
    names it), and a name the zoo already holds never reaches the entry point.
    """
    from lvmbench.config import ModelConfig
    from lvmbench.errors import LvmbenchError
    from lvmbench.models import registry

    dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
    description = f"{ep.value} (package {dist})"
    shadow = registry.REGISTRY.get(ep.name)
    if shadow is not None:
        by = "built-in" if shadow.source == "builtin" else shadow.source
        return [ep.name, "entry point", "—",
                f"{description} (shadowed by the {by} {ep.name}; use its import path {ep.value})"]
    params = "—"
    if ep.module == "lvmbench" or ep.module.startswith("lvmbench."):
        try:
            model = registry.get_entry(ep.name).build(dim, ModelConfig(), _probe_context(dim))
            params = f"{registry.n_params(model):,}"
        except LvmbenchError:
            pass  # listed without a count; --model names it to see why it cannot be built
    return [ep.name, "entry point", params, description]


def cmd_models(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from lvmbench.config import ModelConfig
    from lvmbench.models import outside, registry

    rows = []
    for name, entry in registry.REGISTRY.items():
        trained = entry.kind == "model" and not entry.outside
        params = f"{registry.n_params(registry.build(name, args.dim, ModelConfig())):,}" if trained else (
            "0" if entry.kind == "baseline" and not entry.outside else "—")
        kind = entry.kind + ("" if entry.source == "builtin" else f" ({entry.source})")
        rows.append([name, kind, params, entry.description])
    # listed, not imported: another package's code runs only when --model names it
    rows += [_entry_point_row(ep, args.dim) for ep in outside.entry_points()]
    print(tabulate(rows, headers=["name", "kind", f"params @ D={args.dim}", "description"]))
    print("\nAlso accepted: an import path package.module:NAME (see docs/guides/own-model.md).")
    return 0


def add_models(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list models and baselines with parameter counts", epilog=EPILOG,
                       description="List every model family (trained by the recipe) and baseline (no training) "
                       "that --model accepts, with its trainable parameters at the recipe's model settings and "
                       "embedding dimension --dim.")
    m.add_argument("--dim", type=int, default=384, help="embedding dimension for the parameter counts (default 384, "
                   "the default dataset's all-MiniLM-L6-v2 vectors; 768 for e.g. all-mpnet-base-v2)")
    m.set_defaults(func=cmd_models)


def cmd_compare(args: argparse.Namespace) -> int:
    from lvmbench.report.compare import compare

    print(compare(args.runs, args.metric, args.format, args.force, warn=lambda m: print(m, file=sys.stderr),
                  plot=args.plot))
    return 0


def add_compare(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "compare", help="leaderboard of several runs and their baselines on the same queries, with paired tests",
        description="Rank the models of RUN_DIRs and the first run's baselines by their per-query ranks "
        "(predictions.npz): Hit@K (the recipe's eval.ks) with Wilson intervals, MRR with a bootstrap interval, lift "
        "over the best baseline, exact McNemar on Hit@5 vs that baseline (Holm-corrected across models) and "
        "per-query win/tie/loss.  Refuses runs whose dataset, split or pool sha256 differ (unless --force) and runs "
        "scored on different queries.",
        epilog=EPILOG,
    )
    c.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run directories holding results.json and predictions.npz")
    c.add_argument("--metric", default="hit@5", type=str.lower,
                   help="sort rows and pick the best baseline by this metric: hit@K for a K of the runs' eval.ks, "
                   "or mrr (default hit@5)")
    c.add_argument("--format", default="table", choices=["table", "markdown", "csv", "json"])
    c.add_argument("--force", action="store_true", help="compare runs whose dataset/split/pool hashes differ")
    c.add_argument("--plot", metavar="PATH", help="also draw the leaderboard (Hit@5 with Wilson interval bars, "
                   "baselines grey) to this PNG; needs matplotlib (pip install -e \".[plot]\"), "
                   "skipped with a note without it")
    c.set_defaults(func=cmd_compare)
