"""The one record every source is read into, and every later step works on."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Document:
    """One document = one chain.

    ``paragraphs`` is what the parser found; ``units`` is what survives the
    filters (paragraphs or sentences) and is what gets encoded, in order.
    """

    id: str
    title: str
    paragraphs: list[str]
    units: list[str] = field(default_factory=list)
