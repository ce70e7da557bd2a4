"""Plain text (``.txt``): blank-line-separated blocks, whitespace normalised."""

from __future__ import annotations

import re

from lvmbench.data.corpus.textutils import normalise_ws


def parse_text(text: str) -> tuple[str, list[str]]:
    """``("", paragraphs)``: plain text has no title; the file name stands in for it."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return "", [t for t in (normalise_ws(b) for b in blocks) if t]
