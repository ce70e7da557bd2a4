"""Build a chain store from real text: one document = one chain.

Sources
    ``SRC`` is a folder or a JSONL file.  A folder is walked for ``.txt``,
    ``.md``/``.markdown``, ``.rst`` and ``.html``/``.htm`` files, each also
    accepted gzip-compressed (``foo.html.gz``); hidden files and folders are
    skipped; documents are taken in sorted relative-path order (POSIX
    separators), so a build is deterministic.  ``--include``/``--exclude`` are
    shell globs (``fnmatch``, ``*`` crosses ``/``) matched against the relative
    path with and without its ``.gz``.  A JSONL file holds one document per
    line, ``{"id", "title", "paragraphs": [...]}``, taken in line order with
    the paragraphs used as given (only whitespace is normalised).

Paragraph units (the order inside a document is kept exactly)
    HTML (stdlib ``html.parser``): each ``<p>``, ``<li>`` and ``<dd>`` - more
    exactly, each run of text between block-level tag boundaries - is one
    unit, so ``<li><p>x</p></li>`` gives one unit and nested lists give one
    per item.  Removed with their contents: ``<head>``, ``<script>``,
    ``<style>``, ``<pre>``, ``<table>``, ``<nav>``, ``<header>``, ``<footer>``,
    ``<aside>``, ``<form>``, ``<figure>``, headings (the first ``<h1>`` becomes
    the title), ``<dt>`` (in Sphinx output it is an API signature; elsewhere a
    short term), the headerlink ``¶`` anchors, and any element whose class or
    role marks it as navigation or code (``sphinxsidebar``, ``related``,
    ``footer``, ``toctree-wrapper``, ``highlight*``, ``role=navigation``...).
    Inline ``<code>`` inside a paragraph is kept as text, since removing it
    would leave sentences with holes.  When the page has a main region
    (``<main>``, ``role="main"`` or Sphinx's ``div.body``) only text inside it
    is kept.
    Markdown: blank-line-separated blocks; each list item is its own unit;
    removed: fenced and indented code, tables, headings (first one is the
    title), HTML comments and tags, link targets, images, front matter;
    inline links/emphasis/code keep their text.
    reStructuredText: blank-line-separated blocks; each list item is its own
    unit; removed: section titles (first one is the title), literal blocks
    after ``::``, doctest blocks, grid and simple tables, comments and
    targets, and directives whose body is not prose (``code-block``,
    ``literalinclude``, ``toctree``, ``image``, ``table``, ``math``...).
    Other directives (``note``, ``function``, ``versionchanged``...) lose
    their marker line and options and keep their body.  Roles, literals and
    references keep their text (``:func:`~a.b``` -> ``b``).
    Plain text: blank-line-separated blocks.

Sentence units (``--unit sentence``)
    Each paragraph is split after ``.``, ``!``, ``?`` or ``…`` (plus any
    closing quotes/brackets) followed by whitespace and an upper-case letter,
    digit, quote or bracket - except after a single letter or one of a few
    abbreviations (``e.g.``, ``i.e.``, ``cf.``, ``vs.``, ``Mr.``, ``Dr.``,
    ``Fig.``, ``No.``...).  No language model, no nltk.

Filters, in this order (all counted in the report and the manifest)
    1. units with fewer than ``min_words`` whitespace-separated words go;
    2. documents with fewer than ``min_paragraphs`` units go (``min_paragraphs``
       counts units, sentences in sentence mode), and with ``max_paragraphs``
       set, documents with more units than that go too (a compute budget: the
       recurrent models' cost grows with the context length a document allows);
    3. ``max_docs`` keeps the first N remaining documents;
    4. a unit text (whitespace-normalised, case-sensitive) that occurs in two
       or more of the kept documents is boilerplate: every occurrence goes;
       repeats inside one document stay;
    5. documents that fell below ``min_paragraphs`` through step 4 go.

Encoding cache
    Vectors are cached per document in ``<out>.cache/`` (or ``cache_dir``)
    as ``<sha256(encoder id + unit texts)>.npy`` float32 files written
    atomically, so an interrupted build resumes where it stopped and a
    rebuild with other filters re-encodes only what changed.  The default
    cache is deleted after a successful build; an explicit ``cache_dir`` is
    kept.

Output
    A chain store (``write_store``) plus ``texts.jsonl.gz``: one line per chain,
    ``{"id", "title", "units": [...]}``, whose sha256 is in the manifest, so
    every vector can be traced to its text (``load_texts``).
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import html
import io
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from lvmbench.data.encoders import Encoder, available_encoders, get_encoder
from lvmbench.data.store import ChainStore, write_store
from lvmbench.errors import DataError, UsageError
from lvmbench.io import atomic_save_npy, atomic_write

CORPUS_VERSION = 1  # bump when parsing or filtering changes the units produced
TEXTS = "texts.jsonl.gz"
SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".html": "html", ".htm": "html"}
ENCODE_GROUP = 512  # texts per encoder call (and per progress update / cache flush)


@dataclass
class Document:
    id: str
    title: str
    paragraphs: list[str]
    units: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- text utilities

_WS = re.compile(r"\s+")


def normalise_ws(text: str) -> str:
    return _WS.sub(" ", text).strip()


def n_words(text: str) -> int:
    return len(text.split())


_ABBREV = {"e.g", "i.e", "cf", "vs", "viz", "mr", "mrs", "ms", "dr", "prof", "st", "no", "nos", "fig", "figs",
           "approx", "al", "jr", "sr", "inc", "ltd", "resp", "ca", "eq", "sec", "ch", "vol", "pp"}
_SENT_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split one paragraph into sentences with the rule in the module docstring."""
    text = normalise_ws(text)
    out, start = [], 0
    for m in _SENT_END.finditer(text):
        head = text[start : m.start()]
        last = head.split()[-1] if head.split() else ""
        word = last.lstrip("\"'(\u201c\u2018[").rstrip(".")
        if text[m.start()] == "." and (word.lower() in _ABBREV or (len(word) == 1 and word.isalpha())):
            continue
        piece = text[start : m.end()].strip()
        if piece:
            out.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


# --------------------------------------------------------------------------- HTML

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


class _HTMLUnits(HTMLParser):
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
            text = normalise_ws("".join(self.heading))
            if text:
                self.first_heading = self.first_heading or text
                if tag == "h1" and self.h1 is None:
                    self.h1 = text
            self.heading = None
        del self.stack[i:]

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


# --------------------------------------------------------------------------- Markdown

_MD_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_MD_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
_MD_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_MD_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_MD_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*$")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(.*)$")
_MD_LINKDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def md_inline(text: str) -> str:
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # images
    text = re.sub(r"\[\^[^\]]*\]", "", text)  # footnote refs
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # inline links
    text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)  # reference links
    text = re.sub(r"<https?://[^>]+>", "", text)  # autolinks
    text = re.sub(r"<!--.*?-->", "", text)
    text = re.sub(r"</?[A-Za-z][^>]*>", "", text)  # inline HTML tags
    text = re.sub(r"(`+)(.+?)\1", lambda m: m.group(2).strip(), text)  # inline code keeps its text
    text = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)", r"\1", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|>])", r"\1", text)
    return normalise_ws(html.unescape(text))


def parse_markdown(text: str) -> tuple[str, list[str]]:
    lines = text.splitlines()
    i, n = 0, len(lines)
    if lines and lines[0].strip() == "---":  # YAML front matter
        for j in range(1, n):
            if lines[j].strip() in ("---", "..."):
                i = j + 1
                break
    units: list[str] = []
    cur: list[str] = []
    title = ""
    prev_blank, in_list = True, False

    def flush() -> None:
        nonlocal cur
        t = md_inline(" ".join(cur))
        if t:
            units.append(t)
        cur = []

    while i < n:
        line = lines[i]
        s = line.strip()
        if not s:
            flush()
            prev_blank = True
            i += 1
            continue
        fence = _MD_FENCE.match(line)
        if fence:
            flush()
            mark = fence.group(1)
            i += 1
            while i < n and not lines[i].strip().startswith(mark[0] * len(mark)):
                i += 1
            i += 1
            prev_blank = True
            continue
        if s.startswith("<!--"):
            flush()
            while i < n and "-->" not in lines[i]:
                i += 1
            i += 1
            continue
        atx = _MD_ATX.match(line)
        if atx:
            flush()
            heading = md_inline(atx.group(2) or "")
            if heading and (not title or (atx.group(1) == "#" and not units)):
                title = title or heading
            i += 1
            prev_blank, in_list = True, False
            continue
        if not cur and i + 1 < n and _MD_SETEXT.match(lines[i + 1]) and not _MD_LIST.match(line):
            flush()
            title = title or md_inline(s)
            i += 2
            prev_blank, in_list = True, False
            continue
        if _MD_RULE.match(line):
            flush()
            i += 1
            prev_blank = True
            continue
        if "|" in line and i + 1 < n and _MD_TABLE_SEP.match(lines[i + 1]):
            flush()
            while i < n and lines[i].strip():
                i += 1
            continue
        if prev_blank and _indent(line) >= 4 and not in_list:  # indented code block
            flush()
            while i < n and (not lines[i].strip() or _indent(lines[i]) >= 4):
                i += 1
            continue
        if _MD_LINKDEF.match(line) or re.match(r"^\s*\[\^[^\]]+\]:", line):
            flush()
            i += 1
            continue
        while re.match(r"^\s*>", line):  # block quote markers
            line = re.sub(r"^\s*>\s?", "", line, count=1)
        item = _MD_LIST.match(line)
        if item:
            flush()
            cur = [item.group(1)]
            in_list = True
        else:
            if prev_blank and _indent(line) < 2:
                in_list = False
            cur.append(line.strip())
        prev_blank = False
        i += 1
    flush()
    return title, units


# --------------------------------------------------------------------------- reStructuredText

_RST_ADORN = r"[=\-~^\"'`#*+:.<>_!$%&,/;?@\\|]"
_RST_UNDERLINE = re.compile(rf"^({_RST_ADORN})\1{{2,}}\s*$")
_RST_ADORN_LINE = re.compile(rf"^({_RST_ADORN})\1*$")
_RST_DIRECTIVE = re.compile(r"^\s*\.\.\s+([\w:.+-]+)::(.*)$")
_RST_EXPLICIT = re.compile(r"^\s*\.\.(\s|$)")
_RST_GRID = re.compile(r"^\s*\+[-=+]+\+\s*$")
_RST_SIMPLE_TABLE = re.compile(r"^\s*=+(\s+=+)+\s*$")
_RST_LIST = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,9}[.)]|#\.|\(\d{1,9}\))\s+(.*)$")
_RST_FIELD = re.compile(r"^\s*:([^:\s][^:]*):(\s+|$)")
_RST_DROP = {
    "code", "code-block", "sourcecode", "literalinclude", "highlight", "doctest", "testcode", "testoutput",
    "testsetup", "testcleanup", "productionlist", "toctree", "image", "figure", "table", "csv-table",
    "list-table", "math", "raw", "include", "index", "contents", "sectnum", "autosummary", "automodule",
    "autoclass", "autofunction", "automethod", "autodata", "autoattribute", "autoexception", "graphviz",
    "digraph", "plot", "tabularcolumns", "parsed-literal", "meta", "moduleauthor", "sectionauthor",
    "currentmodule", "default-role", "role", "replace", "unicode", "date", "audit-event-table", "program",
    "option", "cmdoption", "envvar", "describe", "opcode", "pdbcommand", "2to3fixer", "c:macro", "c:var",
    "c:type", "c:member", "highlightlang", "only", "ifconfig", "impl-detail", "literal", "sidebar", "rubric",
    "centered", "hlist", "topic", "line-block", "container", "compound", "epigraph", "pull-quote", "highlights",
}

_RST_SIGNATURE = {
    "function", "method", "class", "attribute", "data", "exception", "decorator", "decoratormethod",
    "classmethod", "staticmethod", "module", "member", "macro", "type", "var", "property", "coroutinefunction",
    "coroutinemethod", "abstractmethod", "awaitablefunction", "awaitablemethod", "enum", "enumerator",
}


def rst_inline(text: str) -> str:
    def role(m: re.Match[str]) -> str:
        body = m.group(1)
        target = re.match(r"^(.*?)\s*<[^<>]+>$", body)
        if target and target.group(1):
            body = target.group(1)
        body = body.lstrip("!")
        if body.startswith("~"):
            body = body[1:].split(".")[-1]
        return body

    text = re.sub(r"(?<=\w)__?(?=\s|$|[.,;:!?)\]'\"])", "", text)  # word_ references (before literals)
    text = re.sub(r"\s*\[(?:#[\w-]*|\*|\d+|[A-Za-z][\w-]*)\]_", "", text)  # footnote/citation refs
    text = re.sub(r":(pep|rfc):`(\d+)[^`]*`", lambda m: f"{m.group(1).upper()} {m.group(2)}", text)
    text = re.sub(r":[\w.+-]+(?::[\w.+-]+)*:`([^`]+)`", role, text)  # :role:`...`
    text = re.sub(r"`([^`<]*?)\s*<[^`>]*>`__?", r"\1", text)  # `text <url>`_
    text = re.sub(r"`([^`]+)`__?", r"\1", text)  # `ref`_
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    text = re.sub(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"\|([\w -]+)\|_{0,2}", r"\1", text)  # substitution refs
    text = text.replace("\\ ", "")
    text = re.sub(r"\\(.)", r"\1", text)
    return normalise_ws(text)


def _dedent(lines: list[str]) -> list[str]:
    ind = [_indent(x) for x in lines if x.strip()]
    cut = min(ind) if ind else 0
    return [x.expandtabs(4)[cut:] if x.strip() else "" for x in lines]


def _rst_blocks(lines: list[str], units: list[str], titles: list[str]) -> None:
    i, n = 0, len(lines)
    cur: list[str] = []
    cur_indent = 0
    cur_is_item = False
    literal_after: int | None = None  # indent of a paragraph that ended with '::'

    def flush() -> None:
        nonlocal cur, literal_after, cur_is_item
        if not cur:
            return
        text = " ".join(cur)
        if text.rstrip().endswith("::"):
            literal_after = cur_indent
            stripped = text.rstrip()[:-2]
            text = stripped + ":" if stripped and not stripped[-1].isspace() else stripped
        t = rst_inline(text)
        if t:
            units.append(t)
        cur, cur_is_item = [], False

    while i < n:
        line = lines[i]
        s = line.strip()
        if not s:
            flush()
            i += 1
            continue
        ind = _indent(line)
        if literal_after is not None and not cur:
            if ind > literal_after:  # indented literal block after '::'
                while i < n and (not lines[i].strip() or _indent(lines[i]) > literal_after):
                    i += 1
                literal_after = None
                continue
            literal_after = None
        if _RST_EXPLICIT.match(line):  # directive, comment, target, substitution definition
            flush()
            d = _RST_DIRECTIVE.match(line)
            j = i + 1
            while j < n and (not lines[j].strip() or _indent(lines[j]) > ind):
                j += 1
            body = lines[i + 1 : j]
            if d and d.group(1).lower() not in _RST_DROP and not line.lstrip().startswith(".. |"):
                k = 0
                if d.group(1).lower().split(":")[-1] in _RST_SIGNATURE:
                    while k < len(body) and body[k].strip():  # signature continuation lines and options
                        k += 1
                while k < len(body) and body[k].strip() and _RST_FIELD.match(body[k]):  # options
                    k += 1
                _rst_blocks(_dedent(body[k:]), units, titles)
            i = j
            continue
        if s.startswith(">>>"):  # doctest block
            flush()
            while i < n and lines[i].strip():
                i += 1
            continue
        if _RST_GRID.match(line):
            flush()
            while i < n and lines[i].strip():
                i += 1
            continue
        if _RST_SIMPLE_TABLE.match(line):
            flush()
            i += 1
            while i < n and not (_RST_SIMPLE_TABLE.match(lines[i]) and (i + 1 == n or not lines[i + 1].strip())):
                i += 1
            i += 1
            continue
        if _RST_UNDERLINE.match(s) and not cur:  # overline + title + underline, or a transition
            if i + 2 < n and lines[i + 1].strip() and _RST_UNDERLINE.match(lines[i + 2].strip()):
                titles.append(rst_inline(lines[i + 1]))
                i += 3
            else:
                i += 1
            continue
        under = lines[i + 1].strip() if i + 1 < n else ""
        if not cur and _RST_ADORN_LINE.match(under) and (len(under) >= len(s) or len(under) >= 4):
            titles.append(rst_inline(s))
            i += 2
            continue
        item = _RST_LIST.match(line)
        if item:
            flush()
            cur, cur_indent, cur_is_item = [item.group(1)], ind, True
        elif cur and not cur_is_item and len(cur) == 1 and ind > cur_indent:  # definition-list term
            flush()
            cur, cur_indent = [s], ind
        else:
            if not cur:
                cur_indent = ind
            field_m = _RST_FIELD.match(s) if not cur else None
            if field_m:  # field list ":param x: text" keeps its text
                s = s[field_m.end() :]
            elif s.startswith("| "):  # line block
                s = s[2:]
            cur.append(s)
        i += 1
    flush()


def parse_rst(text: str) -> tuple[str, list[str]]:
    units: list[str] = []
    titles: list[str] = []
    _rst_blocks(text.splitlines(), units, titles)
    return (titles[0] if titles else ""), units


# --------------------------------------------------------------------------- plain text, JSONL

def parse_text(text: str) -> tuple[str, list[str]]:
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return "", [t for t in (normalise_ws(b) for b in blocks) if t]


_PARSERS = {"text": parse_text, "markdown": parse_markdown, "rst": parse_rst, "html": parse_html}


def read_jsonl(path: str | Path) -> list[Document]:
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    docs: list[Document] = []
    seen: set[str] = set()
    try:
        with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
                if not isinstance(obj, dict) or not isinstance(obj.get("paragraphs"), list):
                    raise DataError(f"{path}:{lineno}: expected an object with a 'paragraphs' list")
                if not all(isinstance(p, str) for p in obj["paragraphs"]):
                    raise DataError(f"{path}:{lineno}: every entry of 'paragraphs' must be a string")
                doc_id = str(obj.get("id", f"line-{lineno}"))
                if doc_id in seen:
                    raise DataError(f"{path}:{lineno}: duplicate document id {doc_id!r}")
                seen.add(doc_id)
                paras = [t for t in (normalise_ws(p) for p in obj["paragraphs"]) if t]
                docs.append(Document(doc_id, str(obj.get("title", "") or ""), paras))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    return docs


# --------------------------------------------------------------------------- discovery

def _kind(rel: str) -> str | None:
    base = rel[:-3] if rel.endswith(".gz") else rel
    return SUFFIXES.get(os.path.splitext(base)[1].lower())


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    names = {rel, rel[:-3]} if rel.endswith(".gz") else {rel}
    return any(fnmatch.fnmatchcase(name, pat) for name in names for pat in patterns)


def discover(src: str | Path, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None) -> list[str]:
    """Relative POSIX paths of the documents under ``src``, sorted."""
    src = Path(src)
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            rel = (Path(root) / name).relative_to(src).as_posix()
            if _kind(rel) is None:
                continue
            if include and not _matches(rel, include):
                continue
            if exclude and _matches(rel, exclude):
                continue
            found.append(rel)
    return sorted(found)


def read_document(path: str | Path, rel: str | None = None) -> Document:
    """Parse one file (by its extension, ``.gz`` allowed) into a Document."""
    path = Path(path)
    rel = rel or path.name
    kind = _kind(path.name)
    if kind is None:
        raise DataError(f"{path}: unsupported document type (use .txt, .md, .rst, .html, optionally .gz)")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    title, paras = _PARSERS[kind](text)
    stem = rel[:-3] if rel.endswith(".gz") else rel
    return Document(rel, title or Path(stem).stem, paras)


def load_documents(
    src: str | Path, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
) -> tuple[list[Document], str]:
    """All documents of ``src`` (folder or JSONL) in build order, and the source kind."""
    src = Path(src)
    if src.is_file():
        base = src.name[:-3] if src.name.endswith(".gz") else src.name
        if base.endswith((".jsonl", ".json", ".ndjson")):
            docs = read_jsonl(src)
            if include or exclude:
                docs = [d for d in docs if (not include or _matches(d.id, include))
                        and not (exclude and _matches(d.id, exclude))]
            return docs, "jsonl"
        return [read_document(src, src.name)], "file"
    if not src.is_dir():
        raise DataError(f"{src}: source not found (expected a folder of documents or a .jsonl file)")
    rels = discover(src, include, exclude)
    if not rels:
        raise DataError(
            f"{src}: no .txt/.md/.rst/.html documents found"
            + (f" matching include={list(include)}" if include else "")
            + (f" exclude={list(exclude)}" if exclude else "")
        )
    return [read_document(src / rel, rel) for rel in rels], "folder"


# --------------------------------------------------------------------------- selection

def select_units(
    docs: list[Document],
    unit: str = "paragraph",
    min_words: int = 8,
    min_paragraphs: int = 7,
    max_docs: int | None = None,
    max_paragraphs: int | None = None,
) -> tuple[list[Document], dict[str, Any]]:
    """Apply the five filters of the module docstring; fills ``Document.units``."""
    if unit not in ("paragraph", "sentence"):
        raise UsageError(f"unit must be 'paragraph' or 'sentence', got {unit!r}")
    if min_words < 0 or min_paragraphs < 1 or (max_docs is not None and max_docs < 1):
        raise UsageError("need min_words >= 0, min_paragraphs >= 1 and max_docs >= 1")
    if max_paragraphs is not None and max_paragraphs < min_paragraphs:
        raise UsageError(f"max_paragraphs ({max_paragraphs}) must be >= min_paragraphs ({min_paragraphs})")
    r: dict[str, Any] = {"documents_found": len(docs), "paragraphs_found": sum(len(d.paragraphs) for d in docs)}
    units_found = dropped_short = 0
    candidates = []
    short_docs: list[str] = []
    long_docs: list[str] = []
    for d in docs:
        raw = d.paragraphs if unit == "paragraph" else [s for p in d.paragraphs for s in split_sentences(p)]
        units_found += len(raw)
        kept = [u for u in raw if n_words(u) >= min_words]
        dropped_short += len(raw) - len(kept)
        if len(kept) < min_paragraphs:
            short_docs.append(d.id)
            continue
        if max_paragraphs is not None and len(kept) > max_paragraphs:
            long_docs.append(d.id)
            continue
        candidates.append(Document(d.id, d.title, d.paragraphs, kept))
    over = candidates[max_docs:] if max_docs is not None else []
    candidates = candidates[:max_docs] if max_docs is not None else candidates
    owners: dict[str, set[int]] = {}
    for k, d in enumerate(candidates):
        for u in d.units:
            owners.setdefault(u, set()).add(k)
    boiler = {u for u, ks in owners.items() if len(ks) >= 2}
    dropped_dup = 0
    kept_docs, short_after = [], []
    for d in candidates:
        units = [u for u in d.units if u not in boiler]
        dropped_dup += len(d.units) - len(units)
        if len(units) < min_paragraphs:
            short_after.append(d.id)
            continue
        kept_docs.append(Document(d.id, d.title, d.paragraphs, units))
    lengths = np.array([len(d.units) for d in kept_docs], dtype=np.int64)
    words = np.array([n_words(u) for d in kept_docs for u in d.units], dtype=np.int64)
    r.update(
        {
            "units_found": units_found,
            "dropped_short_units": dropped_short,
            "dropped_short_documents": len(short_docs),
            "dropped_long_documents": len(long_docs),
            "documents_over_max_docs": len(over),
            "dropped_duplicate_units": dropped_dup,
            "duplicate_texts": len(boiler),
            "dropped_short_documents_after_dedup": len(short_after),
            "documents_kept": len(kept_docs),
            "units_kept": int(lengths.sum()) if len(lengths) else 0,
            "units_per_document": _distribution(lengths),
            "words_per_unit": _distribution(words),
        }
    )
    return kept_docs, r


def _distribution(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"min": 0, "p10": 0, "p25": 0, "median": 0, "p75": 0, "p90": 0, "max": 0, "mean": 0.0}
    q = np.percentile(x, [10, 25, 50, 75, 90])
    return {"min": int(x.min()), "p10": float(q[0]), "p25": float(q[1]), "median": float(q[2]),
            "p75": float(q[3]), "p90": float(q[4]), "max": int(x.max()), "mean": round(float(x.mean()), 2)}


def scan_corpus(
    src: str | Path,
    unit: str = "paragraph",
    min_words: int = 8,
    min_paragraphs: int = 7,
    max_docs: int | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    max_paragraphs: int | None = None,
) -> tuple[list[Document], dict[str, Any]]:
    """Parse and filter without encoding: the kept documents and the counts."""
    docs, kind = load_documents(src, include, exclude)
    kept, report = select_units(docs, unit, min_words, min_paragraphs, max_docs, max_paragraphs)
    report = {"source": str(src), "source_kind": kind, **report}
    if not kept:
        raise DataError(
            f"{src}: no document kept ({report['documents_found']} found; {report['dropped_short_documents']} "
            f"had fewer than {min_paragraphs} units of >= {min_words} words)"
        )
    return kept, report


# --------------------------------------------------------------------------- encoding with a resumable cache

def _cache_key(encoder_name: str, texts: list[str]) -> str:
    return hashlib.sha256(json.dumps([encoder_name, texts], ensure_ascii=False).encode("utf-8")).hexdigest()


def _load_cached(path: Path, n: int, dim: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if arr.shape != (n, dim) or arr.dtype != np.float32 or not np.isfinite(arr).all():
        return None
    return arr


def encode_documents(
    docs: list[Document],
    encoder: Encoder,
    cache_dir: str | Path,
    batch_size: int = 64,
    progress: bool | None = None,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """One float32 [len(units), dim] array per document, cached per document in ``cache_dir``."""
    from tqdm import tqdm

    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    out: list[np.ndarray | None] = [None] * len(docs)
    keys = [_cache_key(encoder.name, d.units) for d in docs]
    todo = []
    for k, (d, key) in enumerate(zip(docs, keys)):
        out[k] = _load_cached(cache / f"{key}.npy", len(d.units), encoder.dim)
        if out[k] is None:
            todo.append(k)
    n_cached = sum(len(docs[k].units) for k in range(len(docs)) if out[k] is not None)
    n_todo = sum(len(docs[k].units) for k in todo)
    t0 = time.perf_counter()
    disable = None if progress is None else not progress
    with tqdm(total=n_todo, unit="text", desc="encoding", disable=disable) as bar:
        group: list[int] = []
        for pos, k in enumerate(todo):
            group.append(k)
            if sum(len(docs[g].units) for g in group) >= ENCODE_GROUP or pos == len(todo) - 1:
                texts = [u for g in group for u in docs[g].units]
                vecs = np.asarray(encoder.encode(texts, batch_size=batch_size), dtype=np.float32)
                if vecs.shape != (len(texts), encoder.dim):
                    raise DataError(f"encoder {encoder.name}: returned shape {vecs.shape}, expected "
                                    f"({len(texts)}, {encoder.dim})")
                start = 0
                for g in group:
                    m = len(docs[g].units)
                    out[g] = vecs[start : start + m]
                    atomic_save_npy(cache / f"{keys[g]}.npy", out[g])
                    start += m
                bar.update(len(texts))
                group = []
    seconds = time.perf_counter() - t0
    stats = {
        "encoded": n_todo,
        "from_cache": n_cached,
        "seconds": round(seconds, 2),
        "seconds_per_1000": round(1000 * seconds / n_todo, 2) if n_todo else None,
    }
    return [a for a in out if a is not None], stats


# --------------------------------------------------------------------------- build

def _texts_bytes(docs: list[Document]) -> bytes:
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for d in docs:
            gz.write((json.dumps({"id": d.id, "title": d.title, "units": d.units}, ensure_ascii=False) + "\n").encode())
    return raw.getvalue()


def build_corpus(
    src: str | Path,
    out: str | Path,
    encoder: str | Encoder = "minilm",
    unit: str = "paragraph",
    min_words: int = 8,
    min_paragraphs: int = 7,
    dtype: str = "float16",
    max_docs: int | None = None,
    include: Sequence[str] | None = None,
    overwrite: bool = False,
    cache_dir: str | Path | None = None,
    source_info: dict[str, Any] | None = None,
    license: str | None = None,
    exclude: Sequence[str] | None = None,
    name: str | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    save_texts: bool = True,
    progress: bool | None = None,
    max_paragraphs: int | None = None,
) -> tuple[ChainStore, dict[str, Any]]:
    """Parse ``src``, filter, encode (resumably) and write a chain store to ``out``."""
    out = Path(out)
    if dtype not in ("float16", "float32"):
        raise UsageError(f"dtype must be float16 or float32, got {dtype!r}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise DataError(f"{out}: directory exists and is not empty (pass --overwrite to replace it)")
    include = list(include) if include else None
    exclude = list(exclude) if exclude else None
    docs, report = scan_corpus(src, unit, min_words, min_paragraphs, max_docs, include, exclude, max_paragraphs)
    if isinstance(encoder, str):
        encoder = get_encoder(encoder, **({"device": device} if device != "cpu" else {}))
    own_cache = cache_dir is None
    cache = Path(cache_dir) if cache_dir is not None else out.with_name(out.name + ".cache")
    arrays, enc_stats = encode_documents(docs, encoder, cache, batch_size=batch_size, progress=progress)
    vectors = np.concatenate(arrays).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms <= 1e-12):
        raise DataError(f"encoder {encoder.name}: produced a zero or non-finite vector")
    vectors = (vectors / norms).astype(np.float16 if dtype == "float16" else np.float32)
    offsets = np.concatenate([[0], np.cumsum([len(d.units) for d in docs])]).astype(np.int64)
    counts = {k: report[k] for k in (
        "documents_found", "paragraphs_found", "units_found", "dropped_short_units", "dropped_short_documents",
        "dropped_long_documents",
        "documents_over_max_docs", "dropped_duplicate_units", "duplicate_texts",
        "dropped_short_documents_after_dedup", "documents_kept", "units_kept")}
    source: dict[str, Any] = {"path": str(src), "kind": report["source_kind"], **(source_info or {})}
    manifest: dict[str, Any] = {
        "name": name or out.name,
        "source": source,
        "license": license or (source_info or {}).get("license") or "unknown (not stated at build time)",
        "encoder": encoder.name,
        "encoder_info": encoder.info(),
        "unit": unit,
        "normalisation": "l2",
        "cleanup": {
            "corpus_version": CORPUS_VERSION,
            "min_words": min_words,
            "min_paragraphs": min_paragraphs,
            "max_paragraphs": max_paragraphs,
            "max_docs": max_docs,
            "include": include,
            "exclude": exclude,
            "dedup": "unit texts (whitespace-normalised, case-sensitive) found in 2+ documents: all occurrences dropped",
            "html_units": "text between block tags (p, li, dd...); dropped: head, script, style, pre, code blocks, "
                          "table, nav, header, footer, aside, form, figure, headings, dt, sidebar/related/navigation; "
                          "only the main region (main, role=main, div.body) when present",
            "text_units": "blank-line-separated blocks; md/rst markup, code, tables, headings and directives removed",
            "sentence_split": "regex after . ! ? ... + whitespace + capital/digit; not after single letters or "
                              "common abbreviations" if unit == "sentence" else None,
        },
        "counts": counts,
        "units_per_document": report["units_per_document"],
        "words_per_unit": report["words_per_unit"],
        "chain_ids": [d.id for d in docs],
        "chain_titles": [d.title for d in docs],
    }
    blob = _texts_bytes(docs) if save_texts else None
    if blob is not None:
        manifest["texts"] = {"file": TEXTS, "sha256": hashlib.sha256(blob).hexdigest(),
                             "format": "gzip JSONL, one line per chain: {id, title, units}"}
    store = write_store(out, vectors, offsets, manifest, overwrite=overwrite)
    if blob is not None:
        atomic_write(out / TEXTS, lambda fh: fh.write(blob))
    if own_cache:
        shutil.rmtree(cache, ignore_errors=True)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    report.update({"encoder": encoder.name, "unit": unit, "dtype": dtype, "encoding": enc_stats,
                   "out": str(out), "bytes": size, "dataset_sha256": store.sha256,
                   "cache": None if own_cache else str(cache)})
    return store, report


def load_texts(store: ChainStore | str | Path) -> list[dict[str, Any]]:
    """The ``{id, title, units}`` records saved next to a store, checked against the manifest."""
    from lvmbench.data.store import load_store

    if not isinstance(store, ChainStore):
        store = load_store(store, verify=False)
    meta = store.manifest.get("texts")
    if not meta:
        raise DataError(f"{store.path}: this store was built without texts")
    path = store.path / str(meta.get("file", TEXTS))
    if not path.is_file():
        raise DataError(f"{path}: texts file not found")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise DataError(f"{path}: sha256 does not match the manifest")
    records = [json.loads(line) for line in gzip.decompress(blob).decode("utf-8").splitlines() if line]
    lengths = [len(r["units"]) for r in records]
    if lengths != [int(x) for x in store.lengths]:
        raise DataError(f"{path}: unit counts do not match the store's chain lengths")
    return records


# --------------------------------------------------------------------------- reports and CLI helpers

def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary of a build (or a dry run)."""
    r = report
    upd, wpu = r["units_per_document"], r["words_per_unit"]
    lines = [
        f"source: {r['source']} ({r['source_kind']})",
        f"documents: {r['documents_found']} found, {r['documents_kept']} kept "
        f"({r['dropped_short_documents']} too short, {r.get('dropped_long_documents', 0)} over --max-paragraphs, "
        f"{r['dropped_short_documents_after_dedup']} too short after "
        f"dedup, {r['documents_over_max_docs']} over --max-docs)",
        f"units: {r['units_found']} found, {r['units_kept']} kept ({r['dropped_short_units']} too short, "
        f"{r['dropped_duplicate_units']} cross-document duplicates of {r['duplicate_texts']} texts)",
        f"units per document: min {upd['min']}, median {upd['median']:g}, mean {upd['mean']:g}, "
        f"p90 {upd['p90']:g}, max {upd['max']}",
        f"words per unit: min {wpu['min']}, median {wpu['median']:g}, mean {wpu['mean']:g}, max {wpu['max']}",
    ]
    if "encoding" in r:
        e = r["encoding"]
        per = f", {e['seconds_per_1000']} s per 1000" if e.get("seconds_per_1000") else ""
        lines.append(f"encoder: {r['encoder']}")
        lines.append(f"encoded {e['encoded']} units in {e['seconds']} s{per}; {e['from_cache']} from cache")
        lines.append(f"wrote {r['documents_kept']} chains, {r['units_kept']} vectors ({r['dtype']}) to {r['out']} "
                     f"({r['bytes'] / 1e6:.1f} MB), dataset sha256 {r['dataset_sha256'][:16]}…")
    return "\n".join(lines)


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``lvmbench data build``."""
    p.add_argument("src", help="folder of .txt/.md/.rst/.html documents (optionally .gz), or a JSONL file of "
                   '{"id", "title", "paragraphs": [...]}')
    p.add_argument("--out", required=True, help="output chain-store directory")
    p.add_argument("--encoder", default="minilm", choices=available_encoders(),
                   help="text encoder (default minilm = all-MiniLM-L6-v2, needs the 'encode' extra)")
    p.add_argument("--unit", choices=["paragraph", "sentence"], default="paragraph",
                   help="one vector per paragraph (default) or per sentence")
    p.add_argument("--min-words", type=int, default=8, help="drop units with fewer words (default 8)")
    p.add_argument("--min-paragraphs", type=int, default=7,
                   help="drop documents with fewer units after filtering (default 7, the recipe's length gate)")
    p.add_argument("--max-paragraphs", type=int, metavar="N",
                   help="drop documents with more than N units after the min-words filter (a compute budget)")
    p.add_argument("--max-docs", type=int, help="keep only the first N documents that pass the length filter")
    p.add_argument("--include", action="append", metavar="GLOB",
                   help="only documents whose relative path matches (repeatable), e.g. 'library/*'")
    p.add_argument("--exclude", action="append", metavar="GLOB", help="skip documents matching (repeatable)")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="stored vector dtype")
    p.add_argument("--cache", dest="cache_dir", metavar="DIR",
                   help="encoding cache to keep and reuse (default <out>.cache, deleted after success)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="torch device for the encoder (default cpu)")
    p.add_argument("--name", help="dataset name for the manifest (default: the --out folder name)")
    p.add_argument("--license", help="license of the source text, recorded in the manifest")
    p.add_argument("--source-info", action="append", default=[], metavar="KEY=VALUE",
                   help="provenance recorded under manifest.source, e.g. package=python3.11-doc (repeatable)")
    p.add_argument("--no-texts", action="store_true", help=f"do not write {TEXTS} next to the store")
    p.add_argument("--dry-run", action="store_true", help="parse and filter only; print the counts")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")


def run_build(args: argparse.Namespace, log: Any = print) -> int:
    info: dict[str, Any] = {}
    for item in args.source_info or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--source-info {item!r}: expected KEY=VALUE")
        info[key.strip()] = value.strip()
    if args.dry_run:
        _, report = scan_corpus(args.src, args.unit, args.min_words, args.min_paragraphs, args.max_docs,
                                args.include, args.exclude, args.max_paragraphs)
        log(format_report(report))
        return 0
    _, report = build_corpus(
        args.src, args.out, encoder=args.encoder, unit=args.unit, min_words=args.min_words,
        min_paragraphs=args.min_paragraphs, dtype=args.dtype, max_docs=args.max_docs, include=args.include,
        exclude=args.exclude, overwrite=args.overwrite, cache_dir=args.cache_dir, source_info=info or None,
        license=args.license, name=args.name, batch_size=args.batch_size, device=args.device,
        save_texts=not args.no_texts, max_paragraphs=args.max_paragraphs,
    )
    log(format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m lvmbench.data.corpus SRC --out DIR ...`` (same arguments as ``lvmbench data build``)."""
    import sys

    parser = argparse.ArgumentParser(prog="python -m lvmbench.data.corpus", description="build a chain store from text")
    add_build_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_build(args)
    except UsageError as exc:
        print(f"lvmbench: error: {exc}", file=sys.stderr)
        return exc.exit_code


def iter_units(store: ChainStore | str | Path) -> Iterable[tuple[str, int, str]]:
    """``(chain id, position, text)`` for every vector of a store built with texts."""
    for rec in load_texts(store):
        for j, text in enumerate(rec["units"]):
            yield rec["id"], j, text


if __name__ == "__main__":
    raise SystemExit(main())
