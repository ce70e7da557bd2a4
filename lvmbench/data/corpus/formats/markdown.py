"""Markdown (``.md``, ``.markdown``), line by line, no Markdown library.

Blank-line-separated blocks; each list item is its own unit; removed: fenced
and indented code, tables, headings (first one is the title), HTML comments
and tags, link targets, images, front matter; inline links/emphasis/code keep
their text.
"""

from __future__ import annotations

import html
import re

from lvmbench.data.corpus.textutils import indent_width, normalise_ws

_MD_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_MD_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
_MD_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_MD_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_MD_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*$")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(.*)$")
_MD_LINKDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
_MD_FOOTDEF = re.compile(r"^\s*\[\^[^\]]+\]:")


def md_inline(text: str) -> str:
    """The reading text of a Markdown span: markup removed, link/emphasis/code text kept."""
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
        atx = _MD_ATX.match(line)
        if not atx:
            return False
        self.flush()
        heading = md_inline(atx.group(2) or "")
        if heading and (not self.title or (atx.group(1) == "#" and not self.units)):
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
        if "|" not in line or self.i + 1 >= self.n or not _MD_TABLE_SEP.match(self.lines[self.i + 1]):
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
        while re.match(r"^\s*>", line):  # block quote markers
            line = re.sub(r"^\s*>\s?", "", line, count=1)
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
