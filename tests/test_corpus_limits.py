"""Corpus builder limits: linear HTML and Markdown parsing, bounded memory, the unit-length cap, binary and
non-UTF-8 files.

Work is measured deterministically, never with a clock: Python-level calls
(``sys.setprofile`` 'call' events, generator resumptions included) for time,
``tracemalloc`` peaks for memory.  A linear parser does about twice the work
on twice the input; the stack scans it replaced did four times as much.
Scans done in C (regex searches, the stdlib HTML parser) are invisible to
call counting, so they are counted where they happen: the characters each
inline Markdown search reads, and the stdlib HTML parser's scans to the end
of a page.
"""

from __future__ import annotations

import gzip
import html
import json
from html.parser import HTMLParser
import random
import re
import sys
import tracemalloc
from pathlib import Path
from typing import Callable

import pytest

from lvmbench.cli import main
from lvmbench.data.corpus import (build_corpus, format_report, normalise_ws, parse_html, parse_markdown, parse_rst,
                                  scan_corpus, split_sentences)
from lvmbench.data.corpus.build import COUNT_KEYS, MEMORY_MULTIPLE
from lvmbench.data.corpus import formats
from lvmbench.data.corpus.formats import markdown as md
from lvmbench.data.corpus.formats import rst, scan
from lvmbench.data.corpus.formats.html import _HTMLUnits
from lvmbench.data.corpus.select import MAX_UNIT_CHARS
from lvmbench.data.corpus.textutils import n_words
from lvmbench.data.encoders import HashEncoder
from lvmbench.data.store import load_store
from lvmbench.errors import DataError


def para(doc: int | str, j: int) -> str:
    return f"Document {doc} paragraph {j} explains one more idea about topic {j} in plain words."


def nested_page(n: int) -> str:
    """``n`` levels of ``<div><p>text``: each ``<div>`` closes the open ``<p>``, the divs close at the end."""
    return "<html><body>" + "".join(f"<div><p>Level {i} text." for i in range(n)) + "</div>" * n + "</body></html>"


def unclosed_list_page(n: int) -> str:
    """A list of ``n`` items none of which is closed (valid HTML)."""
    return "<html><body><ul>" + "".join(f"<li>Item {i} of the list." for i in range(n)) + "</ul></body></html>"


def unclosed_dl_page(n: int) -> str:
    return "<html><body><dl>" + "".join(f"<dt>Term {i}<dd>Definition {i}." for i in range(n)) + "</dl></body></html>"


def unclosed_span_page(n: int) -> str:
    """Inline elements never closed: the stack really is ``n`` deep, and every data event must still be O(1)."""
    return "<html><body><p>" + "".join(f"<span>word {i} " for i in range(n)) + "</p></body></html>"


PAGES: dict[str, Callable[[int], str]] = {
    "nested-div-p": nested_page, "unclosed-li": unclosed_list_page, "unclosed-dt-dd": unclosed_dl_page,
    "unclosed-span": unclosed_span_page,
}


def python_calls(fn: Callable[[], object]) -> int:
    """Python-level calls made by ``fn()`` (generator resumptions count too): a clock-free measure of work."""
    calls = 0

    def count(frame, event, arg):  # noqa: ARG001 - the profiler's signature
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak traced allocation while ``fn()`` runs, above what was allocated before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- 1. linear HTML parsing

@pytest.mark.parametrize("kind", sorted(PAGES))
def test_html_parse_work_is_linear(kind):
    make = PAGES[kind]
    small, large = (python_calls(lambda n=n: parse_html(make(n))) for n in (1000, 2000))
    assert large / small < 2.5, f"{kind}: {small} -> {large} calls for twice the page (quadratic gives ~4)"


def test_unclosed_items_build_no_deep_stack():
    depth = 0

    class Probe(_HTMLUnits):
        def handle_data(self, data: str) -> None:
            nonlocal depth
            depth = max(depth, len(self.stack.tags))
            super().handle_data(data)

    for page in (unclosed_list_page(500), unclosed_dl_page(500), "<table>" + "<tr><td>a<td>b" * 500 + "</table>",
                 "<select>" + "<option>a" * 500 + "</select>"):
        depth = 0
        p = Probe()
        p.feed(page)
        p.close()
        assert depth <= 5, page[:40]


def test_implied_end_tags_follow_html():
    page = ("<main><ul><li>a<li>b<ul><li>c<li>d</ul>after nested<li>e</ul>"
            "<dl><dt>term one<dd>first definition<dt>term two<dd>second definition</dl>"
            "<ol><li>x<div>in div<li>y</ol></main>")
    _, units = parse_html(page)
    # a nested list's items never close their parent item; <dd> closes <dt> (skipped) and the other way round
    assert units == ["a", "b", "c", "d", "after nested", "e", "first definition", "second definition",
                     "x", "in div", "y"]


def test_large_pathological_pages_parse_completely():
    """About 2 MB each (the 10 MB timings are in benchmarks/test_corpus_parse.py): every unit, in order."""
    n = 50_000
    _, units = parse_html(nested_page(n))
    assert len(units) == n and units[0] == "Level 0 text." and units[-1] == f"Level {n - 1} text."
    n = 80_000
    _, units = parse_html(unclosed_list_page(n))
    assert len(units) == n and units[-1] == f"Item {n - 1} of the list."


UNCLOSED = {"comment": "<!-- a ", "start-tag": "<a b ", "quoted-attr": "<a x='b ", "end-tag": "</a b ",
            "pi": "<? a ", "cdata": "<![CDATA[ a ", "bogus": "<!x a ", "doctype": "<!DOCTYPE a "}


@pytest.mark.parametrize("kind", sorted(UNCLOSED))
def test_unclosed_constructs_scan_the_page_once(monkeypatch, kind):
    """Each construct the stdlib parser cannot close costs a scan to the end of the page (in C, unseen by call
    counting); Python 3.11 made one per unclosed construct at ``close()`` - quadratic (CVE-2025-6069) - so the
    page's first unclosed construct now runs to its end: two such scans (feed, close), however many follow."""
    to_end = 0

    def counting(method):
        def wrapped(self, *args):
            nonlocal to_end
            k = method(self, *args)
            to_end += k < 0
            return k
        return wrapped

    for name in ("parse_comment", "parse_html_declaration", "parse_pi", "parse_starttag", "parse_endtag"):
        monkeypatch.setattr(HTMLParser, name, counting(getattr(HTMLParser, name)))
    for n in (100, 2000):
        to_end = 0
        title, units = parse_html("<h1>Title</h1><p>Kept text.</p>" + UNCLOSED[kind] * n)
        assert to_end <= 2, f"{kind}: {to_end} scans to the end of a page of {n} unclosed constructs"
        assert (title, units) == ("Title", ["Kept text."])


def test_unclosed_constructs_at_the_end_follow_html():
    page = "<main><p>One.</p><!-- closed --><p>Two.<!-- a -- > b</p><?pi ok?>{}</main>"
    assert parse_html(page.format(""))[1] == ["One.", "Two. b"]  # closed ones: as before (``--\\s*>`` ends one)
    for tail in ("<!-- never closed <p>Hidden.</p>", "<b class='x", "<![CDATA[ x", "<? x"):
        assert parse_html(page.format(tail))[1] == ["One.", "Two. b"], tail
    p = _HTMLUnits()  # fed in pieces, a construct is still completed by later input
    for piece in ("<p>Four <!-- not", " yet --> five</p><p>six <a hr", "ef='x'>link</a></p>"):
        p.feed(piece)
    p.close()
    p.flush()
    assert p.units == ["Four five", "six link"]


def test_megabyte_pages_of_unclosed_constructs_parse():
    """About 1 MB each; Python 3.11's parser alone took hours on the ``<a b`` page (97 s at 120 KB)."""
    for piece in ("<!-- a ", "<a b ", "<? a "):
        assert parse_html("<p>Kept.</p>" + piece * (1_000_000 // len(piece)))[1] == ["Kept."]


# --------------------------------------------------------------------------- 2. memory and the unit-length cap

def test_text_helpers_hold_little_memory_and_match_the_simple_forms():
    text = ("alpha \n beta\t\tgamma  " * 20_000) + "Dr. Who met Mr. Smith e.g. here. " * 2_000
    assert normalise_ws(text) == " ".join(text.split())
    assert n_words(text) == len(text.split())
    # re.sub keeps one string object per word (~14x a line of short words); the chunked form stays near 2x
    assert peak_bytes(lambda: normalise_ws(text)) < 3 * len(text)
    assert peak_bytes(lambda: n_words(text)) < len(text)
    # split_sentences re-read (and re-split into words) the whole sentence so far at every abbreviation
    abbrevs = "Dr. Who met Mr. Smith, e.g. at home and " * 3_000
    assert peak_bytes(lambda: split_sentences(abbrevs)) < 4 * len(abbrevs)
    assert split_sentences("It ends here... And. Dr. Who. Fig. 2 shows it. Then") == [
        "It ends here...", "And.", "Dr. Who.", "Fig. 2 shows it.", "Then"]


def test_one_long_line_costs_a_small_multiple_of_its_size(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    line = " ".join(["word", "another", "x"] * 200_000)  # ~2.8 MB, one paragraph
    (src / "one.txt").write_text(line + "\n\n" + "\n\n".join(para(0, j) for j in range(3)))
    holder: dict[str, object] = {}

    def scan() -> None:
        holder["result"] = scan_corpus(src, min_paragraphs=1)

    assert peak_bytes(scan) < MEMORY_MULTIPLE * len(line)
    kept, report = holder["result"]  # type: ignore[misc]
    assert report["dropped_long_units"] == 1 and report["units_found"] == 4
    assert kept[0].units == [para(0, j) for j in range(3)]


class LongestEncoder(HashEncoder):
    """HashEncoder that remembers the longest text it was given."""

    longest = 0

    def encode(self, texts, batch_size=64):
        self.longest = max([self.longest, *map(len, texts)])
        return super().encode(texts, batch_size)


def test_unit_length_cap_drops_counts_and_reports(tmp_path):
    at_cap = ("word " * MAX_UNIT_CHARS)[: MAX_UNIT_CHARS - 1] + "."
    too_long = "word " * MAX_UNIT_CHARS
    paras = [para(0, j) for j in range(7)] + [at_cap, too_long]
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"id": "d", "paragraphs": paras}) + "\n")
    enc = LongestEncoder(dim=8)
    store, report = build_corpus(src, tmp_path / "out", encoder=enc)
    assert report["dropped_long_units"] == 1 and report["units_kept"] == 8
    assert enc.longest == MAX_UNIT_CHARS  # the long unit never reached the encoder
    assert "1 over --max-unit-chars" in format_report(report)
    m = store.manifest
    assert m["counts"]["dropped_long_units"] == 1 and m["cleanup"]["max_unit_chars"] == MAX_UNIT_CHARS
    assert set(COUNT_KEYS) <= set(m["counts"])
    # a lower cap through the command line drops the other long paragraph too
    assert main(["data", "build", str(src), "--out", str(tmp_path / "o2"), "--encoder", "hash",
                 "--max-unit-chars", "100"]) == 0
    assert load_store(tmp_path / "o2").manifest["counts"]["dropped_long_units"] == 2
    assert main(["data", "build", str(src), "--out", str(tmp_path / "o3"), "--max-unit-chars", "0",
                 "--dry-run"]) == 2


def test_sentence_units_are_capped_too(tmp_path):
    long_sentence = "This sentence never ends " + "and goes on " * 500 + "until here."
    paras = [para(0, j) + " " + long_sentence for j in range(7)]
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps({"id": "d", "paragraphs": paras}) + "\n")
    kept, report = scan_corpus(src, unit="sentence")
    assert report["dropped_long_units"] == 7 and kept[0].units == [para(0, j) for j in range(7)]


# --------------------------------------------------------------------------- 3-4. binary and non-UTF-8 files

def _source_with_odd_files(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        (src / f"good{i}.txt").write_text("\n\n".join(para(i, j) for j in range(8)))
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40
    (src / "image.txt").write_bytes(png)
    (src / "packed.md.gz").write_bytes(gzip.compress(png))
    (src / "control.html").write_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 65]) * 500)
    latin = "\n\n".join(para("caf\u00e9", j) for j in range(8))
    (src / "latin.txt").write_bytes(latin.encode("latin-1"))
    return src


def test_binary_files_are_skipped_and_non_utf8_counted(tmp_path):
    src = _source_with_odd_files(tmp_path)
    kept, report = scan_corpus(src)
    assert [d.id for d in kept] == ["good0.txt", "good1.txt", "latin.txt"]
    assert report["skipped_binary_files"] == 3 and report["documents_not_utf8"] == 1
    assert report["skipped_binary_examples"] == ["control.html", "image.txt", "packed.md.gz"]
    assert kept[2].units[0] == para("caf\u00e9", 0)  # still read, as Latin-1
    text = format_report(report)
    assert "3 skipped as binary: control.html, image.txt, packed.md.gz" in text
    assert "1 not valid UTF-8, read as Latin-1: latin.txt" in text


def test_binary_and_latin1_counts_reach_the_manifest(tmp_path):
    src = _source_with_odd_files(tmp_path)
    store, _ = build_corpus(src, tmp_path / "out", encoder=HashEncoder(8))
    m = store.manifest
    assert m["counts"]["skipped_binary_files"] == 3 and m["counts"]["documents_not_utf8"] == 1
    assert m["source_files_noted"]["not_utf8"] == ["latin.txt"]
    assert store.chain_ids() == ["good0.txt", "good1.txt", "latin.txt"]


def test_a_binary_single_file_source_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\x00\x01binary" * 100)
    with pytest.raises(DataError, match="binary content"):
        scan_corpus(path)
    assert main(["data", "build", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "blob.txt" in err and "binary" in err


# --------------------------------------------------------------------------- 5. JSONL nesting

def test_deeply_nested_jsonl_is_one_error_line(tmp_path, capsys):
    src = tmp_path / "c.jsonl"
    good = json.dumps({"id": "d", "paragraphs": [para(0, j) for j in range(7)]})
    src.write_text(good + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["data", "build", str(src), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{src}:2:" in err and "nested too deeply" in err


# --------------------------------------------------------------------------- 6. linear Markdown parsing

def regex_md_inline(text: str) -> str:
    """``md_inline`` as the regex substitutions it replaced (quadratic: only for short texts)."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[\^[^\]]*\]", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"<https?://[^>]+>", "", text)
    text = re.sub(r"<!--.*?-->", "", text)
    text = re.sub(r"</?[A-Za-z][^>]*>", "", text)
    text = re.sub(r"(`+)(.+?)\1", lambda m: m.group(2).strip(), text)
    text = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)", r"\1", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|>])", r"\1", text)
    return normalise_ws(html.unescape(text))


REGEX_ATX = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
REGEX_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)+\|?\s*$")
INLINE_TOKENS = ("word", "a", " ", " ", "*", "**", "***", "_", "__", "x_y", "`", "``", "```", "[", "]", "(", ")",
                 "!", "^", "<", ">", "<!--", "-->", "<http://", "<a>", "</b", "\\", "&amp;", "\n", "\t", ".", "#")


def random_texts(tokens: tuple[str, ...], count: int, max_tokens: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(tokens) for _ in range(rng.randint(0, max_tokens))) for _ in range(count)]


def test_md_inline_matches_the_regexes_it_replaced():
    texts = random_texts(INLINE_TOKENS, 3000, 30, seed=1) + random_texts(("*", "**", "_", "__", "a", " ", "`"), 2000,
                                                                         20, seed=2)
    texts += ["Some *em* and **strong** and _under_ and __dunder__ text.", "a ``code ` span`` here", "``` `a` ```",
              "![alt](img.png) [link](http://x) [ref][r] <https://x.org> [^1] <b>bold</b> <!-- c --> \\*esc\\*",
              "***both*** and *a **b** c* and snake_case_word and 2*3*4"]
    assert [md.md_inline(t) for t in texts] == [regex_md_inline(t) for t in texts]


def test_heading_table_and_quote_lines_match_the_regexes_they_replaced():
    for line in random_texts(("#", "##", " ", "  ", "\t", "a", "b #", "\u00a0"), 2000, 12, seed=3):
        m = REGEX_ATX.match(line)
        assert md._atx(line) == (None if m is None else (m.group(1), m.group(2) or "")), line
    for line in random_texts(("|", "-", "--", ":", " ", "a", "\t", "||"), 3000, 12, seed=4):
        assert md._table_rule(line) == bool(REGEX_TABLE_RULE.match(line)), line
    for line in random_texts((">", " ", "  ", "\t", "a", "> "), 1000, 12, seed=5):
        old = line
        while re.match(r"^\s*>", old):
            old = re.sub(r"^\s*>\s?", "", old, count=1)
        assert line[md._MD_QUOTE.match(line).end():] == old, line


INLINE_ADVERSARIES = {
    "em": "word *a ", "strong": "word **a ", "under": "word _a ", "dunder": "word __a ", "image": "![a",
    "footnote": "[^a", "link": "[a ", "link-no-close": "[a](", "autolink": "<http://a ", "comment": "x <!-- a ",
    "tag": "<a ", "code": "`a `` b ", "mixed": "w *a **b _c __d `e [f ![g <h <!-- ",
}


def assert_inline_reads_are_linear(monkeypatch, inline: Callable[[str], str], piece: str, n: int) -> None:
    """``inline`` on ``piece`` repeated ``n`` and ``2n`` times: each character is read by the searches (every one
    goes through ``scan.search``, counted here up to each match's end) fewer than 40 times (11 steps, ~1-3 reads
    each), and twice the text costs about twice the reads and Python calls."""
    read = 0

    def counting(pattern, text, pos):
        nonlocal read
        m = re.Pattern.search(pattern, text, pos)
        read += (len(text) if m is None else m.end()) - pos
        return m

    monkeypatch.setattr(scan, "search", counting)
    work = {}
    for size in (n, 2 * n):
        text = piece * size
        read = 0
        calls = python_calls(lambda text=text: inline(text))
        work[size] = (read, calls)
        assert read < 40 * len(text), f"{piece!r}: {read} characters read for {len(text)}"
    (small_read, small_calls), (large_read, large_calls) = work[n], work[2 * n]
    assert large_read / small_read < 2.5 and large_calls / small_calls < 2.5, (piece, work)


@pytest.mark.parametrize("kind", sorted(INLINE_ADVERSARIES))
def test_md_inline_reads_each_character_a_bounded_number_of_times(monkeypatch, kind):
    """``re.sub`` read from each unmatched opener to the end of the paragraph, so twice the text cost four times
    the work."""
    assert_inline_reads_are_linear(monkeypatch, md.md_inline, INLINE_ADVERSARIES[kind], 2000)


def test_long_markdown_lines_parse():
    """About 1 MB each: a paragraph of unmatched markers, a heading of spaces and ``#`` (the heading regex was
    cubic: 45 s for 8 KB), a table rule with a long run of spaces and a line of quote markers (both quadratic)."""
    n = 1_000_000
    _, units = parse_markdown("Intro text here.\n\n" + "word *a " * (n // 8))
    assert len(units) == 2 and units[1].startswith("word *a word *a")
    title, units = parse_markdown("# A title" + " " * (n // 3) + "#" * (n // 3) + " " * (n // 3) + "b\n\nText.")
    assert title.startswith("A title") and title.endswith("b") and units == ["Text."]
    _, units = parse_markdown("a|b\n|-|-" + " " * n + "x\n\nAfter.")
    assert units == ["a|b |-|- x", "After."]
    _, units = parse_markdown(">" * n + " quoted")
    assert units == ["quoted"]


# --------------------------------------------------------------------------- 7. linear reST parsing

def regex_rst_inline(text: str) -> str:
    """``rst_inline`` as the regex substitutions it replaced (quadratic: only for short texts)."""
    def role_text(m: re.Match[str]) -> str:
        body = m.group(1)
        target = re.match(r"^(.*?)\s*<[^<>]+>$", body)
        if target and target.group(1):
            body = target.group(1)
        body = body.lstrip("!")
        return body[1:].split(".")[-1] if body.startswith("~") else body

    text = re.sub(r"(?<=\w)__?(?=\s|$|[.,;:!?)\]'\"])", "", text)
    text = re.sub(r"\s*\[(?:#[\w-]*|\*|\d+|[A-Za-z][\w-]*)\]_", "", text)
    text = re.sub(r":(pep|rfc):`(\d+)[^`]*`", lambda m: f"{m.group(1).upper()} {m.group(2)}", text)
    text = re.sub(r":[\w.+-]+(?::[\w.+-]+)*:`([^`]+)`", role_text, text)
    text = re.sub(r"`([^`<]*?)\s*<[^`>]*>`__?", r"\1", text)
    text = re.sub(r"`([^`]+)`__?", r"\1", text)
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\1", text)
    text = re.sub(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"\|([\w -]+)\|_{0,2}", r"\1", text)
    text = text.replace("\\ ", "")
    text = re.sub(r"\\(.)", r"\1", text)
    return normalise_ws(text)


RST_TOKENS = ("word", "a", "x_y", " ", " ", "  ", "\t", "\n", "\u00a0", "*", "**", "***", "`", "``", "```", ":", "::",
              ":r:", ":py:func:", ":pep:", ":rfc:", "12", "|", "|x|", "|a b|_", "[1]_", "[#]_", "[*]_", "[a-b]_", "[",
              "]", "]_", "_", "__", "<", ">", "<b>", "`a <b>`_", "`a <b>`__", "~", "!", ".", "-", "+", "\\", "\\ ", "(")
RST_ALPHABETS = {  # small alphabets, so that each construct's edge cases come up often
    "roles": (":", "a", "`", " ", "::", "~", ".", "!", "<", ">", "\n", "_"),
    "hyperlinks": ("`", "a", " ", "<", ">", "_", "\n", "\t"),
    "emphasis": ("*", "**", "a", " ", "\n", "_"),
    "footnotes": ("[", "]", "_", "1", "#", "*", "a", "-", " ", "\n", "\u00a0"),
    "substitutions": ("|", "a", " ", "-", "_", "."),
    "literals": ("`", "``", "a", "\n", " ", "\\"),
}


def test_rst_inline_matches_the_regexes_it_replaced():
    texts = random_texts(RST_TOKENS, 3000, 40, seed=11)
    for k, alphabet in enumerate(RST_ALPHABETS.values()):
        texts += random_texts(alphabet, 800, 24, seed=20 + k)
    texts += ["See :func:`~pkg.mod.func`, :ref:`the guide <guide>`, :pep:`8` and `Python <https://python.org>`_.",
              "A *b* **c** ``d`` `e`_ |f|_ [1]_ [#note]_ word_ and\\ escaped \\*star\\*.", ":a:b::c:`x` :: :`y`"]
    assert [rst.rst_inline(t) for t in texts] == [regex_rst_inline(t) for t in texts]


RST_ADVERSARIES = {
    "em": "word *a ", "strong": "word **a ", "space-run": "a" + " " * 50, "footnote-space": " " * 50 + "[1]_",
    "role-chain": ":a", "role-no-close": "w :r:`a ", "role-body-space": ":r:`a" + " " * 50 + "b` ",
    "hyperlink-space": "`a" + " " * 50, "literal": "w ``a ` ", "substitution": "w |a. ",
    "mixed": "w *a **b ``c `d :r:`e `f <g |h [1 :a:b",
}


@pytest.mark.parametrize("kind", sorted(RST_ADVERSARIES))
def test_rst_inline_reads_each_character_a_bounded_number_of_times(monkeypatch, kind):
    """As for Markdown: the regexes re-read from each unmatched opener, whitespace position or role-name colon to
    the end of its span."""
    assert_inline_reads_are_linear(monkeypatch, rst.rst_inline, RST_ADVERSARIES[kind], 1000)


def nested_notes(depth: int, indent: str = " ") -> str:
    return "".join(indent * i + ".. note::\n\n" for i in range(depth)) + indent * depth + "Body text.\n"


def test_nested_directives_parse_in_linear_work():
    """Each nested ``.. note::`` was parsed by a recursive call that rescanned and re-indented its whole body: a few
    hundred levels raised RecursionError, and the work grew with the square of the depth (in Python calls)."""
    assert parse_rst(nested_notes(3000)) == ("", ["Body text."])  # ~4.5 MB of indentation
    assert parse_rst(nested_notes(1000, "\t")) == ("", ["Body text."])
    small, large = (python_calls(lambda d=d: parse_rst(nested_notes(d))) for d in (400, 800))
    assert large / small < 2.5, (small, large)


def test_nested_directive_bodies_parse_as_before():
    doc = ("Guide\n=====\n\n.. note::\n\n   Outer note text.\n\n   .. warning::\n\t:class: x\n\n"
           "\tInner\ttabbed |a\tb| text.\n\n\t.. code-block:: python\n\n\t   dropped()\n\n"
           "\tStill inside the warning::\n\n\t    literal, dropped\n\n   Back in the note.\n\n"
           "      .. versionchanged:: 3.2\n         Changed *here*.\n\nAfter the note.\n")
    # a body's tabs are expanded (so "|a    b|" is a substitution there), as before
    assert parse_rst(doc) == ("Guide", ["Outer note text.", "Inner tabbed a b text.", "Still inside the warning:",
                                        "Back in the note.", "Changed here.", "After the note."])


def test_long_rst_lines_parse():
    """About 1 MB each (the regexes: ``word *a`` took 2 s at 40 KB, ``word **a`` 3.5 s, ``:a`` 8 s)."""
    n = 1_000_000
    for piece in ("word *a ", "word **a "):
        _, units = parse_rst("Intro text here.\n\n" + piece * (n // len(piece)))
        assert len(units) == 2 and units[1] == (piece * (n // len(piece))).strip(), piece
    _, units = parse_rst(":a" * (n // 2) + ":`role`\n\n`link" + " " * n + "<x>`_ and a" + " " * n + "[1]_ note.")
    assert units == ["role", "link and a note."]


# --------------------------------------------------------------------------- 8. HTML the stdlib parser refuses

def test_unknown_marked_sections_are_bogus_comments(tmp_path):
    """``<![`` without a keyword the stdlib knows raised AssertionError ("unknown status keyword") and stopped the
    build with a traceback; as in HTML, it is a comment up to the next ``>``."""
    page = "<h1>T</h1><p>One <![foo[ bar ]]> two.</p><p>Three <![ x > four</p><p>Five <![if x]>six<![endif]></p>{}"
    assert parse_html(page.format("")) == ("T", ["One two.", "Three four", "Five six"])
    assert parse_html(page.format("<p>Seven <![foo[ to the end, no closing bracket"))[1][-1] == "Seven"
    assert parse_html(page.format("<p>Seven <![foo[ up to <b>x"))[1][-1] == "Seven x"  # the first ">" ends it
    p = _HTMLUnits()
    for piece in ("<p>a <![fo", "o[ b > c</p>"):
        p.feed(piece)
    p.close()
    p.flush()
    assert p.units == ["a c"]
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        paras = "".join(f"<p>{para(i, j)}</p>" for j in range(8))
        (src / f"d{i}.html").write_text(f"<html><body><h1>Doc {i}</h1>{paras}<![foo[ x ]]></body></html>")
    assert main(["data", "build", str(src), "--out", str(tmp_path / "o"), "--dry-run"]) == 0


TAG_SOUP = ("<!", "<![", "<?", "</", "<", ">", "'", '"', "=", "a", "p", " ", "-", "--", "[", "]", "CDATA", "if", "endif",
            "doctype", "foo", "&", "&#", ";", "\n", "/", "<script>", "</script>", "<!--", "-->", "]]>", "]>", "<p>",
            "</p>", "<main>", "<a href='", '<b class="', "\x00", "<![CDATA[", "<![if", "<![endif]>", "<!x", "</ ")


def test_tag_soup_pages_parse_or_raise_one_data_error():
    """Random pages of half-open constructs: a quarter of them made the stdlib parser raise AssertionError."""
    for k, page in enumerate(random_texts(TAG_SOUP, 500, 60, seed=31)):
        try:
            parse_html(page)
        except DataError as exc:
            assert len(str(exc).splitlines()) == 1, page
        p = _HTMLUnits()  # fed in pieces too
        try:
            for i in range(0, len(page), 1 + k % 7):
                p.feed(page[i : i + 1 + k % 7])
            p.close()
        except DataError as exc:
            assert len(str(exc).splitlines()) == 1, page


def test_a_parser_refusal_is_one_error_line(monkeypatch, tmp_path, capsys):
    def refuse(self, i):
        raise AssertionError("unexpected\nthing")

    monkeypatch.setattr(HTMLParser, "parse_pi", refuse)  # no input reaches such a refusal today
    with pytest.raises(DataError, match=r"^HTML parser cannot read the page near line 2, column 4: unexpected thing$"):
        parse_html("<p>a</p>\nxyz<?pi?>")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.html").write_text("<p>" + para(0, 0) + "</p><?x?>")
    assert main(["data", "build", str(src), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{src / 'a.html'}: HTML parser cannot read" in err


def test_a_parser_data_error_names_the_file(monkeypatch, tmp_path, capsys):
    """A parser knows the line and column of what it refuses, not the file: the build adds the file's path."""
    def refuse(text):
        raise DataError("line 3, column 5: cannot read\nthis")

    monkeypatch.setitem(formats._BY_SUFFIX, ".html", formats.Format("html", refuse, (".html", ".htm")))
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text(para(0, 0))
    (src / "b.html").write_text("<p>" + para(0, 1) + "</p>")
    assert main(["data", "build", str(src), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.endswith(f"{src / 'b.html'}: line 3, column 5: cannot read this")
