"""reStructuredText (``.rst``), line by line, no docutils.

Blank-line-separated blocks; each list item is its own unit; removed: section
titles (first one is the title), literal blocks after ``::``, doctest blocks,
grid and simple tables, comments and targets, and directives whose body is
not prose (``code-block``, ``literalinclude``, ``toctree``, ``image``,
``table``, ``math``...).  Other directives (``note``, ``function``,
``versionchanged``...) lose their marker line and options and keep their
body.  Roles, literals and references keep their text (``:func:`~a.b``` ->
``b``).
"""

from __future__ import annotations

import re

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


def _role_text(m: re.Match[str]) -> str:
    """The reading text of ``:role:`body```: the title of ``title <target>``, ``~a.b`` -> ``b``."""
    body = m.group(1)
    target = re.match(r"^(.*?)\s*<[^<>]+>$", body)
    if target and target.group(1):
        body = target.group(1)
    body = body.lstrip("!")
    if body.startswith("~"):
        body = body[1:].split(".")[-1]
    return body


def rst_inline(text: str) -> str:
    """The reading text of a reST span: markup removed, role/literal/reference text kept."""
    text = re.sub(r"(?<=\w)__?(?=\s|$|[.,;:!?)\]'\"])", "", text)  # word_ references (before literals)
    text = re.sub(r"\s*\[(?:#[\w-]*|\*|\d+|[A-Za-z][\w-]*)\]_", "", text)  # footnote/citation refs
    text = re.sub(r":(pep|rfc):`(\d+)[^`]*`", lambda m: f"{m.group(1).upper()} {m.group(2)}", text)
    text = re.sub(r":[\w.+-]+(?::[\w.+-]+)*:`([^`]+)`", _role_text, text)  # :role:`...`
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
    """Remove the common indentation of a directive body so it parses like top-level text."""
    ind = [indent_width(x) for x in lines if x.strip()]
    cut = min(ind) if ind else 0
    return [x.expandtabs(4)[cut:] if x.strip() else "" for x in lines]


def _directive_prose(line: str, body: list[str]) -> list[str] | None:
    """The prose lines of a directive's body, or None when the directive (or comment/target) is dropped."""
    d = _RST_DIRECTIVE.match(line)
    if not d or d.group(1).lower() in _RST_DROP or line.lstrip().startswith(".. |"):
        return None
    k = 0
    if d.group(1).lower().split(":")[-1] in _RST_SIGNATURE:
        while k < len(body) and body[k].strip():  # signature continuation lines and options
            k += 1
    while k < len(body) and body[k].strip() and _RST_FIELD.match(body[k]):  # options
        k += 1
    return _dedent(body[k:])


class _Blocks:
    """One pass over the lines, appending units and section titles to shared lists.

    Directive bodies are parsed by a nested ``_Blocks`` writing to the same
    lists.  Each ``_skip_*`` step returns True when it consumed the line at
    ``self.i``; ``_prose`` takes the rest.
    """

    def __init__(self, lines: list[str], units: list[str], titles: list[str]) -> None:
        self.lines, self.n, self.i = lines, len(lines), 0
        self.units, self.titles = units, titles
        self.cur: list[str] = []
        self.cur_indent = 0
        self.cur_is_item = False
        self.literal_after: int | None = None  # indent of a paragraph that ended with '::'

    def run(self) -> None:
        steps = (self._skip_explicit, self._skip_doctest, self._skip_grid, self._skip_simple_table,
                 self._skip_adorned_title, self._skip_underlined_title)
        while self.i < self.n:
            line = self.lines[self.i]
            if not line.strip():
                self.flush()
                self.i += 1
            elif not self._skip_literal(line) and not any(step(line) for step in steps):
                self._prose(line)
        self.flush()

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
        ind = indent_width(line)
        j = self.i + 1
        while j < self.n and (not self.lines[j].strip() or indent_width(self.lines[j]) > ind):
            j += 1
        prose = _directive_prose(line, self.lines[self.i + 1 : j])
        if prose is not None:
            _Blocks(prose, self.units, self.titles).run()
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
    units: list[str] = []
    titles: list[str] = []
    _Blocks(text.splitlines(), units, titles).run()
    return (titles[0] if titles else ""), units
