"""The CLI reference page, generated from the argparse parser itself.

``python -m lvmbench.cli.reference > docs/reference/cli.md`` writes the page;
``python -m lvmbench.cli.reference --check docs/reference/cli.md`` exits 1 with
one line naming the first command or flag that the committed page is missing
or describes differently from the parser (and 0 when the page is current).

The output is deterministic: usage lines are wrapped at a fixed width, not the
terminal's, and nothing depends on the environment or ``sys.argv``.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lvmbench.cli.docs_page import check_page, first_difference, page_main

WIDTH = 100
"""Usage lines wrap at this many columns, whatever the terminal."""

REGENERATE = "python -m lvmbench.cli.reference > docs/reference/cli.md"
CHECK = "python -m lvmbench.cli.reference --check docs/reference/cli.md"

HEADER = f"""# Command-line reference

<!-- Generated from the argparse parser: do not edit by hand.
     Regenerate with: {REGENERATE}
     CI checks it with: {CHECK} -->

Every `lvmbench` command and subcommand with its options, as `lvmbench COMMAND --help` prints them.
"""

TABLE_HEAD = ("| option | value | default | description |", "|---|---|---|---|")
_HEADING = re.compile(r"^(#{2,6}) `(lvmbench(?: [^`]+)?)`$")
_ROW = re.compile(r"^\| ((?:`[^`]+`(?:, )?)+) \|")


@dataclass
class Section:
    """One command's part of the page: its heading and prose, then one table row per option."""

    command: str
    head: list[str] = field(default_factory=list)
    rows: dict[str, str] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- walking the parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help_line: str | None = None):
    """Yield ``(path, parser, help)`` for this parser and every subcommand below it, depth first, in --help order."""
    yield path, parser, help_line
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of a subcommand already walked
                continue
            seen.add(id(sub))
            yield from walk(sub, path + (name,), helps.get(name))


def find_parser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    """The parser of ``lvmbench NAME ...``: ``find_parser(p, "data", "build")``."""
    for path, sub, _ in walk(parser):
        if path == names:
            return sub
    raise KeyError(" ".join(names))


# ---------------------------------------------------------------- rendering


def _escape(text: str) -> str:
    """Markdown-safe prose: code spans (`...`) kept, ``<``/``>``/``*``/``|`` escaped outside them."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = (parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    .replace("*", r"\*").replace("|", r"\|"))
    if len(parts) % 2 == 0:  # an unmatched backtick: leave it literal
        parts[-2] += r"\`" + parts.pop()
    return "`".join(parts)


def _code(text: str) -> str:
    """An inline code span that holds any text (backticks and table pipes included)."""
    if "|" in text:  # a pipe splits a table cell even inside backticks on some renderers, and `\|` shows on others
        return "<code>" + html.escape(text, quote=False).replace("|", "&#124;") + "</code>"
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _prose(parser: argparse.ArgumentParser, text: str | None) -> str:
    if not text:
        return ""
    raw = issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter)
    return _escape(text.strip() if raw else " ".join(text.split()))


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage text of ``--help``, wrapped at ``WIDTH`` columns."""
    fmt = argparse.HelpFormatter(prog=parser.prog, width=WIDTH)
    fmt.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return fmt.format_help().strip()


def _value(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.option_strings or action.nargs == 0:
        return ""
    fmt = argparse.HelpFormatter(prog=parser.prog, width=WIDTH)
    return fmt._format_args(action, action.dest.upper())


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default is None or action.default is argparse.SUPPRESS:
        return ""
    return _code(str(action.default))


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = ""
    if action.help:
        fmt = argparse.HelpFormatter(prog=parser.prog, width=WIDTH)
        text = " ".join(fmt._expand_help(action).split())
    if action.required and action.option_strings:
        text = f"required. {text}".rstrip()
    return _escape(text)


def _names(action: argparse.Action) -> list[str]:
    if action.option_strings:
        return list(action.option_strings)
    return [action.metavar if isinstance(action.metavar, str) else action.dest]  # as usage shows it


def option_key(action: argparse.Action) -> str:
    """How an option is named in the table and in --check messages: ``--flag`` (its longest spelling) or ``arg``."""
    return max(_names(action), key=len)


def _row(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    names = ", ".join(_code(n) for n in _names(action))
    value = _value(parser, action)
    cells = [names, _code(value) if value else "", _default(action), _help(parser, action)]
    return "| " + " | ".join(cells) + " |"


def _anchor(command: str) -> str:
    return "#" + command.replace(" ", "-").lower()


def _subcommands(command: str, action: argparse._SubParsersAction) -> list[str]:
    lines = ["Subcommands:", ""]
    for choice in action._choices_actions:
        text = _escape(" ".join((choice.help or "").split()))
        lines.append(f"* [`{choice.dest}`]({_anchor(f'{command} {choice.dest}')}): {text}".rstrip())
    return lines + [""]


def section(path: tuple[str, ...], parser: argparse.ArgumentParser, help_line: str | None,
            top_epilog: str | None) -> Section:
    """The page section of one command (``path`` names it below ``lvmbench``).

    Subcommands repeat the top-level epilog (the exit codes); it is printed once, under ``lvmbench``.
    """
    command = " ".join(("lvmbench",) + path)
    sec = Section(command, head=[f"{'#' * (2 + max(len(path) - 1, 0))} `{command}`", ""])
    for text in (help_line, parser.description):
        if text and text is not argparse.SUPPRESS and _prose(parser, text):
            sec.head += [_prose(parser, text), ""]
    sec.head += ["```text", usage(parser), "```", ""]
    actions = [a for a in parser._actions if a.help is not argparse.SUPPRESS]
    options = [a for a in actions if not isinstance(a, argparse._SubParsersAction)]
    if options:
        sec.head += list(TABLE_HEAD)
        sec.rows = {option_key(a): _row(parser, a) for a in options}
        sec.tail.append("")
    for action in actions:
        if isinstance(action, argparse._SubParsersAction):
            sec.tail += _subcommands(command, action)
    if parser.epilog and (not path or parser.epilog != top_epilog):
        sec.tail += [_prose(parser, parser.epilog), ""]
    return sec


def sections(parser: argparse.ArgumentParser) -> list[Section]:
    return [section(path, p, h, parser.epilog) for path, p, h in walk(parser)]


def _join(secs: list[Section]) -> str:
    lines = [HEADER]
    for sec in secs:
        lines += sec.head + list(sec.rows.values()) + sec.tail
    return "\n".join(lines).rstrip() + "\n"


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole Markdown page for ``parser`` (default: the real ``lvmbench`` parser)."""
    if parser is None:
        from lvmbench.cli import build_parser

        parser = build_parser()
    return _join(sections(parser))


# ---------------------------------------------------------------- checking a committed page


def parse_page(text: str) -> dict[str, Section]:
    """A committed page split back into sections, keyed by command (the inverse of ``_join``, roughly)."""
    out: dict[str, Section] = {}
    current: Section | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = out.setdefault(heading.group(2), Section(heading.group(2)))
            current.head.append(line)
            continue
        if current is None:
            continue
        row = _ROW.match(line)
        if row and line not in TABLE_HEAD:
            names = re.findall(r"`([^`]+)`", row.group(1))
            current.rows[max(names, key=len)] = line
        elif current.rows:
            current.tail.append(line)
        else:
            current.head.append(line)
    return out


def _option_problem(want: Section, have: Section) -> str | None:
    for key, line in want.rows.items():
        if key not in have.rows:
            return f"option {key} of `{want.command}` is missing"
        if have.rows[key] != line:
            return f"option {key} of `{want.command}` is stale"
    for key in have.rows:
        if key not in want.rows:
            return f"option {key} of `{want.command}` no longer exists"
    return None


def problem(committed: str, parser: argparse.ArgumentParser | None = None) -> str | None:
    """The first difference between a committed page and what ``parser`` generates, in words; None if none.

    Missing or removed commands come first, then options, then a command's prose, usage or subcommand list
    (which a new subcommand or flag also changes), and last any other line.
    """
    expected = render(parser)
    if committed == expected:
        return None
    have, want = parse_page(committed), parse_page(expected)
    problems = [f"command `{c}` is missing" for c in want if c not in have]
    problems += [f"command `{c}` no longer exists" for c in have if c not in want]
    common = [c for c in want if c in have]
    problems += [p for p in (_option_problem(want[c], have[c]) for c in common) if p]
    problems += [f"the description, usage or subcommands of `{c}` are stale" for c in common
                 if [*want[c].head, *want[c].tail] != [*have[c].head, *have[c].tail]]
    if problems:
        return problems[0]
    return first_difference(committed, expected)


def check(path: Path, parser: argparse.ArgumentParser | None = None) -> str | None:
    """One line saying why the page at ``path`` is not what the parser generates; None if it is."""
    return check_page(path, lambda text: problem(text, parser), REGENERATE)


def main(argv: list[str] | None = None) -> int:
    return page_main(argv, "python -m lvmbench.cli.reference",
                     "Print the CLI reference page (Markdown), or check a committed one.",
                     "exit 1 with one line naming the first missing or stale command or flag in PAGE", render, check)


if __name__ == "__main__":
    sys.exit(main())
