"""The HTML primitives, checked in a real browser: what Chromium renders, not the string we wrote.

A demo page (sortable leaderboard with model and baseline rows, every chart)
is built from lvmbench.report.html, opened from a file in headless Chromium
(tests/browser.py, one session for the module) and read back from the DOM:
the numbers shown are the numbers given, header clicks sort numerically both
ways, baselines look different, the SVG marks carry their values, the console
is clean and the page requests nothing but itself.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from browser import artefacts_dir, launch

import browser as browser_module
from lvmbench.format import DASH, pct, pct_ci
from lvmbench.report.html import escape, histogram, interval_bars, line_chart, offsets_chart, page, section, table

# name, kind, Hit@5, 95 % interval, latency ms (None = not measured)
LEADERBOARD = [
    ("gru-small", "model", 0.553, (0.521, 0.584), 9.5),
    ('attn <i>&</i> "q"', "model", 0.612, (0.580, 0.641), 10.2),
    ("mlp", "model", 0.095, (0.080, 0.112), 2.0),
    ("copy-last", "baseline", 0.302, (0.270, 0.333), None),
    ("mean-of-context", "baseline", 0.101, (0.085, 0.118), 0.7),
]
BASELINES = {row[0] for row in LEADERBOARD if row[1] == "baseline"}
EPOCHS = list(range(1, 13))
TRAIN = [2.0 / e ** 0.5 for e in EPOCHS]
VAL = [math.nan] + [1.5 / e ** 0.4 + 0.01 * max(0, e - 8) ** 2 for e in EPOCHS[1:]]
BEST = 8
EDGES = [1, 2, 3, 5, 10, 20, 50, 100, 1000, 10000]
COUNTS = [412, 96, 88, 70, 51, 44, 30, 41, 12]
OFFSETS = [-2, -1, 1, 2, 3, 4]
COSINES = [0.12, 0.31, 0.78, 0.52, 0.37, -0.05]


def ms(x: float | None) -> str:
    return DASH if x is None else f"{x:.1f}"


def leaderboard() -> str:
    rows = [[name, kind, pct_ci(hit, ci), ms(lat)] for name, kind, hit, ci, lat in LEADERBOARD]
    keys = [[None, None, hit, lat] for _, _, hit, _, lat in LEADERBOARD]
    classes = ["baseline" if kind == "baseline" else None for _, kind, *_ in LEADERBOARD]
    return table(["predictor", "kind", "Hit@5 (%) [95 % CI]", "latency (ms)"], rows, keys, classes,
                 caption="Hit@5 on the test split; baselines in grey")


def demo_page() -> str:
    names = [r[0] for r in LEADERBOARD]
    bars = interval_bars(names, [r[2] for r in LEADERBOARD], [r[3][0] for r in LEADERBOARD],
                         [r[3][1] for r in LEADERBOARD], highlight={'attn <i>&</i> "q"'}, baselines=BASELINES,
                         xlabel="Hit@5 (%)", fmt=pct)
    curves = line_chart({"train loss": list(zip(EPOCHS, TRAIN)), "validation loss": list(zip(EPOCHS, VAL))},
                        marker_x=BEST, xlabel="epoch", ylabel="loss", marker_label="best epoch")
    ranks = histogram(COUNTS, EDGES, xlabel="rank of the target", ylabel="queries", log_x=True)
    body = (section("Leaderboard", leaderboard() + bars)
            + section("Training", curves)
            + section("Where the target ranks", ranks)
            + section("Direction", offsets_chart(OFFSETS, COSINES))
            + section("Run details", table(["key", "value"], [["seed", "0"], ["split", "test"]], sortable=False),
                      collapsed=True))
    return page("lvmbench demo <report>", body)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "demo.html"
    path.write_text(demo_page(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser(demo_file):
    b = launch()
    b.open(demo_file)
    yield b
    b.close()


def script(b, js: str, *args):
    return b.driver.execute_script(js, *args)


def column(b, index: int) -> list[str]:
    return script(b, "return Array.from(document.querySelectorAll('table.sortable')[0].tBodies[0].rows)"
                     ".map(r => r.cells[arguments[0]].textContent)", index)


# --- without a browser -----------------------------------------------------------------------------------------

NETWORK = re.compile(r"""(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?\s*"""
                     r"""(?:https?:)?//""", re.IGNORECASE)


def test_the_page_refers_to_nothing_on_the_network():
    text = demo_page()
    assert not NETWORK.search(text), NETWORK.search(text)
    assert "http://" not in text and "https://" not in text


def test_the_network_pattern_catches_what_it_should():
    for bad in ['<img src="https://x/a.png">', "<link href='//cdn/x.css'>", "@import 'a.css'",
                "background: url(http://x/y.png)", "<script src=https://x/y.js>"]:
        assert NETWORK.search(bad), bad


def test_text_is_escaped_everywhere():
    hostile = '<img src="https://evil.example/x.png" onerror="alert(1)">'
    html = table([hostile], [[hostile]], [[None]]) + interval_bars([hostile], [0.5], [0.4], [0.6]) + section(
        hostile, "") + line_chart({hostile: [(1, 2), (2, 3)]}, xlabel=hostile) + page(hostile, "")
    assert "<img" not in html and not NETWORK.search(html)
    assert escape(escape("<&>")) == "&lt;&amp;&gt;"


def test_ragged_input_is_refused():
    with pytest.raises(ValueError, match="row 0"):
        table(["a", "b"], [["1"]])
    with pytest.raises(ValueError, match="same length"):
        interval_bars(["a"], [1.0], [], [])
    with pytest.raises(ValueError, match="edges"):
        histogram([1, 2], [0, 1])


def test_empty_charts_say_no_data():
    for chart in (interval_bars([], [], [], []), line_chart({}), histogram([], [0]), offsets_chart([], [])):
        assert "no data" in chart and chart.startswith("<svg")


def test_a_missing_browser_fails_unless_it_is_optional(monkeypatch):
    monkeypatch.setattr(browser_module, "missing", lambda: "no chromium binary found")
    monkeypatch.delenv("LVMBENCH_BROWSER_OPTIONAL", raising=False)
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium chromium-driver"):
        launch()
    monkeypatch.setenv("LVMBENCH_BROWSER_OPTIONAL", "1")
    with pytest.raises(pytest.skip.Exception, match="no chromium binary found"):
        launch()


# --- in the browser --------------------------------------------------------------------------------------------

def test_shown_numbers_are_the_given_numbers(browser, demo_file):
    browser.open(demo_file)
    assert column(browser, 0) == [r[0] for r in LEADERBOARD]  # escaped on the way in, the same text on screen
    assert column(browser, 2) == [pct_ci(hit, ci) for _, _, hit, ci, _ in LEADERBOARD]
    assert column(browser, 3) == [ms(r[4]) for r in LEADERBOARD]
    keys = script(browser, "return Array.from(document.querySelectorAll('table.sortable tbody tr'))"
                           ".map(r => r.cells[2].dataset.sort)")
    assert [float(k) for k in keys] == [r[2] for r in LEADERBOARD]
    assert browser.driver.title == "lvmbench demo <report>"


def test_clicking_a_header_sorts_numerically_both_ways(browser, demo_file):
    browser.open(demo_file)
    headers = browser.driver.find_elements("css selector", "table.sortable thead th")
    latency = headers[3]
    latency.click()
    assert column(browser, 3) == ["0.7", "2.0", "9.5", "10.2", DASH]  # 9.5 before 10.2: numbers, not text
    assert latency.get_attribute("aria-sort") == "ascending"
    latency.click()
    assert column(browser, 3) == ["10.2", "9.5", "2.0", "0.7", DASH]  # the missing value stays last
    assert latency.get_attribute("aria-sort") == "descending"
    headers[2].click()
    hits = sorted(r[2] for r in LEADERBOARD)
    assert column(browser, 2)[0].startswith(f"{100 * hits[0]:.1f} ")
    assert latency.get_attribute("aria-sort") is None and headers[2].get_attribute("aria-sort") == "ascending"
    headers[0].click()
    assert column(browser, 0) == sorted((r[0] for r in LEADERBOARD), key=str.lower)


def test_the_keyboard_sorts_too(browser, demo_file):
    browser.open(demo_file)
    header = browser.driver.find_elements("css selector", "table.sortable thead th")[3]
    header.send_keys("\n")
    assert header.get_attribute("aria-sort") == "ascending"


def test_baseline_rows_look_different(browser):
    style = script(browser, """
        const cell = sel => getComputedStyle(document.querySelector(sel));
        const b = cell('table.sortable tr.baseline td'), m = cell('table.sortable tr:not(.baseline) td');
        return [b.fontStyle, m.fontStyle, b.color, m.color];""")
    assert style[0] == "italic" and style[1] == "normal" and style[2] != style[3]
    rows = browser.driver.find_elements("css selector", "table.sortable tbody tr.baseline td:first-child")
    assert {r.text for r in rows} == BASELINES


def test_bars_carry_and_draw_their_values(browser):
    bars = script(browser, """return Array.from(document.querySelectorAll('svg.interval-bars g.bar')).map(g => ({
        label: g.dataset.label, value: +g.dataset.value, low: +g.dataset.low, high: +g.dataset.high,
        cls: g.getAttribute('class'), width: g.querySelector('rect').getBoundingClientRect().width}));""")
    assert [b["label"] for b in bars] == [r[0] for r in LEADERBOARD]
    assert [(b["value"], b["low"], b["high"]) for b in bars] == [(r[2], *r[3]) for r in LEADERBOARD]
    assert [("baseline" in b["cls"]) for b in bars] == [r[1] == "baseline" for r in LEADERBOARD]
    assert "highlight" in bars[1]["cls"]
    ratios = [b["width"] / b["value"] for b in bars]  # drawn lengths proportional to the values
    assert max(ratios) / min(ratios) < 1.02


def test_the_curves_carry_their_points_and_mark_the_best_epoch(browser):
    series = script(browser, """return Array.from(document.querySelectorAll('svg.line-chart g.series'))
        .map(g => [g.dataset.series, g.dataset.points]);""")
    assert [name for name, _ in series] == ["train loss", "validation loss"]
    assert json.loads(series[0][1]) == [[e, y] for e, y in zip(EPOCHS, TRAIN)]
    assert json.loads(series[1][1]) == [[e, None if math.isnan(y) else y] for e, y in zip(EPOCHS, VAL)]
    where = script(browser, """const c = document.querySelector('svg.line-chart g.series circle[data-x="8.0"]');
        const m = document.querySelector('svg.line-chart g.marker');
        return [+m.dataset.x, c.getBoundingClientRect().x + c.getBoundingClientRect().width / 2,
                m.querySelector('line').getBoundingClientRect().x];""")
    assert where[0] == BEST and abs(where[1] - where[2]) < 1.5


def test_histogram_and_offsets_carry_their_values(browser):
    bins = script(browser, """return Array.from(document.querySelectorAll('svg.histogram g.bin')).map(g =>
        [+g.dataset.lo, +g.dataset.hi, +g.dataset.count, g.querySelector('rect').getBoundingClientRect().height]);""")
    assert [b[:3] for b in bins] == [[a, b, c] for a, b, c in zip(EDGES, EDGES[1:], COUNTS)]
    assert max(b[3] / b[2] for b in bins) / min(b[3] / b[2] for b in bins) < 1.05
    points = script(browser, """return Array.from(document.querySelectorAll('svg.offsets-chart circle'))
        .map(c => [+c.dataset.x, +c.dataset.y]);""")
    assert points == [[k, v] for k, v in zip(OFFSETS, COSINES)]


def test_charts_fit_the_window_and_collapsed_sections_are_closed(browser):
    boxes = script(browser, """return Array.from(document.querySelectorAll('svg.chart'))
        .map(s => [s.getAttribute('class'), s.getBoundingClientRect().width, s.getBoundingClientRect().height]);""")
    assert len(boxes) == 4
    assert all(0 < w <= 1280 and h > 50 for _, w, h in boxes), boxes
    assert script(browser, "return document.querySelector('details').open") is False


def test_the_console_is_clean_and_nothing_leaves_the_file(browser, demo_file):
    browser.open(demo_file)
    browser.driver.find_elements("css selector", "table.sortable thead th")[2].click()
    assert browser.console_errors() == []
    assert browser.outside_requests() == []
    assert browser.requests() == [demo_file.resolve().as_uri()]


def test_a_screenshot_is_written(browser, demo_file, tmp_path_factory):
    browser.open(demo_file)
    shot = browser.screenshot(artefacts_dir(tmp_path_factory.mktemp("artefacts")) / "html_primitives_demo.png")
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_harness_sees_outside_requests_and_console_errors(browser, tmp_path):
    """The two checks above only mean something if a leaking, failing page is caught."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text(page("leaky", '<img src="https://example.invalid/x.png" alt="">'
                                   '<script>console.error("boom")</script>'), encoding="utf-8")
    browser.open(leaky)
    assert browser.outside_requests() == ["https://example.invalid/x.png"]
    assert any("boom" in e for e in browser.console_errors())
