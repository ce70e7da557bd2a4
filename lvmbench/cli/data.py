"""``lvmbench data synth|build|info``: dataset tools."""

from __future__ import annotations

import argparse

from lvmbench.cli.common import EPILOG, add_recipe_args, log, recipe_from_args


def cmd_data_synth(args: argparse.Namespace) -> int:
    from lvmbench.data.synth import write_synth

    store = write_synth(args.out, n_chains=args.chains, dim=args.dim, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {store.n_chains} chains, {store.n_vectors} vectors of dim {store.dim} to {store.path}")
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from lvmbench.cli.corpus import run_build

    return run_build(args, log=log)


def cmd_data_dedupe(args: argparse.Namespace) -> int:
    from lvmbench.cli.corpus import run_dedupe

    return run_dedupe(args, log=log)


def cmd_data_info(args: argparse.Namespace) -> int:
    import json

    from lvmbench.data.prepare import resolve_data
    from lvmbench.report.info import data_info, render_info

    from lvmbench.data.split import leakage_message
    from lvmbench.errors import IntegrityError

    store = resolve_data(args.dataset, log=log)
    info = data_info(store, recipe_from_args(args))
    print(json.dumps(info, indent=2) if args.json else render_info(info), flush=True)
    if not info["leakage"]["ok"]:  # the full report is out; the exit code still says the data is unusable
        raise IntegrityError(f"{store.path}: {leakage_message(info['leakage'])}")
    return 0


def _add_synth(dsub: argparse._SubParsersAction) -> None:
    s = dsub.add_parser("synth", help="write the synthetic corpus (hidden rotating state + noise) as a chain store",
                        epilog=EPILOG,
                        description="Write a synthetic chain store: a hidden state that turns by a fixed orthogonal "
                        "map and is only half observed, plus a per-chain topic and noise, so the next vector "
                        "depends on more than the last one. Deterministic for a given --seed.")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--chains", type=int, default=200)
    s.add_argument("--dim", type=int, default=384)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_data_synth)


def _add_build(dsub: argparse._SubParsersAction) -> None:
    from lvmbench.cli.corpus import add_build_arguments

    b = dsub.add_parser(
        "build", help="turn a folder of documents (or a JSONL file) into a chain store of sentence embeddings",
        description="One document = one chain, paragraphs (or sentences) in reading order. Strips markup, skips "
        "code blocks, tables and navigation, drops short units and boilerplate repeated across documents "
        "(by text, and after encoding by stored vector, so the store passes the leakage check), encodes with "
        "MiniLM (the 'encode' extra: pip install -e \".[encode]\"), caches encodings so an "
        "interrupted build resumes, and records every setting and hash in the manifest.",
        epilog=EPILOG,
    )
    add_build_arguments(b)
    b.set_defaults(func=cmd_data_build)


def _add_dedupe(dsub: argparse._SubParsersAction) -> None:
    from lvmbench.cli.corpus import add_dedupe_arguments

    dd = dsub.add_parser(
        "dedupe", help="copy a chain store without the vectors that occur in more than one chain",
        description="Write a NEW chain store to --out without every vector that occurs in two or more chains "
        "(all its occurrences; repeats inside one chain stay), so `lvmbench run` and `data info` pass the leakage "
        "check, which refuses a val/test vector bit-identical to a training one. Chains left with fewer than "
        "--min-length vectors go too. texts.jsonl.gz is filtered alongside; the manifest records what was removed "
        "and the source's sha256. SRC is never modified. (`data build` already applies this rule.)",
        epilog=EPILOG,
    )
    add_dedupe_arguments(dd)
    dd.set_defaults(func=cmd_data_dedupe)


def _add_info(dsub: argparse._SubParsersAction) -> None:
    i = dsub.add_parser(
        "info", help="chains, lengths, adjacent cosines, duplicates and baseline difficulty of a dataset",
        description="Describe a chain store: chain-length and adjacent-cosine distributions, duplicate rate, "
        "what the quality gates remove, the split, and the dataset's difficulty (Hit@K and MRR of "
        "copy_last, mean_context and random on the test pool, with pool size, the excluded window and chance rate, "
        "scored exactly as `lvmbench run` scores with the same recipe, the excluded window included). A dataset "
        "that fails the leakage check still gets the whole report, with a leakage section naming the shared "
        "vectors, their chains and splits; the command then exits 3.",
        epilog=EPILOG,
    )
    i.add_argument("dataset", nargs="?", help="chain-store directory or 'synth' (default: the default dataset)")
    i.add_argument("--json", action="store_true", help="print the report as JSON")
    add_recipe_args(i)
    i.set_defaults(func=cmd_data_info)


def add_data(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("data", help="dataset tools: synth, build, dedupe, info", epilog=EPILOG,
                       description="Make and inspect chain stores (vectors.npy + offsets.npy + manifest.json): "
                       "build one from documents, write the synthetic one, copy one without cross-chain "
                       "duplicates, or describe one and measure how hard it is.")
    dsub = d.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dsub.required = True
    _add_synth(dsub)
    _add_build(dsub)
    _add_dedupe(dsub)
    _add_info(dsub)
