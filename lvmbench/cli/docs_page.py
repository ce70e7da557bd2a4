"""What the generated documentation pages share: checking a committed page, and their ``main()``.

Each generator (the CLI reference, the metrics page, the results schema) supplies ``render()``
and a ``problem(committed_text)`` that names the first difference; this module turns them into
``python -m lvmbench.cli.<generator> [--check PAGE]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


def first_difference(committed: str, generated: str) -> str | None:
    """``"line N differs ..."`` for the first line where the committed page departs from the generated one."""
    got, exp = committed.splitlines(), generated.splitlines()
    if got == exp:
        return None
    line = next((i for i, (a, b) in enumerate(zip(got, exp)) if a != b), min(len(got), len(exp)))
    return f"line {line + 1} differs from the generated page"


def check_page(path: Path, problem: Callable[[str], str | None], regenerate: str) -> str | None:
    """One line saying why the page at ``path`` is not what would be generated; None if it is."""
    if not path.is_file():
        return f"{path}: no such file; generate it with: {regenerate}"
    found = problem(path.read_text(encoding="utf-8"))
    return None if found is None else f"{path} is out of date: {found}; regenerate it with: {regenerate}"


def page_main(argv: list[str] | None, prog: str, description: str, check_help: str,
              render: Callable[[], str], check: Callable[[Path], str | None]) -> int:
    """Print the page (Markdown) on stdout, or with ``--check PAGE`` exit 1 and say why PAGE is stale."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--check", metavar="PAGE", type=Path, help=check_help)
    args = ap.parse_args(argv)
    if args.check is not None:
        found = check(args.check)
        if found:
            print(found, file=sys.stderr)
            return 1
        print(f"{args.check} is up to date", file=sys.stderr)
        return 0
    sys.stdout.buffer.write(render().encode("utf-8"))
    sys.stdout.flush()
    return 0
