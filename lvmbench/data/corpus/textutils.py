"""Text helpers shared by the format parsers and the unit selection.

Kept in one place so every parser normalises whitespace, counts words and
measures indentation the same way: a unit's text is what the duplicate rule
compares, so two parsers must never disagree on it.

Each helper runs in time linear in its input and holds at most about twice
its input besides (``normalise_ws`` works in ``CHUNK``-sized pieces, since
``re.sub`` keeps every piece between two matches as its own string object -
about 14 times the text for a long line of short words; ``n_words`` counts
without building the word list): a document of tens of megabytes in one line
must not cost gigabytes before the unit-length cap drops it.
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")
_WORD = re.compile(r"\S+")
CHUNK = 1 << 12  # characters per re.sub call (its pieces cost ~14x); longer texts go in chunks of this size

_ABBREV = {"e.g", "i.e", "cf", "vs", "viz", "mr", "mrs", "ms", "dr", "prof", "st", "no", "nos", "fig", "figs",
           "approx", "al", "jr", "sr", "inc", "ltd", "resp", "ca", "eq", "sec", "ch", "vol", "pp"}
# the look-behind lets a run of ``.!?`` start a match only at its first character: without it a long run
# with no sentence end after it is retried from every position (quadratic)
_SENT_END = re.compile(r"(?<![.!?\u2026])[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")


def normalise_ws(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends.

    A long text is done in pieces of about ``CHUNK`` characters, each cut
    moved past the whitespace run it falls in, so a run is never split and the
    result is exactly ``re.sub(r"\\s+", " ", text).strip()``.
    """
    n = len(text)
    if n <= CHUNK:
        return _WS.sub(" ", text).strip()
    parts, start = [], 0
    while start < n:
        end = min(start + CHUNK, n)
        run = _WS.match(text, end) if end < n else None
        if run is not None:
            end = run.end()
        parts.append(_WS.sub(" ", text[start:end]))
        start = end
    joined = "".join(parts)
    del parts  # before strip() copies
    return joined.strip()


def n_words(text: str) -> int:
    """Whitespace-separated words: the unit the ``min_words`` filter counts (no word list for long texts)."""
    if len(text) <= CHUNK:
        return len(text.split())
    return sum(1 for _ in _WORD.finditer(text))


def indent_width(line: str) -> int:
    """Leading whitespace of ``line`` in columns, tabs expanded to 4 (Markdown and reST blocks)."""
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _is_abbreviation(text: str, start: int, end: int) -> bool:
    """Whether the word ending at ``text[end]`` (not before ``start``) is a single letter or a known abbreviation.

    Reads only that last word, never the whole sentence so far: a long
    stretch of abbreviations with no sentence end would otherwise be re-read
    at each of them (quadratic).  ``text`` is whitespace-normalised, so words
    are separated by single spaces.
    """
    while end > start and text[end - 1] == " ":
        end -= 1
    last = text[max(start, text.rfind(" ", start, end) + 1) : end]
    word = last.lstrip("\"'(\u201c\u2018[").rstrip(".")
    return word.lower() in _ABBREV or (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[str]:
    """Split one paragraph into sentences with the rule in the package docstring (regex, no model)."""
    text = normalise_ws(text)
    out, start = [], 0
    for m in _SENT_END.finditer(text):
        if text[m.start()] == "." and _is_abbreviation(text, start, m.start()):
            continue
        piece = text[start : m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out
