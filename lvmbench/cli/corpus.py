"""``lvmbench data build`` and ``lvmbench data dedupe``: their arguments and how they call the data layer.

The corpus package and ``data.dedupe`` never see argparse; this module is the
only place that knows the flag names.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable

from lvmbench.data.corpus import TEXTS, BuildOptions, build_corpus, format_report, scan_corpus
from lvmbench.data.corpus.build import MEMORY_MULTIPLE
from lvmbench.data.corpus.formats import suffix_summary
from lvmbench.data.corpus.select import MAX_UNIT_CHARS
from lvmbench.data.dedupe import dedupe_store, format_dedupe_report
from lvmbench.data.encoders import available_encoders
from lvmbench.cli.common import same_command
from lvmbench.errors import Interrupted, UsageError

Log = Callable[[str], Any]


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``lvmbench data build``."""
    p.add_argument("src", help=f"folder of {suffix_summary()} documents (optionally .gz), or a JSONL file of "
                   '{"id", "title", "paragraphs": [...]}')
    p.add_argument("--out", required=True, help="output chain-store directory")
    p.add_argument("--encoder", default="minilm", choices=available_encoders(),
                   help="text encoder (default minilm = all-MiniLM-L6-v2, needs the 'encode' extra)")
    p.add_argument("--unit", choices=["paragraph", "sentence"], default="paragraph",
                   help="one vector per paragraph (default) or per sentence")
    p.add_argument("--min-words", type=int, default=8, help="drop units with fewer words (default 8)")
    p.add_argument("--min-paragraphs", type=int, default=7,
                   help="drop documents with fewer units after filtering (default 7, the recipe's length gate)")
    p.add_argument("--max-paragraphs", type=int, metavar="N",
                   help="drop documents with more than N units after the min-words filter (a compute budget)")
    p.add_argument("--max-docs", type=int, help="keep only the first N documents that pass the length filter")
    p.add_argument("--max-unit-chars", type=int, default=MAX_UNIT_CHARS, metavar="N",
                   help=f"drop (and count) units longer than N characters (default {MAX_UNIT_CHARS:,}; MiniLM reads "
                   "only the first ~1,000-1,300), so no document-sized text reaches the encoder. Parsing is linear "
                   f"in time; reading a document allocates at most about {MEMORY_MULTIPLE} times its size")
    p.add_argument("--include", action="append", metavar="GLOB",
                   help="only documents whose relative path matches (repeatable), e.g. 'library/*'")
    p.add_argument("--exclude", action="append", metavar="GLOB", help="skip documents matching (repeatable)")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="stored vector dtype")
    p.add_argument("--cache", dest="cache_dir", metavar="DIR",
                   help="encoding cache to keep and reuse (default <out>.cache, deleted after success)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="torch device for the encoder (default cpu)")
    p.add_argument("--name", help="dataset name for the manifest (default: the --out folder name)")
    p.add_argument("--license", help="license of the source text, recorded in the manifest")
    p.add_argument("--source-info", action="append", default=[], metavar="KEY=VALUE",
                   help="provenance recorded under manifest.source, e.g. package=python3.11-doc (repeatable)")
    p.add_argument("--no-texts", action="store_true", help=f"do not write {TEXTS} next to the store")
    p.add_argument("--dry-run", action="store_true", help="parse and filter only; print the counts")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")


def parse_source_info(items: list[str] | None) -> dict[str, str]:
    """``--source-info KEY=VALUE`` items as a dict; a malformed item is a usage error."""
    info: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--source-info {item!r}: expected KEY=VALUE")
        info[key.strip()] = value.strip()
    return info


def build_options(args: argparse.Namespace) -> BuildOptions:
    """The parsed ``data build`` arguments as the options the corpus package takes."""
    info = parse_source_info(args.source_info)
    return BuildOptions(
        encoder=args.encoder, unit=args.unit, min_words=args.min_words, min_paragraphs=args.min_paragraphs,
        max_paragraphs=args.max_paragraphs, max_docs=args.max_docs, max_unit_chars=args.max_unit_chars,
        include=args.include, exclude=args.exclude,
        dtype=args.dtype, cache_dir=args.cache_dir, batch_size=args.batch_size, device=args.device, name=args.name,
        license=args.license, source_info=info or None, save_texts=not args.no_texts, overwrite=args.overwrite,
    )


def run_build(args: argparse.Namespace, log: Log = print) -> int:
    """``lvmbench data build``: build (or, with ``--dry-run``, only scan) and print the report."""
    options = dataclasses.replace(build_options(args), log=log)
    if args.dry_run:
        _, report = scan_corpus(args.src, **options.filters())
    else:
        try:
            _, report = build_corpus(args.src, args.out, options)
        except KeyboardInterrupt:
            out = Path(args.out)
            cache = args.cache_dir or out.with_name(out.name + ".cache")
            raise Interrupted(f"interrupted; the documents encoded so far are cached in {cache}; continue with "
                              f"the same command: {same_command(args)}") from None
    log(format_report(report))
    return 0


def add_dedupe_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``lvmbench data dedupe``."""
    p.add_argument("src", metavar="SRC", help="chain-store directory to read (never modified)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="new chain-store directory (not SRC, not inside it; must be new or empty unless --overwrite)")
    p.add_argument("--min-length", type=int, default=1, metavar="N",
                   help="also drop chains left with fewer than N vectors (default 1: only chains left empty; "
                   "`lvmbench run` still applies data.min_chain_len)")
    p.add_argument("--name", help="dataset name for the manifest (default: the --out folder name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")


def run_dedupe(args: argparse.Namespace, log: Log = print) -> int:
    """``lvmbench data dedupe``: write the deduplicated copy and print what was removed."""
    _, report = dedupe_store(args.src, args.out, min_length=args.min_length, overwrite=args.overwrite,
                             name=args.name)
    log(format_dedupe_report(report))
    return 0
