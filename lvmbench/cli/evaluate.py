"""``lvmbench eval`` and ``lvmbench trec``: score a saved checkpoint, export a scored run."""

from __future__ import annotations

import argparse

from lvmbench.cli.common import EPILOG, add_allow_import, log


def cmd_eval(args: argparse.Namespace) -> int:
    from lvmbench.runs.rescore import evaluate_checkpoint

    overrides = list(args.overrides)
    if args.pool:
        overrides.append(f"eval.pool={args.pool}")
    if args.include_context:
        overrides.append("eval.exclude_context=false")
    if args.device:
        overrides.append(f"train.device={args.device}")
    run_dir, _ = evaluate_checkpoint(args.checkpoint, args.data, overrides, args.out, args.split, args.overwrite,
                                     log=log, bank=args.bank, shard_size=args.shard_size, ann=args.ann,
                                     model=args.model)
    if args.trec:
        from lvmbench.report.trec import export_run

        export_run(run_dir, args.trec, args.trec_depth, data=args.data, log=log)
    return 0


def _add_scale_args(e: argparse.ArgumentParser) -> None:
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


def add_eval(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="score a saved checkpoint on a split", epilog=EPILOG,
                       description="Score CHECKPOINT (a .pt file or a run directory) and every baseline against "
                       "the FAISS pool, using the recipe stored in the checkpoint plus any --set overrides.")
    e.add_argument("checkpoint", help="a checkpoint file, or a run directory holding its best checkpoint "
                   "(best_val_<metric>.pt, named by train.stop_metric)")
    e.add_argument("--data", help="chain-store directory or 'synth' (default: the default dataset)")
    e.add_argument("--model", metavar="SPEC", help="confirm the checkpoint's outside model: its import path "
                   "package.module:NAME is never imported from the checkpoint unless named here too (a different "
                   "one is refused); built-in and entry-point names need no confirmation")
    e.add_argument("--split", choices=["test", "val"], default="test")
    e.add_argument("--pool", choices=["split", "full"], help="candidate pool (default: the recipe's, 'split')")
    e.add_argument("--include-context", action="store_true", help="leave the query's context vectors in the pool")
    _add_scale_args(e)
    e.add_argument("--out", help="output directory (default <run dir>/eval-<split>)")
    e.add_argument("--overwrite", action="store_true")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    add_allow_import(e)
    e.add_argument("--device", choices=["auto", "cpu", "cuda"])
    e.add_argument("--trec", metavar="DIR", help="also write TREC files (run.trec, qrels.trec, trec.json) to DIR")
    e.add_argument("--trec-depth", type=int, default=100, metavar="N",
                   help="candidates per query in run.trec (default 100; 0 = every candidate)")
    e.set_defaults(func=cmd_eval)


def cmd_trec(args: argparse.Namespace) -> int:
    from lvmbench.report.trec import export_run

    export_run(args.run_dir, args.out, args.depth, data=args.data, log=log)
    return 0


def add_trec(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "trec", help="export a scored run as TREC run and qrels files (trec_eval, pytrec_eval, ranx, ir_measures)",
        description="Write RUN_DIR's top-N retrieved candidates per query ('qid Q0 docid rank score tag', the "
        "query's excluded context removed) to OUT/run.trec and its targets ('qid 0 docid 1') to OUT/qrels.trec. "
        "qid q<i> = the i-th query of predictions.npz; docid = the candidate's row in vectors.npy. trec_eval's "
        "success_K equals Hit@K; its recip_rank equals lvmbench's (untruncated) MRR only when every target is "
        "within N (--depth 0 writes every candidate).",
        epilog=EPILOG,
    )
    t.add_argument("run_dir", metavar="RUN_DIR",
                   help="a run or eval directory holding results.json and predictions.npz")
    t.add_argument("--out", required=True, metavar="DIR", help="output directory")
    t.add_argument("--depth", type=int, default=100, metavar="N",
                   help="candidates per query (default 100; 0 = every candidate)")
    t.add_argument("--data", help="the run's dataset if it moved (must have the recorded sha256)")
    t.set_defaults(func=cmd_trec)
