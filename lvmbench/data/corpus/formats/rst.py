"""reStructuredText (``.rst``), line by line, no docutils.

Blank-line-separated blocks; each list item is its own unit; removed: section
titles (first one is the title), literal blocks after ``::``, doctest blocks,
grid and simple tables, comments and targets, and directives whose body is
not prose (``code-block``, ``literalinclude``, ``toctree``, ``image``,
``table``, ``math``...).  Other directives (``note``, ``function``,
``versionchanged``...) lose their marker line and options and keep their
body.  Roles, literals and references keep their text (``:func:`~a.b``` ->
``b``).

Every step takes time linear in its input, so an adversary's file cannot
hang the builder.  The inline steps are the regex substitutions noted in
``_STEPS``, each done in one left-to-right pass with the same result:
``re.sub`` searched a lazy span from every opener that never closes to the
end of the paragraph (``word **a`` repeated: 3.5 s at 40 KB), and re-read a
whitespace run or a chain of role-name colons from each of its positions.
Directive bodies nest on a stack, not by recursion (a few hundred nested
``.. note::`` raised RecursionError).
"""

from __future__ import annotations

import re
from functools import cached_property
from operator import itemgetter
from typing import Callable

from lvmbench.data.corpus.formats import scan
from lvmbench.data.corpus.textutils import indent_width, normalise_ws

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


_BACKTICK = re.compile("`")
_LT_OR_TICK, _GT_OR_TICK = re.compile("[`<]"), re.compile("[`>]")
_ROLE_NAME_RUN, _SPACE_RUN = re.compile(r"[\w.+:-]*"), re.compile(r"\s*")
_ESCAPE = re.compile(r"\\(.)")
_group = itemgetter(1)  # a match's first group


def _whole(repl: Callable[[re.Match[str]], str]) -> Callable[[str], scan.Spans]:
    """Spans of a construct its opener regex matches whole (each such search does work in proportion to the
    characters from where it starts to its match's end, as counted in the tests)."""
    return lambda text: lambda m: (m.start(), m.end(), repl(m))


def _footnotes(text: str) -> scan.Spans:
    """Spans of footnote and citation references with the whitespace before them, read on the reversed text: the
    regex's leading ``\\s*`` re-read a whitespace run from each of its positions.  Matches end in ``_``, so a run
    never reaches back into one."""
    rev, n = text[::-1], len(text)
    return lambda m: (n - scan.search(_SPACE_RUN, rev, n - m.start()).end(), m.end(), "")


def _emphasis(closer: re.Pattern[str]) -> Callable[[str], scan.Spans]:
    """Spans of ``OPEN(.+?)CLOSE``: the first closer at least one character on, unless a newline comes first."""

    def make(text: str) -> scan.Spans:
        close, newline = scan.first(text, closer), scan.first(text, scan.NEWLINE)

        def spans(m: re.Match[str]) -> scan.Span | None:
            a = m.end()
            c = close(a + 1)
            if c is None:
                return None
            nl = newline(a)
            return None if nl is not None and nl.start() < c.start() else (m.start(), c.end(), text[a : c.start()])

        return spans

    return make


def _hyperlinks(text: str) -> scan.Spans:
    """Spans of hyperlinks, ``text <target>`` in backticks then ``_``: from the backtick to the first ``<`` (no
    backtick first), then to the first ``>`` or backtick, which must start ``>`_``.  The text loses its trailing
    whitespace, which the regex's lazy group re-read from each of its positions."""

    def spans(m: re.Match[str]) -> scan.Span | None:
        o = m.start()
        lt = scan.search(_LT_OR_TICK, text, o + 1)
        if lt is None or lt[0] != "<":
            return None
        gt = scan.search(_GT_OR_TICK, text, lt.end())
        if gt is None or not text.startswith(">`_", gt.start()):
            return None
        end = gt.start() + 3
        return o, end + text.startswith("_", end), text[o + 1 : lt.start()].rstrip()

    return spans


def _roles(text: str) -> scan.Spans:
    """Spans of roles, ``:name:`` then the body in backticks, found from the colon and backtick ending the name.

    The name starts at the first colon after the last ``::`` of the run of
    name characters before it (read on the reversed text); matches end in a
    backtick, so a run never reaches back into one.  The regex re-read the
    run from each of its colons (``:a`` repeated: 8 s at 40 KB).
    """
    rev, n = text[::-1], len(text)

    def spans(m: re.Match[str]) -> scan.Span | None:
        b = m.start() + 1  # the backtick
        run = n - scan.search(_ROLE_NAME_RUN, rev, n - b).end()
        q = text.rfind("::", run, b)
        p = q + 1 if q >= 0 else text.find(":", run, b)
        return None if p == b - 1 else (p, m.end(), _role_text(m[1]))

    return spans


def _link_title(body: str) -> str | None:
    """What ``^(.*?)\\s*<[^<>]+>$`` captured in ``body`` (None: no match), without re-reading a whitespace run
    from each of its positions: ``<target>`` ends the body (``$``: or precedes a final newline)."""
    j = len(body) - 1 - body.endswith("\n")
    if j < 0 or body[j] != ">":
        return None
    lt = body.rfind("<", 0, j)
    if lt < 0 or j - lt < 2 or body.find(">", lt + 1, j) >= 0:
        return None
    title = body[:lt].rstrip()
    return None if "\n" in title else title


def _role_text(body: str) -> str:
    """The reading text of a role's body: the title of ``title <target>``, ``~a.b`` -> ``b``."""
    title = _link_title(body)
    if title:
        body = title
    body = body.lstrip("!")
    if body.startswith("~"):
        body = body[1:].split(".")[-1]
    return body


_STEPS: tuple[tuple[re.Pattern[str], Callable[[str], scan.Spans]], ...] = (
    # r"(?<=\w)__?(?=\s|$|[.,;:!?)\]'\"])" -> "": word_ references (before literals)
    (re.compile(r"(?<=\w)__?(?=\s|$|[.,;:!?)\]'\"])"), _whole(lambda m: "")),
    # r"\s*\[(?:#[\w-]*|\*|\d+|[A-Za-z][\w-]*)\]_" -> "": footnote/citation refs
    (re.compile(r"\[(?:#[\w-]*|\*|\d+|[A-Za-z][\w-]*)\]_"), _footnotes),
    # r":(pep|rfc):`(\d+)[^`]*`" -> "PEP 8"
    (re.compile(r":(pep|rfc):`(\d+)[^`]*`"), _whole(lambda m: f"{m[1].upper()} {m[2]}")),
    # r":[\w.+-]+(?::[\w.+-]+)*:`([^`]+)`" -> the role's text
    (re.compile(r":`([^`]+)`"), _roles),
    # r"`([^`<]*?)\s*<[^`>]*>`__?" -> r"\1": `text <url>`_
    (_BACKTICK, _hyperlinks),
    # r"`([^`]+)`__?" -> r"\1": `ref`_
    (re.compile(r"`([^`]+)`__?"), _whole(_group)),
    # r"``(.+?)``" -> r"\1": a failed opener has no "``" after it on its line, so at most three fail per line
    (re.compile(r"``(.+?)``"), _whole(_group)),
    # r"`([^`]+)`" -> r"\1"
    (re.compile(r"`([^`]+)`"), _whole(_group)),
    # r"\*\*(?=\S)(.+?)(?<=\S)\*\*" -> r"\1"
    (re.compile(r"\*\*(?=\S)"), _emphasis(re.compile(r"(?<=\S)\*\*"))),
    # r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])" -> r"\1"
    (re.compile(r"(?<![\w*])\*(?=\S)"), _emphasis(re.compile(r"(?<=\S)\*(?![\w*])"))),
    # r"\|([\w -]+)\|_{0,2}" -> r"\1": substitution refs
    (re.compile(r"\|([\w -]+)\|_{0,2}"), _whole(_group)),
)


def rst_inline(text: str) -> str:
    """The reading text of a reST span: markup removed, role/literal/reference text kept (linear time)."""
    for opener, make_spans in _STEPS:
        text = scan.sub(text, opener, make_spans)
    text = text.replace("\\ ", "")
    text = _ESCAPE.sub(r"\1", text)
    return normalise_ws(text)


def _body_ends(lines: list[str]) -> list[int]:
    """Per non-blank line, the index of the next non-blank line indented no deeper (``len(lines)``: none).

    Where the body of explicit markup at that line ends, for every nesting
    level at once (a stack of indents, one pass): each nested directive used
    to rescan and re-indent its whole body, cubic in the nesting depth.
    """
    ends = [len(lines)] * len(lines)
    stack: list[tuple[int, int]] = []  # (indent, index) of later lines; the nearest on top, indents non-increasing
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip():
            ind = indent_width(lines[i])
            while stack and stack[-1][0] > ind:
                stack.pop()
            if stack:
                ends[i] = stack[-1][1]
            stack.append((ind, i))
    return ends


class _Doc:
    """What the ``_Blocks`` of one document share: the output lists and, computed once, the lines as directive
    bodies see them (tabs expanded; the common indentation they also lost is never read: indents are only
    compared) and where each body ends."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.units: list[str] = []
        self.titles: list[str] = []

    @cached_property
    def expanded(self) -> list[str]:
        return [x.expandtabs(4) if "\t" in x else x for x in self.lines]

    @cached_property
    def body_ends(self) -> list[int]:
        return _body_ends(self.lines)


def _prose_start(line: str, lines: list[str], k: int, end: int) -> int | None:
    """Where the prose of the directive at ``line`` (body: ``lines[k:end]``) starts, or None when the directive
    (or comment/target) is dropped."""
    d = _RST_DIRECTIVE.match(line)
    if not d or d.group(1).lower() in _RST_DROP or line.lstrip().startswith(".. |"):
        return None
    if d.group(1).lower().split(":")[-1] in _RST_SIGNATURE:
        while k < end and lines[k].strip():  # signature continuation lines and options
            k += 1
    while k < end and lines[k].strip() and _RST_FIELD.match(lines[k]):  # options
        k += 1
    return k


class _Blocks:
    """One pass over ``lines[start:end]``, appending units and section titles to the document's lists.

    A prose directive's body is parsed by a new ``_Blocks``, run by
    ``parse_rst`` before this one resumes.  Each ``_skip_*`` step returns
    True when it consumed the line at ``self.i``; ``_prose`` takes the rest.
    """

    def __init__(self, doc: _Doc, lines: list[str], start: int, end: int) -> None:
        self.doc, self.lines, self.i, self.n = doc, lines, start, end
        self.units, self.titles = doc.units, doc.titles
        self.cur: list[str] = []
        self.cur_indent = 0
        self.cur_is_item = False
        self.literal_after: int | None = None  # indent of a paragraph that ended with '::'
        self.body: _Blocks | None = None  # a prose directive's body, to be parsed next

    def run(self) -> _Blocks | None:
        """Parse to the end, or return the ``_Blocks`` of a prose directive's body to parse before resuming."""
        steps = (self._skip_explicit, self._skip_doctest, self._skip_grid, self._skip_simple_table,
                 self._skip_adorned_title, self._skip_underlined_title)
        while self.i < self.n:
            line = self.lines[self.i]
            if not line.strip():
                self.flush()
                self.i += 1
            elif not self._skip_literal(line) and not any(step(line) for step in steps):
                self._prose(line)
            if self.body is not None:
                body, self.body = self.body, None
                return body
        self.flush()
        return None

    def flush(self) -> None:
        if not self.cur:
            return
        text = " ".join(self.cur)
        if text.rstrip().endswith("::"):
            self.literal_after = self.cur_indent
            stripped = text.rstrip()[:-2]
            text = stripped + ":" if stripped and not stripped[-1].isspace() else stripped
        t = rst_inline(text)
        if t:
            self.units.append(t)
        self.cur, self.cur_is_item = [], False

    def _skip_block(self) -> None:
        """Advance past the rest of the current block (up to the next blank line)."""
        while self.i < self.n and self.lines[self.i].strip():
            self.i += 1

    def _skip_literal(self, line: str) -> bool:
        """The indented literal block after a paragraph ending in '::' (any other line ends the expectation)."""
        if self.literal_after is None or self.cur:
            return False
        limit, self.literal_after = self.literal_after, None
        if indent_width(line) <= limit:
            return False
        while self.i < self.n and (not self.lines[self.i].strip() or indent_width(self.lines[self.i]) > limit):
            self.i += 1
        return True

    def _skip_explicit(self, line: str) -> bool:
        """Directive, comment, target or substitution definition; prose directives keep their body."""
        if not _RST_EXPLICIT.match(line):
            return False
        self.flush()
        j = min(self.doc.body_ends[self.i], self.n)
        k = _prose_start(line, self.lines, self.i + 1, j)
        if k is not None:
            self.body = _Blocks(self.doc, self.doc.expanded, k, j)
        self.i = j
        return True

    def _skip_doctest(self, line: str) -> bool:
        if not line.strip().startswith(">>>"):
            return False
        self.flush()
        self._skip_block()
        return True

    def _skip_grid(self, line: str) -> bool:
        if not _RST_GRID.match(line):
            return False
        self.flush()
        self._skip_block()
        return True

    def _skip_simple_table(self, line: str) -> bool:
        if not _RST_SIMPLE_TABLE.match(line):
            return False
        self.flush()
        lines, n = self.lines, self.n
        i = self.i + 1
        while i < n and not (_RST_SIMPLE_TABLE.match(lines[i]) and (i + 1 == n or not lines[i + 1].strip())):
            i += 1
        self.i = i + 1
        return True

    def _skip_adorned_title(self, line: str) -> bool:
        """Overline + title + underline, or a transition line."""
        if not _RST_UNDERLINE.match(line.strip()) or self.cur:
            return False
        i, lines = self.i, self.lines
        if i + 2 < self.n and lines[i + 1].strip() and _RST_UNDERLINE.match(lines[i + 2].strip()):
            self.titles.append(rst_inline(lines[i + 1]))
            self.i += 3
        else:
            self.i += 1
        return True

    def _skip_underlined_title(self, line: str) -> bool:
        s = line.strip()
        under = self.lines[self.i + 1].strip() if self.i + 1 < self.n else ""
        if self.cur or not _RST_ADORN_LINE.match(under) or not (len(under) >= len(s) or len(under) >= 4):
            return False
        self.titles.append(rst_inline(s))
        self.i += 2
        return True

    def _prose(self, line: str) -> None:
        s, ind = line.strip(), indent_width(line)
        item = _RST_LIST.match(line)
        if item:
            self.flush()
            self.cur, self.cur_indent, self.cur_is_item = [item.group(1)], ind, True
        elif self.cur and not self.cur_is_item and len(self.cur) == 1 and ind > self.cur_indent:  # definition term
            self.flush()
            self.cur, self.cur_indent = [s], ind
        else:
            if not self.cur:
                self.cur_indent = ind
            field_m = _RST_FIELD.match(s) if not self.cur else None
            if field_m:  # field list ":param x: text" keeps its text
                s = s[field_m.end() :]
            elif s.startswith("| "):  # line block
                s = s[2:]
            self.cur.append(s)
        self.i += 1


def parse_rst(text: str) -> tuple[str, list[str]]:
    """``(title, paragraphs)`` of a reST file; see the module docstring for what is kept."""
    lines = text.splitlines()
    doc = _Doc(lines)
    stack = [_Blocks(doc, lines, 0, len(lines))]  # nested directive bodies: a stack, not recursion
    while stack:
        body = stack[-1].run()
        if body is None:
            stack.pop()
        else:
            stack.append(body)
    return (doc.titles[0] if doc.titles else ""), doc.units
