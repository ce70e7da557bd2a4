"""Corpus builder limits: linear HTML parsing, bounded memory, the unit-length cap, binary and non-UTF-8 files.

Work is measured deterministically, never with a clock: Python-level calls
(``sys.setprofile`` 'call' events, generator resumptions included) for time,
``tracemalloc`` peaks for memory.  A linear parser does about twice the work
on twice the input; the stack scans it replaced did four times as much.
"""

from __future__ import annotations

import gzip
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Callable

import pytest

from lvmbench.cli import main
from lvmbench.data.corpus import build_corpus, format_report, normalise_ws, parse_html, scan_corpus, split_sentences
from lvmbench.data.corpus.build import COUNT_KEYS, MEMORY_MULTIPLE
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
