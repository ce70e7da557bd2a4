"""Linear-time inline scanning, shared by the Markdown and reST parsers.

Both parsers do each inline regex substitution as one left-to-right pass
(``sub``) instead of ``re.sub``, which searched from every opener that never
closes to the end of the paragraph.  ``first`` remembers a search while its
answer is still ahead, so the text is read about once however many openers
ask.  Every search of these passes goes through ``search`` (called as
``scan.search``), which the tests replace to count the characters read.
"""

from __future__ import annotations

import re
from typing import Callable

search = re.Pattern.search  # every scan of the inline passes goes through here (tests count what it reads)
NEWLINE = re.compile("\n")
Span = tuple[int, int, str]  # (start, end, replacement) of one match
Spans = Callable[[re.Match[str]], Span | None]


def first(text: str, pattern: re.Pattern[str]) -> Callable[[int], re.Match[str] | None]:
    """``at(pos)``: the first match of ``pattern`` in ``text`` at or after ``pos``; the last answer is kept while it
    is still ahead, so queries that move forward read the text about once however many openers ask."""
    since, hit = len(text) + 1, None

    def at(pos: int) -> re.Match[str] | None:
        nonlocal since, hit
        if pos < since or (hit is not None and hit.start() < pos):
            since, hit = pos, search(pattern, text, pos)
        return hit

    return at


def sub(text: str, opener: re.Pattern[str], make_spans: Callable[[str], Spans]) -> str:
    """``re.sub`` of one inline construct, in one pass: ``make_spans(text)`` gives ``spans(m)``, the match found
    at opener match ``m`` or None.  As in ``re.sub``, a failed opener is retried one character on, matching resumes
    after a match, and look-arounds see the original text."""
    m = search(opener, text, 0)
    if m is None:
        return text
    spans = make_spans(text)
    out: list[str] = []
    done = 0
    while m is not None:
        hit = spans(m)
        if hit is None:
            m = search(opener, text, m.start() + 1)
            continue
        start, end, repl = hit
        out += (text[done:start], repl)
        done = end
        m = search(opener, text, end)
    out.append(text[done:])
    return "".join(out)
