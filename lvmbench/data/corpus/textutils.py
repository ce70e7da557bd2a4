"""Text helpers shared by the format parsers and the unit selection.

Kept in one place so every parser normalises whitespace, counts words and
measures indentation the same way: a unit's text is what the duplicate rule
compares, so two parsers must never disagree on it.
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")

_ABBREV = {"e.g", "i.e", "cf", "vs", "viz", "mr", "mrs", "ms", "dr", "prof", "st", "no", "nos", "fig", "figs",
           "approx", "al", "jr", "sr", "inc", "ltd", "resp", "ca", "eq", "sec", "ch", "vol", "pp"}
_SENT_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")


def normalise_ws(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def n_words(text: str) -> int:
    """Whitespace-separated words: the unit the ``min_words`` filter counts."""
    return len(text.split())


def indent_width(line: str) -> int:
    """Leading whitespace of ``line`` in columns, tabs expanded to 4 (Markdown and reST blocks)."""
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _is_abbreviation(head: str) -> bool:
    """Whether the word ending ``head`` is a single letter or a known abbreviation (no sentence end)."""
    last = head.split()[-1] if head.split() else ""
    word = last.lstrip("\"'(\u201c\u2018[").rstrip(".")
    return word.lower() in _ABBREV or (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[str]:
    """Split one paragraph into sentences with the rule in the package docstring (regex, no model)."""
    text = normalise_ws(text)
    out, start = [], 0
    for m in _SENT_END.finditer(text):
        if text[m.start()] == "." and _is_abbreviation(text[start : m.start()]):
            continue
        piece = text[start : m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out
