"""The results-schema page of the documentation site, generated from the typed result ``lvmbench.result.Result``.

``python -m lvmbench.cli.docs_schema > docs/concepts/results-schema.md`` writes the page;
``python -m lvmbench.cli.docs_schema --check docs/concepts/results-schema.md`` exits 1 with one
line when the committed page differs from what the type gives (0 when it is current).
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path

from lvmbench.cli.docs_page import check_page, first_difference, page_main
from lvmbench.result import Result
from lvmbench.result.schema import SCHEMA_VERSION

REGENERATE = "python -m lvmbench.cli.docs_schema > docs/concepts/results-schema.md"

HEADER = f"""# The results schema

<!-- Generated from lvmbench/result/ (the typed result): do not edit by hand.
     Regenerate with: {REGENERATE} -->

Every scored run writes `results.json`; lvmbench reads it back only through the typed result
`lvmbench.result.Result` (`Result.from_json(run_dir)`), and this page is generated from that type.
The current `schema_version` is **{SCHEMA_VERSION}**. A file with an older version is migrated when
it is read (version 2 names the direction table's oracle and copy_last rows `"kind": "bound"`;
version 1 said `"reference"`); a newer one is refused with one line naming the file. Keys a
section does not know are kept (`extra`) and written back unchanged, so `to_json()` round-trips.
Metric values are keyed by the [metric table](metrics.md) (`hit@5`, `ndcg@10`, `mrr`, `ca`, `par`...).
Every section is optional when read: a file that lacks one reads it as absent.
"""


def _doc(cls: type) -> str:
    return " ".join(inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].split())


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.name.startswith("_") and f.name != "extra"]


def _nested(f: dataclasses.Field, cls: type) -> type | None:
    of = f.metadata.get("of")
    return cls if of == "self" else of if isinstance(of, type) else None


def _type(f: dataclasses.Field, cls: type) -> str:
    nested, many = _nested(f, cls), f.metadata.get("many")
    if nested is None:
        return f"`{str(f.type).replace(' | None', '')}`"
    link = f"[{nested.__name__}](#{nested.__name__.lower()})"
    return {"map": f"name → {link}", "list": f"list of {link}"}.get(many, link)


def _section(cls: type) -> str:
    lines = [f"## {cls.__name__}", "", _doc(cls), "", "| key | type |", "|---|---|"]
    collected = {name for name, _ in getattr(cls, "COLLECT", ())}
    for f in _fields(cls):
        if f.name in collected:  # not a key of its own: gathered from the prefixed metric keys below
            continue
        lines.append(f"| `{f.metadata.get('key') or f.name}` | {_type(f, cls)} |")
    for field_name, prefix in getattr(cls, "COLLECT", ()):
        lines.append(f"| `{prefix}<metric>` | one per metric, collected into `{field_name}` |")
    return "\n".join(lines) + "\n"


def render() -> str:
    """Every record type reachable from Result, breadth first, each once."""
    order, queue = [], [Result]
    while queue:
        cls = queue.pop(0)
        if cls in order:
            continue
        order.append(cls)
        queue += [n for f in _fields(cls) if (n := _nested(f, cls)) is not None and n not in order]
    return HEADER + "\n" + "\n".join(_section(c) for c in order)


def check(path: Path) -> str | None:
    return check_page(path, lambda committed: first_difference(committed, render()), REGENERATE)


def main(argv: list[str] | None = None) -> int:
    return page_main(argv, "python -m lvmbench.cli.docs_schema", "Print the results-schema page (Markdown) from "
                     "the typed result, or check one.", "exit 1 with one line when PAGE is stale", render, check)


if __name__ == "__main__":
    sys.exit(main())
