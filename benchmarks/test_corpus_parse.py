"""HTML parsing of the corpus builder (``data.corpus.formats.html.parse_html``) on hostile 10 MB pages.

Two generated pages, about 10 MB each: ``<div><p>text`` nested 312k levels
deep (each ``<div>`` closes the open ``<p>``; the divs close at the end), and
one list of 357k ``<li>`` items none of which is closed (valid HTML).  Both
used to take time quadratic in the page (an 8.3 MB nested page: 403 s); the
parser is now linear, so these are seconds.  ``extra_info`` records the page
size and unit count; every unit must be found.  The tests in
``tests/test_corpus_limits.py`` check linearity without a clock.
"""

from __future__ import annotations

import pytest

from benchmarks._common import stats_of
from lvmbench.data.corpus.formats.html import parse_html

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
