"""The page around the fragments: one HTML document with its CSS and script inline.

A report must open from a file, offline, years later, so nothing is fetched:
no CDN, no web font (only locally installed font names), no external image.
The one script makes ``<table class="sortable">`` sortable by clicking a
header and opens every ``<details>`` before printing.
"""

from __future__ import annotations

import html

__all__ = ["Html", "escape", "page", "section", "CSS", "SCRIPT"]


class Html(str):
    """Markup that is already safe: :func:`escape` passes it through unchanged, so fragments compose."""

    __slots__ = ()


def escape(text: object) -> Html:
    """Text as HTML (quotes included, so it is safe in attributes too); :class:`Html` is left as it is."""
    return text if isinstance(text, Html) else Html(html.escape(str(text), quote=True))


CSS = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #6a737d; --rule: #d0d7de; --band: #f6f8fa;
        --accent: #1f77b4; --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 1240px; color: var(--ink); background: #fff;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; border-bottom: 2px solid var(--rule); padding-bottom: .4rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; }
section, details { margin: 0 0 1.5rem; }
details > summary { cursor: pointer; font-weight: 600; font-size: 1.1rem; margin: 1.2rem 0 .6rem; }
p.note, .muted { color: var(--muted); font-size: .9rem; }
code, td.num { font-family: var(--mono); font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: .3rem; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; }
tbody tr:hover { background: #f0f6fc; }
tr.baseline td { color: var(--muted); font-style: italic; background: #fafafa; }
tr.highlight td { font-weight: 600; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th::after { content: "\\00a0\\2195"; color: #b0b7bf; font-weight: normal; }
table.sortable thead th[aria-sort="ascending"]::after { content: "\\00a0\\25B2"; color: var(--accent); }
table.sortable thead th[aria-sort="descending"]::after { content: "\\00a0\\25BC"; color: var(--accent); }
table.sortable thead th:focus-visible { outline: 2px solid var(--accent); outline-offset: -2px; }
figure { margin: .5rem 0 1.5rem; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .2rem; }
svg.chart { display: block; max-width: 100%; height: auto; }
p.lead { color: var(--muted); margin: -.4rem 0 1rem; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: .3rem 1.5rem;
           margin: 0 0 1rem; }
dl.facts > div { border-left: 3px solid var(--rule); padding: .1rem .6rem; }
dl.facts dt { color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
ul.verdicts { list-style: none; padding: 0; margin: .5rem 0 1rem; }
ul.verdicts li { margin: .2rem 0; }
.badge { display: inline-block; min-width: 3.2em; text-align: center; font-weight: 700; font-size: .8rem;
         border-radius: 3px; padding: .05rem .4rem; color: #fff; background: var(--muted); }
li.pass .badge { background: #1a7f37; }
li.fail .badge { background: #cf222e; }
div.board { overflow-x: auto; }
div.board table { font-size: .8rem; }
div.board th { white-space: normal; min-width: 4em; vertical-align: bottom; }
div.board td, div.board th { padding: .25rem .4rem; }
div.board td.num { white-space: pre; }
div.board td.num::first-line { font-weight: 600; }
div.board tr.baseline td.num::first-line { font-weight: normal; }
pre.recipe { background: var(--band); padding: .6rem; font-size: .8rem; max-height: 32rem; overflow: auto; }
details.group, details.run { border: 1px solid var(--rule); border-radius: 4px; padding: 0 .8rem; margin: .6rem 0; }
details.group > summary, details.run > summary { font-size: 1rem; }
ul.artefacts { columns: 2; padding-left: 1.2rem; }
h3, h4 { margin: 1rem 0 .4rem; }
figure.curves { display: flex; flex-wrap: wrap; gap: 0 1rem; }
figure.curves > figcaption { flex-basis: 100%; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  tbody tr:hover { background: none; }
  table.sortable thead th::after { content: ""; }
  table, figure, svg, tr { break-inside: avoid; }
  h2, summary { break-after: avoid; }
  div.board { overflow: visible; }
}
"""

SCRIPT = """
(function () {
  "use strict";
  // A cell's sort key: its data-sort number when it has one (NaN or "" = missing), else its text.
  function key(cell) {
    if (!cell) { return null; }
    var s = cell.getAttribute("data-sort");
    if (s === null) { return cell.textContent.trim(); }
    var v = parseFloat(s);
    return isNaN(v) ? null : v;
  }
  // Missing keys last and numbers before text, whatever the direction; ties keep the shown order.
  function rank(k) { return k === null ? 2 : (typeof k === "number" ? 0 : 1); }
  function compare(a, b, sign) {
    var ra = rank(a.k), rb = rank(b.k);
    if (ra !== rb || ra === 2) { return (ra - rb) || (a.i - b.i); }
    var c = ra === 0 ? a.k - b.k : String(a.k).localeCompare(String(b.k), undefined, {numeric: true});
    return sign * c || (a.i - b.i);
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    var rows = Array.prototype.map.call(body.rows, function (r, i) { return {r: r, k: key(r.cells[col]), i: i}; });
    rows.sort(function (a, b) { return compare(a, b, dir === "ascending" ? 1 : -1); });
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    rows.forEach(function (x) { body.appendChild(x.r); });
  }
  function header(e) { return e.target.closest ? e.target.closest("table.sortable thead th") : null; }
  document.addEventListener("click", function (e) { var th = header(e); if (th) { sortBy(th); } });
  document.addEventListener("keydown", function (e) {
    var th = header(e);
    if (th && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); sortBy(th); }
  });
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });
})();
"""


def page(title: str, body: str, generator: str = "lvmbench") -> Html:
    """A complete HTML document: ``body`` (already HTML) under an ``<h1>``, with the CSS and script inline."""
    return Html(
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="{escape(generator)}">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<h1>{escape(title)}</h1>\n{body}\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def section(title: str, body: str, collapsed: bool = False, anchor: str | None = None) -> Html:
    """A titled part of the page; ``collapsed`` folds it into ``<details>`` (opened again for printing)."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    if collapsed:
        return Html(f"<details{ident}>\n<summary>{escape(title)}</summary>\n{body}\n</details>\n")
    return Html(f"<section{ident}>\n<h2>{escape(title)}</h2>\n{body}\n</section>\n")
