"""HTML (``.html``, ``.htm``) with the stdlib ``html.parser``.

Each ``<p>``, ``<li>`` and ``<dd>`` - more exactly, each run of text between
block-level tag boundaries - is one unit, so ``<li><p>x</p></li>`` gives one
unit and nested lists give one per item.  Removed with their contents:
``<head>``, ``<script>``, ``<style>``, ``<pre>``, ``<table>``, ``<nav>``,
``<header>``, ``<footer>``, ``<aside>``, ``<form>``, ``<figure>``, headings
(the first ``<h1>`` becomes the title), ``<dt>`` (in Sphinx output it is an
API signature; elsewhere a short term), the headerlink ``¶`` anchors, and any
element whose class or role marks it as navigation or code
(``sphinxsidebar``, ``related``, ``footer``, ``toctree-wrapper``,
``highlight*``, ``role=navigation``...).  Inline ``<code>`` inside a paragraph
is kept as text, since removing it would leave sentences with holes.  When
the page has a main region (``<main>``, ``role="main"`` or Sphinx's
``div.body``) only text inside it is kept.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from lvmbench.data.corpus.textutils import normalise_ws

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_BLOCK = {"p", "li", "dd", "dt", "div", "section", "article", "main", "blockquote", "ul", "ol", "dl", "tr", "td", "th",
          "h1", "h2", "h3", "h4", "h5", "h6", "figcaption", "caption", "body", "html", "address", "details", "summary",
          "fieldset", "legend", "center", "hgroup"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_SKIP_TAGS = {"head", "script", "style", "pre", "table", "nav", "header", "footer", "aside", "form", "noscript",
              "svg", "math", "button", "select", "textarea", "template", "iframe", "object", "canvas", "figure",
              "dt", "xmp", "listing"}
_SKIP_CLASSES = {"sphinxsidebar", "sphinxsidebarwrapper", "related", "footer", "header", "headerlink",
                 "toctree-wrapper", "mobile-nav", "menu-wrapper", "navigation", "nav", "navbar", "sidebar",
                 "breadcrumbs", "inline-search", "searchbox", "version_switcher_placeholder",
                 "language_switcher_placeholder", "doctest", "literal-block", "code-block", "codehilite",
                 "sourcecode", "sourceCode", "linenodiv", "toc", "bodyfooter", "footnote-reference"}
_SKIP_ROLES = {"navigation", "search", "banner", "contentinfo", "complementary"}


def _classify(tag: str, attrs: list[tuple[str, str | None]]) -> tuple[bool, bool]:
    """``(skip, main)`` of an element: dropped with its contents / opens the page's main region."""
    a = {k: (v or "") for k, v in attrs}
    classes = set(a.get("class", "").split())
    role = a.get("role", "").strip().lower()
    skip = (
        tag in _SKIP_TAGS
        or bool(classes & _SKIP_CLASSES)
        or any(c.startswith("highlight") for c in classes)
        or role in _SKIP_ROLES
    )
    main = tag == "main" or role == "main" or (tag == "div" and "body" in classes)
    return skip, main


class _HTMLUnits(HTMLParser):
    """Collects ``(text, inside main region)`` runs between block boundaries, plus title candidates."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, skip, main)
        self.buf: list[str] = []
        self.units: list[tuple[str, bool]] = []  # (text, inside main region)
        self.saw_main = False
        self.heading: list[str] | None = None
        self.h1: str | None = None
        self.first_heading: str | None = None
        self.title_parts: list[str] | None = None
        self.title = ""

    @property
    def skipping(self) -> bool:
        return any(skip for _, skip, _ in self.stack)

    @property
    def in_main(self) -> bool:
        return any(main for _, _, main in self.stack)

    def flush(self) -> None:
        text = normalise_ws("".join(self.buf))
        self.buf = []
        if text:
            self.units.append((text, self.in_main))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.title_parts = []
        if tag in _VOID:
            if tag == "br":
                self.buf.append(" ")
            elif tag == "hr":
                self.flush()
            return
        skip, main = _classify(tag, attrs)
        if tag in _BLOCK:
            if self.stack and self.stack[-1][0] == "p":  # a block start closes an open <p>
                self.flush()
                self.stack.pop()
            self.flush()
        self.stack.append((tag, skip, main))
        if main and not self.skipping:
            self.saw_main = True
        if tag in _HEADINGS and not self.skipping:
            self.heading = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.title_parts is not None:
            self.title = normalise_ws("".join(self.title_parts))
            self.title_parts = None
        if tag in _VOID:
            return
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                break
        else:
            return  # stray end tag
        if any(t in _BLOCK for t, _, _ in self.stack[i:]):
            self.flush()
        if tag in _HEADINGS and self.heading is not None:
            self._end_heading(tag)
        del self.stack[i:]

    def _end_heading(self, tag: str) -> None:
        text = normalise_ws("".join(self.heading or []))
        if text:
            self.first_heading = self.first_heading or text
            if tag == "h1" and self.h1 is None:
                self.h1 = text
        self.heading = None

    def handle_data(self, data: str) -> None:
        if self.title_parts is not None:
            self.title_parts.append(data)
        if self.skipping:
            return
        if self.heading is not None:
            self.heading.append(data)
            return
        self.buf.append(data)


def parse_html(text: str) -> tuple[str, list[str]]:
    """``(title, paragraphs)`` of an HTML page; see the module docstring for what is kept."""
    p = _HTMLUnits()
    p.feed(text)
    p.close()
    p.flush()
    units = [t for t, main in p.units if main or not p.saw_main]
    title = p.h1 or p.first_heading or re.split(r"\s+[\u2014|\u2013-]\s+", p.title)[0]
    return title, units
