"""HTML, Markdown and reST parsing of the corpus builder (``data.corpus.formats``) on hostile input.

Two generated pages, about 10 MB each: ``<div><p>text`` nested 312k levels
deep (each ``<div>`` closes the open ``<p>``; the divs close at the end), and
one list of 357k ``<li>`` items none of which is closed (valid HTML).  Both
used to take time quadratic in the page (an 8.3 MB nested page: 403 s); the
parser is now linear, so these are seconds.  ``extra_info`` records the page
size and unit count; every unit must be found.

Then about 1 MB each of markers that never close: a page of ``<!--`` (and
one of ``<a b``, unclosed start tags), which Python 3.11's parser rescanned
from each to the end of the page (3.8 s at 240 KB; the ``<a b`` page 97 s at
120 KB), and a Markdown paragraph of ``word *a`` (and one mixing the other
inline openers), whose emphasis regex searched from each ``*`` to the end of
the paragraph (31 s at 160 KB), and a reST paragraph of ``word *a`` (and
``word **a``), whose emphasis regexes did the same (2 s at 40 KB; ``**a``
3.5 s).  All now take well under a second.  The tests in
``tests/test_corpus_limits.py`` check linearity without a clock.
"""

from __future__ import annotations

import pytest

from benchmarks._common import stats_of
from lvmbench.data.corpus.formats.html import parse_html
from lvmbench.data.corpus.formats.markdown import parse_markdown
from lvmbench.data.corpus.formats.rst import parse_rst

TARGET_BYTES = 10_000_000


def nested_page(n: int) -> str:
    return "<html><body>" + "".join(f"<div><p>Level {i} text." for i in range(n)) + "</div>" * n + "</body></html>"


def unclosed_list_page(n: int) -> str:
    return "<html><body><ul>" + "".join(f"<li>Item {i} of the list." for i in range(n)) + "</ul></body></html>"


def sized(make, per_unit: int) -> tuple[str, int]:
    """A page of about TARGET_BYTES and its unit count."""
    n = TARGET_BYTES // per_unit
    return make(n), n


PAGES = {"nested-div-p": (nested_page, 32), "unclosed-li": (unclosed_list_page, 28)}  # bytes per unit


@pytest.mark.parametrize("kind", sorted(PAGES))
def test_parse_html_10mb(benchmark, kind: str) -> None:
    make, per_unit = PAGES[kind]
    page, n = sized(make, per_unit)
    benchmark.group = "corpus: parse one 10 MB HTML page"
    benchmark.extra_info.update({"page": kind, "bytes": len(page), "units": n})
    _, units = benchmark.pedantic(parse_html, args=(page,), rounds=3, warmup_rounds=0)
    assert len(units) == n
    stats = stats_of(benchmark)
    if stats:
        benchmark.extra_info["mb_per_s"] = round(len(page) / 1e6 / stats.median, 2)


UNCLOSED_BYTES = 1_000_000
UNCLOSED_HTML = {"comment": "<!-- a ", "start-tag": "<a b "}
UNCLOSED_MARKDOWN = {"emphasis": "word *a ", "mixed": "w *a **b _c __d [f ![g <h <!-- "}
UNCLOSED_RST = {"emphasis": "word *a ", "strong": "word **a "}


@pytest.mark.parametrize("kind", sorted(UNCLOSED_HTML))
def test_parse_html_unclosed_1mb(benchmark, kind: str) -> None:
    piece = UNCLOSED_HTML[kind]
    page = "<p>Kept text.</p>" + piece * (UNCLOSED_BYTES // len(piece))
    benchmark.group = "corpus: parse 1 MB of unclosed markers"
    benchmark.extra_info.update({"format": "html", "marker": kind, "bytes": len(page)})
    _, units = benchmark.pedantic(parse_html, args=(page,), rounds=3, warmup_rounds=0)
    assert units == ["Kept text."]  # the first unclosed construct runs to the end of the page
    stats = stats_of(benchmark)
    if stats:
        benchmark.extra_info["mb_per_s"] = round(len(page) / 1e6 / stats.median, 2)


@pytest.mark.parametrize("kind", sorted(UNCLOSED_MARKDOWN))
def test_parse_markdown_unmatched_1mb(benchmark, kind: str) -> None:
    piece = UNCLOSED_MARKDOWN[kind]
    paragraph = piece * (UNCLOSED_BYTES // len(piece))
    benchmark.group = "corpus: parse 1 MB of unclosed markers"
    benchmark.extra_info.update({"format": "markdown", "marker": kind, "bytes": len(paragraph)})
    _, units = benchmark.pedantic(parse_markdown, args=(paragraph,), rounds=3, warmup_rounds=0)
    assert len(units) == 1 and units[0] == paragraph.strip()  # nothing closes, so nothing is removed
    stats = stats_of(benchmark)
    if stats:
        benchmark.extra_info["mb_per_s"] = round(len(paragraph) / 1e6 / stats.median, 2)


@pytest.mark.parametrize("kind", sorted(UNCLOSED_RST))
def test_parse_rst_unmatched_1mb(benchmark, kind: str) -> None:
    piece = UNCLOSED_RST[kind]
    paragraph = piece * (UNCLOSED_BYTES // len(piece))
    benchmark.group = "corpus: parse 1 MB of unclosed markers"
    benchmark.extra_info.update({"format": "rst", "marker": kind, "bytes": len(paragraph)})
    _, units = benchmark.pedantic(parse_rst, args=(paragraph,), rounds=3, warmup_rounds=0)
    assert len(units) == 1 and units[0] == paragraph.strip()  # nothing closes, so nothing is removed
    stats = stats_of(benchmark)
    if stats:
        benchmark.extra_info["mb_per_s"] = round(len(paragraph) / 1e6 / stats.median, 2)
