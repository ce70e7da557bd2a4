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

Unclosed elements are closed as HTML implies: a new ``<li>`` closes the open
item of its list, ``<dt>``/``<dd>`` close each other, ``<td>``/``<th>`` the
open cell, ``<tr>`` the open row, ``<option>`` an open option (never past a
list, section, cell or other scope barrier), and a block start closes an
open ``<p>`` just above it.  So ``<ul><li>a<li>b...`` builds no deep stack,
and ``<dt>term<dd>text`` keeps ``text`` (nested in the skipped ``<dt>`` it
used to be dropped).  Each event costs O(1) (``_OpenElements``), so a page
parses in time linear in its size, however deeply it nests.

A construct still open at the end of the page - an unclosed comment, tag,
``<?``, ``<!...`` or ``<![CDATA[`` - runs to the end of the page, as in
HTML parsing (``_HTMLUnits.close``); Python 3.11's parser re-read each one
as text and rescanned the rest of the page from the next ``<``, quadratic
time (CVE-2025-6069: 240 KB of ``<!--`` took 3.8 s, 120 KB of ``<a b`` 97 s).

``<![`` followed by anything but a keyword the stdlib knows (``<![foo[``)
made the stdlib parser raise ``AssertionError`` and the whole build stop
with a traceback; it is a bogus comment up to the next ``>``, as in HTML.
Any other refusal by the stdlib parser is one ``DataError`` line.
"""

from __future__ import annotations

import re
import sys
from array import array
from html.parser import HTMLParser

from lvmbench.data.corpus.textutils import normalise_ws
from lvmbench.errors import DataError

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
# HTML's "special" elements less address, div and p: an implied end tag never reaches past one of them.
_SCOPE = {"applet", "area", "article", "aside", "base", "basefont", "bgsound", "blockquote", "body", "br", "button",
          "caption", "center", "col", "colgroup", "dd", "details", "dir", "dl", "dt", "embed", "fieldset",
          "figcaption", "figure", "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head",
          "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link", "listing", "main",
          "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript", "object", "ol", "param", "plaintext",
          "pre", "script", "search", "section", "select", "source", "style", "summary", "table", "tbody", "td",
          "template", "textarea", "tfoot", "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp"}
# start tag -> the open elements it closes when one of them is the innermost scope barrier
_IMPLIED_BY = {"li": {"li"}, "dd": {"dd", "dt"}, "dt": {"dd", "dt"}, "td": {"td", "th"}, "th": {"td", "th"},
               "tr": {"td", "th", "tr"}}


def _classify(tag: str, attrs: list[tuple[str, str | None]]) -> tuple[bool, bool]:
    """``(skip, main)`` of an element: dropped with its contents / opens the page's main region."""
    if not attrs:
        return tag in _SKIP_TAGS, tag == "main"
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


class _OpenElements:
    """The stack of open elements, with counters kept on every push and pop.

    Every question the parser asks per event (inside a skipped element? inside
    the main region? where is the innermost open ``<div>``? is a block open
    at or above position i? which scope barrier is innermost?) is answered
    from these counters in O(1), and each element is pushed and popped once,
    so a page is parsed in time linear in its size however deep it nests
    (scanning the stack per event took 403 s for an 8 MB page).  Positions
    and flags live in arrays and tag names are interned, so an open element
    costs about 30 bytes.
    """

    def __init__(self) -> None:
        self.tags: list[str] = []
        self.flags = array("b")  # per open element: 1 if skipped, + 2 if it opens the main region
        self.at: dict[str, array[int]] = {}  # tag -> positions where it is open, innermost last
        self.blocks = array("q")  # positions of open block elements
        self.barriers = array("q")  # positions of open scope barriers (_SCOPE)
        self.n_skip = 0
        self.n_main = 0

    def top(self) -> str | None:
        return self.tags[-1] if self.tags else None

    def push(self, tag: str, skip: bool, main: bool) -> None:
        pos = len(self.tags)
        tag = sys.intern(tag)
        self.tags.append(tag)
        self.flags.append(skip + 2 * main)
        where = self.at.get(tag)
        if where is None:
            where = self.at[tag] = array("q")
        where.append(pos)
        if tag in _BLOCK:
            self.blocks.append(pos)
        if tag in _SCOPE:
            self.barriers.append(pos)
        self.n_skip += skip
        self.n_main += main

    def pop(self) -> None:
        tag = self.tags.pop()
        flags = self.flags.pop()
        self.at[tag].pop()
        if tag in _BLOCK:
            self.blocks.pop()
        if tag in _SCOPE:
            self.barriers.pop()
        self.n_skip -= flags & 1
        self.n_main -= flags >> 1

    def pop_to(self, pos: int) -> None:
        """Close the element at ``pos`` and everything opened inside it."""
        while len(self.tags) > pos:
            self.pop()

    def innermost(self, tag: str) -> int | None:
        """Position of the innermost open ``tag``, or None."""
        where = self.at.get(tag)
        return where[-1] if where else None

    def block_at_or_above(self, pos: int) -> bool:
        return bool(self.blocks) and self.blocks[-1] >= pos

    def barrier(self) -> tuple[str, int] | None:
        """The innermost open scope barrier as ``(tag, position)``, or None."""
        return (self.tags[self.barriers[-1]], self.barriers[-1]) if self.barriers else None

    def close_implied(self, tag: str) -> None:
        """HTML's implied end tags for a start tag: a new ``<li>`` closes the open ``<li>`` of its list...

        As in the HTML parsing algorithm, the search stops at the innermost
        scope barrier (a list, a section, a table cell...), so a nested list's
        ``<li>`` never closes its parent item; ``<div>``, ``<p>`` and inline
        elements in between are closed with the item.
        """
        closes = _IMPLIED_BY.get(tag)
        if closes:
            b = self.barrier()
            while b is not None and b[0] in closes:
                self.pop_to(b[1])
                b = self.barrier()
        elif tag in ("option", "optgroup"):
            while self.top() == "option" or (tag == "optgroup" and self.top() == "optgroup"):
                self.pop()


class _HTMLUnits(HTMLParser):
    """Collects text runs between block boundaries (each marked inside the main region or not), plus titles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack = _OpenElements()
        self.buf: list[str] = []
        self.units: list[str] = []
        self.unit_in_main: list[bool] = []  # per unit: found inside the main region
        self.saw_main = False
        self.heading: list[str] | None = None
        self.h1: str | None = None
        self.first_heading: str | None = None
        self.title_parts: list[str] | None = None
        self.title = ""
        self.at_eof = False  # set by close(): no more input will come

    def close(self) -> None:
        self.at_eof = True
        super().close()

    def _runs_to_end(self, k: int) -> int:
        """The end of the construct the stdlib parser found (``k``), or, at the end of input where it found none,
        the end of the page: the stdlib turned it into text and rescanned the rest of the page from the next
        ``<`` (once per unclosed construct: quadratic), where HTML parsing swallows the rest of the page."""
        return len(self.rawdata) if k < 0 and self.at_eof else k

    def parse_comment(self, i: int, report: int = 1) -> int:
        return self._runs_to_end(super().parse_comment(i, report))

    def parse_html_declaration(self, i: int) -> int:  # <!doctype, <![CDATA[, other <! (bogus comments)
        pos = self.getpos()
        try:
            k = super().parse_html_declaration(i)
        except AssertionError:  # <![ without a keyword the stdlib knows (<![foo[, <![ x): a bogus comment, as in HTML
            self.lineno, self.offset = pos  # the stdlib moved them before raising
            k = self.parse_bogus_comment(i)
        return self._runs_to_end(k)

    def parse_pi(self, i: int) -> int:
        return self._runs_to_end(super().parse_pi(i))

    def parse_starttag(self, i: int) -> int:
        return self._runs_to_end(super().parse_starttag(i))

    def parse_endtag(self, i: int) -> int:
        return self._runs_to_end(super().parse_endtag(i))

    @property
    def skipping(self) -> bool:
        return self.stack.n_skip > 0

    @property
    def in_main(self) -> bool:
        return self.stack.n_main > 0

    def flush(self) -> None:
        if not self.buf:
            return
        text = normalise_ws("".join(self.buf))
        self.buf = []
        if text:
            self.units.append(text)
            self.unit_in_main.append(self.in_main)

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
            if self.stack.top() == "p":  # a block start closes an open <p>
                self.flush()
                self.stack.pop()
            self.flush()
        self.stack.close_implied(tag)
        self.stack.push(tag, skip, main)
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
        i = self.stack.innermost(tag)
        if i is None:
            return  # stray end tag
        if self.stack.block_at_or_above(i):
            self.flush()
        if tag in _HEADINGS and self.heading is not None:
            self._end_heading(tag)
        self.stack.pop_to(i)

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
    try:
        p.feed(text)
        p.close()
    except AssertionError as exc:  # how the stdlib parser refuses markup: one error line, not a traceback
        line, col = p.getpos()
        raise DataError(f"HTML parser cannot read the page near line {line}, column {col + 1}: "
                        f"{' '.join(str(exc).split())}") from None
    p.flush()
    units = [t for t, main in zip(p.units, p.unit_in_main) if main] if p.saw_main else p.units
    title = p.h1 or p.first_heading or re.split(r"\s+[\u2014|\u2013-]\s+", p.title)[0]
    return title, units
