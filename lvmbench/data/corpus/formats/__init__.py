"""Source formats: a name -> parser table, each entry claiming the file suffixes it reads.

A parser takes the decoded text of one file and returns ``(title, paragraphs)``
(an empty title means "use the file name").  Each format lives in its own
module here, whose docstring says what it keeps and what it removes.  Adding a
format is one module with a parser plus one ``register_format`` line below;
discovery, ``--include``/``--exclude``, gzip handling and the error messages
follow the table.  Every claimed suffix is also read gzip-compressed
(``foo.html.gz``).  JSONL (``formats.jsonl``) is not in the table: one file
holds many documents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from lvmbench.data.corpus.formats.html import parse_html
from lvmbench.data.corpus.formats.markdown import parse_markdown
from lvmbench.data.corpus.formats.rst import parse_rst
from lvmbench.data.corpus.formats.text import parse_text

Parser = Callable[[str], tuple[str, list[str]]]


@dataclass(frozen=True)
class Format:
    name: str
    parse: Parser
    suffixes: tuple[str, ...]  # lower-case, with the dot; the first one names the format in messages


_FORMATS: dict[str, Format] = {}
_BY_SUFFIX: dict[str, Format] = {}


def register_format(name: str, parse: Parser, suffixes: tuple[str, ...]) -> None:
    """Add (or replace) a format; a suffix claimed by another format is refused."""
    for suffix in suffixes:
        if not suffix.startswith(".") or suffix != suffix.lower():
            raise ValueError(f"format {name!r}: suffix {suffix!r} must be lower-case and start with '.'")
        owner = _BY_SUFFIX.get(suffix)
        if owner is not None and owner.name != name:
            raise ValueError(f"format {name!r}: suffix {suffix!r} is already read by {owner.name!r}")
    fmt = Format(name, parse, tuple(suffixes))
    _FORMATS[name] = fmt
    for suffix in suffixes:
        _BY_SUFFIX[suffix] = fmt


def available_formats() -> list[str]:
    """Registered format names, in registration order."""
    return list(_FORMATS)


def format_for(filename: str) -> Format | None:
    """The format that reads ``filename`` (by suffix, case-insensitive, ``.gz`` allowed), or None."""
    base = filename[:-3] if filename.endswith(".gz") else filename
    return _BY_SUFFIX.get(os.path.splitext(base)[1].lower())


def suffix_summary(sep: str = "/") -> str:
    """The main suffix of each format, e.g. ``.txt/.md/.rst/.html``, for help and error messages."""
    return sep.join(f.suffixes[0] for f in _FORMATS.values())


register_format("text", parse_text, (".txt",))
register_format("markdown", parse_markdown, (".md", ".markdown"))
register_format("rst", parse_rst, (".rst",))
register_format("html", parse_html, (".html", ".htm"))
