"""Markdown (``.md``, ``.markdown``), line by line, no Markdown library.

Blank-line-separated blocks; each list item is its own unit; removed: fenced
and indented code, tables, headings (first one is the title), HTML comments
and tags, link targets, images, front matter; inline links/emphasis/code keep
their text.

Every step takes time linear in its input, so an adversary's file cannot
hang the builder.  The inline steps are the regex substitutions noted in
``_STEPS``, each done in one left-to-right pass with the same result:
``re.sub`` searched a lazy span from every opener that never closes to the
end of the paragraph (``word *a`` repeated: 31 s at 160 KB).  Headings,
table rules and quote markers are read without the backtracking regexes and
re-slicing that were cubic or quadratic on a long line.
"""

from __future__ import annotations

import html
import re
from functools import partial
from typing import Callable

from lvmbench.data.corpus.formats import scan
from lvmbench.data.corpus.textutils import indent_width, normalise_ws

_MD_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_MD_ATX = re.compile(r"\s{0,3}(#{1,6})")  # the rest of the line is read by _atx
_MD_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_MD_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_MD_TABLE_CELL = re.compile(r":?-+:?")
_MD_QUOTE = re.compile(r"(?:\s*>\s?)*")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(.*)$")
_MD_LINKDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
_MD_FOOTDEF = re.compile(r"^\s*\[\^[^\]]+\]:")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>])")
_BACKTICKS = re.compile("`+")
_CLOSING = {"(": re.compile(r"\)"), "[": re.compile(r"\]")}

Ends = Callable[[re.Match[str]], tuple[int, int, int] | None]


def _spans(make_ends: Callable[[str], Ends], keep: Callable[[str], str] | None) -> Callable[[str], scan.Spans]:
    """``scan.sub``'s spans from ``make_ends(text)``, which gives ``ends(m)``: where the construct opened by the
    opener match ``m`` ends, as ``(content start, content end, end)``, or None when it does not close.  A match
    becomes ``keep(content)`` (nothing when ``keep`` is None)."""

    def make(text: str) -> scan.Spans:
        ends = make_ends(text)

        def spans(m: re.Match[str]) -> scan.Span | None:
            span = ends(m)
            if span is None:
                return None
            a, b, end = span
            return m.start(), end, keep(text[a:b]) if keep else ""

        return spans

    return make


def _to_first(text: str, close: str, min_len: int = 0, then: str = "") -> Ends:
    """Ends of ``OPEN [^c]{min_len,} c`` spans (``c`` is ``close``), each optionally followed by ``then``
    and a second bracketed part (``\\(...\\)`` or ``\\[...\\]``): a span ends at the first ``c``, or never."""
    first = scan.first(text, re.compile(re.escape(close)))
    second = scan.first(text, _CLOSING[then]) if then else None

    def ends(m: re.Match[str]) -> tuple[int, int, int] | None:
        a = m.end()
        c = first(a)
        if c is None or c.start() < a + min_len:
            return None
        b = c.start()
        if second is None:
            return a, b, b + 1
        d = second(b + 2) if text.startswith(then, b + 1) else None
        return None if d is None else (a, b, d.end())

    return ends


def _to_closer(text: str, closers: dict[str, re.Pattern[str]], min_len: int) -> Ends:
    """Ends of ``OPEN (.{min_len,}?) CLOSE`` spans, the closer chosen by the opener's text.

    The lazy span ends at the first closer at least ``min_len`` on, unless
    a newline (which ``.`` does not match) comes first.  Closers must not
    depend on where their opener was - look-arounds on the text only.
    """
    finders = {key: scan.first(text, pattern) for key, pattern in closers.items()}
    newline = scan.first(text, scan.NEWLINE)

    def ends(m: re.Match[str]) -> tuple[int, int, int] | None:
        a = m.end()
        c = finders[m[0]](a + min_len)
        if c is None:
            return None
        nl = newline(a)
        return None if nl is not None and nl.start() < c.start() else (a, c.start(), c.end())

    return ends


def _code_ends(text: str) -> Ends:
    """Ends of ``(`+)(.+?)\\1`` code spans, from the backtick runs of the text.

    The regex backtracks over the opening run's length ``r``: it takes the
    longest ``n <= r`` that closes - the run itself closes any ``n`` with
    ``2n + 1 <= r``, a later run on the same line any ``n`` up to its length -
    and ends at the first closer of that length.  The regex tried every
    length to the end of the line (cubic in a long run).
    """
    runs = [m.span() for m in _BACKTICKS.finditer(text)]
    after = {end: k + 1 for k, (_, end) in enumerate(runs)}
    longest = [0] * (len(runs) + 1)  # longest run from k on, up to the end of run k's line
    for k in range(len(runs) - 1, -1, -1):
        start, end = runs[k]
        same_line = k + 1 < len(runs) and text.find("\n", end, runs[k + 1][0]) < 0
        longest[k] = max(end - start, longest[k + 1] if same_line else 0)
    newline = scan.first(text, scan.NEWLINE)

    def ends(m: re.Match[str]) -> tuple[int, int, int] | None:
        i, r, k = m.start(), m.end() - m.start(), after[m.end()]
        nl = newline(i)
        line_end = len(text) if nl is None else nl.start()
        later = longest[k] if k < len(runs) and runs[k][0] < line_end else 0
        n = max(min(r, later), (r - 1) // 2)
        if n == 0:
            return None
        if 2 * n + 1 <= r:
            return i + n, i + n + 1, i + 2 * n + 1
        while runs[k][1] - runs[k][0] < n:  # runs passed here lie inside the match
            k += 1
        return i + n, runs[k][0], runs[k][0] + n

    return ends


_EM_STAR, _EM_UNDER = re.compile(r"(?<=\S)\*(?![\w*])"), re.compile(r"(?<=\S)_(?!\w)")
_STEPS: tuple[tuple[re.Pattern[str], Callable[[str], Ends], Callable[[str], str] | None], ...] = (
    # r"!\[[^\]]*\]\([^)]*\)" -> "": images
    (re.compile(r"!\["), partial(_to_first, close="]", then="("), None),
    # r"\[\^[^\]]*\]" -> "": footnote references
    (re.compile(r"\[\^"), partial(_to_first, close="]"), None),
    # r"\[([^\]]+)\]\([^)]*\)" -> r"\1": inline links keep their text
    (re.compile(r"\["), partial(_to_first, close="]", min_len=1, then="("), str),
    # r"\[([^\]]+)\]\[[^\]]*\]" -> r"\1": reference links
    (re.compile(r"\["), partial(_to_first, close="]", min_len=1, then="["), str),
    # r"<https?://[^>]+>" -> "": autolinks
    (re.compile(r"<https?://"), partial(_to_first, close=">", min_len=1), None),
    # r"<!--.*?-->" -> ""
    (re.compile(r"<!--"), partial(_to_closer, closers={"<!--": re.compile("-->")}, min_len=0), None),
    # r"</?[A-Za-z][^>]*>" -> "": inline HTML tags
    (re.compile(r"</?[A-Za-z]"), partial(_to_first, close=">"), None),
    # r"(`+)(.+?)\1" -> the code's text, stripped
    (_BACKTICKS, _code_ends, str.strip),
    # r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1" -> r"\2"
    (re.compile(r"(\*\*|__)(?=\S)"),
     partial(_to_closer, closers={"**": re.compile(r"(?<=\S)\*\*"), "__": re.compile(r"(?<=\S)__")}, min_len=1), str),
    # r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])" -> r"\1"
    (re.compile(r"(?<![\w*])\*(?=\S)"), partial(_to_closer, closers={"*": _EM_STAR}, min_len=1), str),
    # r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)" -> r"\1"
    (re.compile(r"(?<!\w)_(?=\S)"), partial(_to_closer, closers={"_": _EM_UNDER}, min_len=1), str),
)


def md_inline(text: str) -> str:
    """The reading text of a Markdown span: markup removed, link/emphasis/code text kept (linear time)."""
    for opener, make_ends, keep in _STEPS:
        text = scan.sub(text, opener, _spans(make_ends, keep))
    text = _MD_ESCAPE.sub(r"\1", text)
    return normalise_ws(html.unescape(text))


def _atx(line: str) -> tuple[str, str] | None:
    """``(marks, text)`` of an ATX heading line, or None.

    What ``^\\s{0,3}(#{1,6})(?:\\s+(.*?))?\\s*#*\\s*$`` matched (text: the
    lazy group, "" where it took no part), read with strip: that regex
    backtracked cubically on a long heading of spaces and ``#``.
    """
    m = _MD_ATX.match(line)
    if m is None:
        return None
    rest = line[m.end():]
    if rest[:1].isspace():
        body = rest.lstrip()
        return m.group(1), body[: len(body.rstrip().rstrip("#").rstrip())]
    return (m.group(1), "") if not rest.lstrip("#").strip() else None


def _table_rule(line: str) -> bool:
    """Whether ``line`` is the ``|---|:--:|`` rule under a table header.

    What ``^\\s*\\|?\\s*:?-+:?\\s*(\\|\\s*:?-+:?\\s*)+\\|?\\s*$`` matched: two or
    more ``:?-+:?`` cells between bars, outer bars optional.  The regex was
    quadratic in a run of spaces.
    """
    cells = line.strip()
    cells = cells[1:] if cells.startswith("|") else cells
    cells = cells[:-1] if cells.endswith("|") else cells
    parts = cells.split("|")
    return len(parts) >= 2 and all(_MD_TABLE_CELL.fullmatch(p.strip()) for p in parts)


def _front_matter_end(lines: list[str]) -> int:
    """Index of the first line after a YAML front matter block (0 when there is none)."""
    if lines and lines[0].strip() == "---":
        for j in range(1, len(lines)):
            if lines[j].strip() in ("---", "..."):
                return j + 1
    return 0


class _Blocks:
    """One pass over the lines; each ``_skip_*`` step consumes a construct that is not prose.

    A step returns True when it consumed the line at ``self.i`` (and moved
    ``self.i`` past the construct); the prose step takes whatever none of them
    claimed.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.n = lines, len(lines)
        self.i = _front_matter_end(lines)
        self.units: list[str] = []
        self.cur: list[str] = []
        self.title = ""
        self.prev_blank, self.in_list = True, False

    def run(self) -> tuple[str, list[str]]:
        steps = (self._skip_fence, self._skip_comment, self._skip_atx, self._skip_setext, self._skip_rule,
                 self._skip_table, self._skip_indented_code, self._skip_link_definition)
        while self.i < self.n:
            line = self.lines[self.i]
            if not line.strip():
                self.flush()
                self.prev_blank = True
                self.i += 1
            elif not any(step(line) for step in steps):
                self._prose(line)
        self.flush()
        return self.title, self.units

    def flush(self) -> None:
        t = md_inline(" ".join(self.cur))
        if t:
            self.units.append(t)
        self.cur = []

    def _skip_nonblank(self) -> None:
        """Advance past the rest of the current block (up to the next blank line)."""
        while self.i < self.n and self.lines[self.i].strip():
            self.i += 1

    def _skip_fence(self, line: str) -> bool:
        fence = _MD_FENCE.match(line)
        if not fence:
            return False
        self.flush()
        mark = fence.group(1)
        self.i += 1
        while self.i < self.n and not self.lines[self.i].strip().startswith(mark[0] * len(mark)):
            self.i += 1
        self.i += 1
        self.prev_blank = True
        return True

    def _skip_comment(self, line: str) -> bool:
        if not line.strip().startswith("<!--"):
            return False
        self.flush()
        while self.i < self.n and "-->" not in self.lines[self.i]:
            self.i += 1
        self.i += 1
        return True

    def _skip_atx(self, line: str) -> bool:
        atx = _atx(line)
        if atx is None:
            return False
        self.flush()
        heading = md_inline(atx[1])
        if heading and (not self.title or (atx[0] == "#" and not self.units)):
            self.title = self.title or heading
        self.i += 1
        self.prev_blank, self.in_list = True, False
        return True

    def _skip_setext(self, line: str) -> bool:
        i = self.i
        if self.cur or i + 1 >= self.n or not _MD_SETEXT.match(self.lines[i + 1]) or _MD_LIST.match(line):
            return False
        self.flush()
        self.title = self.title or md_inline(line.strip())
        self.i += 2
        self.prev_blank, self.in_list = True, False
        return True

    def _skip_rule(self, line: str) -> bool:
        if not _MD_RULE.match(line):
            return False
        self.flush()
        self.i += 1
        self.prev_blank = True
        return True

    def _skip_table(self, line: str) -> bool:
        if "|" not in line or self.i + 1 >= self.n or not _table_rule(self.lines[self.i + 1]):
            return False
        self.flush()
        self._skip_nonblank()
        return True

    def _skip_indented_code(self, line: str) -> bool:
        if not (self.prev_blank and indent_width(line) >= 4 and not self.in_list):
            return False
        self.flush()
        while self.i < self.n and (not self.lines[self.i].strip() or indent_width(self.lines[self.i]) >= 4):
            self.i += 1
        return True

    def _skip_link_definition(self, line: str) -> bool:
        if not (_MD_LINKDEF.match(line) or _MD_FOOTDEF.match(line)):
            return False
        self.flush()
        self.i += 1
        return True

    def _prose(self, line: str) -> None:
        line = line[_MD_QUOTE.match(line).end():]  # block quote markers, all at once (not one re-slice each)
        item = _MD_LIST.match(line)
        if item:
            self.flush()
            self.cur = [item.group(1)]
            self.in_list = True
        else:
            if self.prev_blank and indent_width(line) < 2:
                self.in_list = False
            self.cur.append(line.strip())
        self.prev_blank = False
        self.i += 1


def parse_markdown(text: str) -> tuple[str, list[str]]:
    """``(title, paragraphs)`` of a Markdown file; see the module docstring for what is kept."""
    return _Blocks(text.splitlines()).run()
