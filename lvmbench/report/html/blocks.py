"""One HTML fragment per view (:mod:`lvmbench.report.html.views`): headline, leaderboard, charts, details, links.

Pure functions of the views; every string that came from a file passes
through :func:`escape` (the table and chart primitives escape what they are
given).  Numbers are formatted by :mod:`lvmbench.format`, as in every table
lvmbench prints, and each numeric cell also carries its exact value as
``data-sort``, so a browser test can read back the number behind the text.
"""

from __future__ import annotations

import json
from typing import Sequence

from lvmbench import format as fmt
from lvmbench.report.html.page import Html, escape, section
from lvmbench.report.html.svg import histogram, interval_bars, line_chart, offsets_chart
from lvmbench.report.html.tables import table
from lvmbench.report.html.views import (Board, Curves, Details, Direction, Est, Grid, Group, Headline, Link, Ranks,
                                        Row, RunParts, Spread, Trend)

PAIRED_K = 5


def two_lines(text: str) -> str:
    """'55.3 [52.1, 58.4]' as the value over its interval (a leaderboard cell breaks at the newline)."""
    return text.replace(" [", "\n[", 1)


def _pct_est(e: Est) -> str:
    return two_lines(fmt.pct_ci(e.value, None if e.lo is None or e.hi is None else (e.lo, e.hi)))


def _num_est(e: Est) -> str:
    return two_lines(fmt.num_ci(e.value, None if e.lo is None or e.hi is None else (e.lo, e.hi)))


def _lift_est(e: Est) -> str:
    if e.value is None:
        return fmt.DASH
    ci = "" if e.lo is None or e.hi is None else f"\n[{fmt.pts(e.lo)}, {fmt.pts(e.hi)}]"
    return fmt.pts(e.value) + ci


def facts(pairs: Sequence[tuple[str, str]]) -> Html:
    """Label and value pairs as a compact grid (a ``<dl>``)."""
    items = "".join(f'<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>' for k, v in pairs)
    return Html(f'<dl class="facts">{items}</dl>\n') if pairs else Html("")


def verdicts(items: Sequence) -> Html:
    """Gate verdicts, each a line with a PASS / FAIL badge."""
    if not items:
        return Html("")
    out = []
    for v in items:
        state = "none" if v.passed is None else ("pass" if v.passed else "fail")
        badge = {"pass": "PASS", "fail": "FAIL", "none": "—"}[state]
        out.append(f'<li class="verdict {state}" data-passed="{state}"><span class="badge">{badge}</span> '
                   f'<span class="what">{escape(v.label)}</span>: {escape(v.text)}</li>')
    return Html('<ul class="verdicts">' + "".join(out) + "</ul>\n")


def headline(h: Headline) -> Html:
    return Html(f'<section id="headline" class="headline">\n{facts(h.facts)}{verdicts(h.verdicts)}</section>\n')


def _extra_headers(rows: Sequence[Row]) -> list[str]:
    return list(dict.fromkeys(x.header for r in rows for x in r.extra))


def board_headers(b: Board) -> list[str]:
    """The leaderboard's column headers, in order (tests read cells by these)."""
    return ([b.first] + (["kind"] if b.kind_column else []) + [f"Hit@{k} % [95% CI]" for k in b.ks] + ["MRR [95% CI]",
            f"lift Hit@{PAIRED_K} pts [95% CI]", f"McNemar p (Hit@{PAIRED_K})", "Holm p", "W/T/L"]
            + _extra_headers(b.rows))


def _row_cells(r: Row, extras: list[str], kind_column: bool = True) -> tuple[list[str], list[float | None]]:
    wtl = fmt.DASH if r.wtl is None else "/".join(str(x) for x in r.wtl)
    by_header = {x.header: x for x in r.extra}
    kind = r.kind + (f", {r.note}" if r.note else "")
    text = ([r.name, kind] + [_pct_est(h) for h in r.hits] + [_num_est(r.mrr), _lift_est(r.lift),
            fmt.pvalue(r.mcnemar_p), fmt.pvalue(r.holm_p), wtl]
            + [by_header[h].text if h in by_header else fmt.DASH for h in extras])
    keys = ([None, None] + [h.value for h in r.hits] + [r.mrr.value, r.lift.value, r.mcnemar_p, r.holm_p,
            None if r.wtl is None else r.wtl[0] - r.wtl[2]]
            + [by_header[h].key if h in by_header else None for h in extras])
    if not kind_column:
        del text[1], keys[1]
    return text, keys


def board(b: Board) -> Html:
    """The sortable leaderboard; baseline rows carry the ``baseline`` class (grey italic)."""
    extras = _extra_headers(b.rows)
    cells = [_row_cells(r, extras, b.kind_column) for r in b.rows]
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in b.notes)
    tab = table(board_headers(b), [c[0] for c in cells], [c[1] for c in cells],
                [r.kind if r.kind == "baseline" else "model" for r in b.rows], caption=b.caption or None)
    return Html(f'<div class="board" data-first="{escape(b.first)}">\n{tab}{notes}</div>\n')


def _hit_index(ks: Sequence[int], k: int = PAIRED_K) -> int | None:
    return list(ks).index(k) if k in ks else (0 if ks else None)


def bars(b: Board, title: str = "") -> Html:
    """Hit@5 (or the first K) per row, with its interval; baselines pale and dashed."""
    i = _hit_index(b.ks)
    if i is None:
        return Html("")
    rows = list(b.rows)
    label = f"Hit@{b.ks[i]} (%)"
    chart = interval_bars([r.name for r in rows], [r.hits[i].value for r in rows], [r.hits[i].lo for r in rows],
                          [r.hits[i].hi for r in rows], baselines={r.name for r in rows if r.kind == "baseline"},
                          xlabel=label, fmt=fmt.pct, title=title or label)
    return Html(f'<figure class="bars">{chart}<figcaption>{escape(title or label)}: bars are the value, '
                "whiskers the 95 % interval; baselines pale and dashed</figcaption></figure>\n")


def curves(c: Curves) -> Html:
    """The loss per epoch and the early-stopping metric per epoch, the best epoch marked on both."""
    best = f"best epoch {fmt.DASH if c.best_epoch is None else f'{c.best_epoch:g}'}"
    loss = line_chart({"train loss": list(zip(c.epochs, c.train_loss)), "val loss": list(zip(c.epochs, c.val_loss))},
                      marker_x=c.best_epoch, xlabel="epoch", ylabel="recipe loss", marker_label="best",
                      title=f"{c.label}: loss", width=540, height=260)
    rate = c.stop_metric.startswith("hit@")
    label = c.stop_metric.replace("hit@", "Hit@").replace("mrr", "MRR")
    stop = line_chart({f"val {label}": list(zip(c.epochs, c.stop_values))}, marker_x=c.best_epoch, xlabel="epoch",
                      ylabel=f"val {label}" + (" (%)" if rate else ""), marker_label="best",
                      fmt_y=fmt.pct if rate else (lambda v: fmt.num(v)), title=f"{c.label}: val {label}", width=540,
                      height=260)
    reason = f"; {c.stop_reason}" if c.stop_reason else ""
    return Html(f'<figure class="curves" data-run="{escape(c.label)}">{loss}{stop}<figcaption>'
                f"{escape(c.label)}: training curves, {escape(best)} (early stopping on val {escape(label)})"
                f"{escape(reason)}</figcaption></figure>\n")


def ranks(r: Ranks) -> Html:
    chart = histogram(list(r.counts), list(r.edges), xlabel="rank of the target (log scale)", ylabel="queries",
                      log_x=True, title=f"{r.label}: rank of the target")
    median = "" if r.median is None else f", median rank {r.median:g}"
    return Html(f'<figure class="ranks" data-run="{escape(r.label)}">{chart}<figcaption>{escape(r.label)}: '
                f"where the target ranked among the candidates, {r.n_queries} queries{escape(median)} "
                "(rank 1 = retrieved first; bins [lo, hi))</figcaption></figure>\n")


def direction(d: Direction) -> Html:
    """cos(prediction, target t+k) per offset for the model, and the table for every predictor."""
    if not d.rows:
        return Html("")
    first = d.rows[0]
    chart = offsets_chart(list(d.offsets), [v for v in first.values], title=f"{first.name}: cos(t+k)")
    heads = ["predictor", "kind", "margin"] + ["cos(t)" if k == 0 else f"cos(t{k:+d})" for k in d.offsets]
    rows = [[o.name, o.kind, fmt.num(o.margin, signed=True)] + [fmt.num(v, signed=True) for v in o.values]
            for o in d.rows]
    keys = [[None, None, o.margin, *o.values] for o in d.rows]
    tab = table(heads, rows, keys, ["baseline" if o.kind != "model" else "model" for o in d.rows],
                caption="margin = cos(pred, next) − cos(pred, last context vector); cos(t+k) = mean cos(pred, the "
                "vector k steps from the target), t−1 = the last context vector")
    return Html(f'<div class="direction" data-run="{escape(d.label)}"><figure>{chart}<figcaption>'
                f"{escape(d.label)}: a predictor that points at the next vector peaks at k = 0; one that echoes its "
                f"input peaks at k = −1</figcaption></figure>\n{tab}</div>\n")


def spread(s: Spread) -> Html:
    title = f"Hit@5 per {s.what}"
    chart = interval_bars(list(s.labels), [e.value for e in s.values], [e.lo for e in s.values],
                          [e.hi for e in s.values], xlabel="Hit@5 (%)", fmt=fmt.pct, title=title)
    note = f'<p class="note">{escape(s.summary)}</p>' if s.summary else ""
    return Html(f'<figure class="spread" data-what="{escape(s.what)}">{chart}<figcaption>{escape(title)}, '
                f"each with its 95 % interval</figcaption></figure>{note}\n")


def trend(t: Trend) -> Html:
    series = {"Hit@5": [(x, e.value) for x, e in zip(t.xs, t.values)]}
    if t.reference and t.reference_value is not None:
        series[f"{t.reference} (any context)"] = [(x, t.reference_value) for x in t.xs]
    chart = line_chart(series, xlabel=t.xlabel, ylabel="Hit@5 (%)", fmt_y=fmt.pct, title=f"Hit@5 against {t.xlabel}")
    return Html(f'<figure class="trend">{chart}<figcaption>Hit@5 at each {escape(t.xlabel)}, on the same queries '
                "and pool at every point</figcaption></figure>\n")


def links(items: Sequence[Link]) -> Html:
    if not items:
        return Html("")
    li = "".join(f'<li><a href="{escape(x.href)}">{escape(x.label)}</a>'
                 + (f' <span class="muted">{escape(x.note)}</span>' if x.note else "") + "</li>" for x in items)
    return Html(f'<ul class="artefacts">{li}</ul>\n')


def run_parts(p: RunParts) -> Html:
    """Curves, rank histogram, direction and links of one run, in that order (what exists)."""
    parts = [curves(p.curves) if p.curves else "", ranks(p.ranks) if p.ranks else "",
             direction(p.direction) if p.direction else "", links(p.links)]
    return Html("".join(parts))


def _pairs(rows: Sequence[tuple[str, str]], caption: str) -> Html:
    return table(["", "value"], [[k, v] for k, v in rows], sortable=False, caption=caption) if rows else Html("")


def grid(g: Grid) -> Html:
    tab = table(list(g.headers), [list(r) for r in g.rows], [list(k) for k in g.keys], list(g.classes),
                caption=g.caption or None)
    return Html(f'<div class="board grid">{tab}</div>\n')


def details(d: Details) -> Html:
    """Hashes, the recipe and the environment, folded away (the page opens them for printing)."""
    recipe = f'<h3>recipe</h3><pre class="recipe">{escape(d.recipe)}</pre>' if d.recipe else ""
    body = _pairs(d.hashes, "sha256 of what was measured") + recipe + _pairs(d.env, "environment") + _pairs(
        d.more, "more")
    return section("Hashes, recipe and environment", body, collapsed=True, anchor="details") if body else Html("")


def group(g: Group, open_: bool = False) -> Html:
    """One drill-down: the group's facts, verdicts, leaderboard, Hit@5 bars, spread and its runs."""
    runs = "".join(f'<h4>{escape(p.label)}</h4>{run_parts(p)}' for p in g.runs)
    table = board(g.board) + bars(g.board, f"{g.name}: Hit@5") if g.board.rows else ""
    body = facts(g.facts) + verdicts(g.verdicts) + table + (spread(g.spread) if g.spread else "") + runs
    ident = "group-" + "".join(ch if ch.isalnum() else "-" for ch in g.name)
    return Html(f'<details class="group" id="{escape(ident)}" data-group="{escape(g.name)}"'
                f'{" open" if open_ else ""}>\n<summary>{escape(g.name)}</summary>\n{body}</details>\n')


def pretty_json(value: object) -> str:
    """Indented, key-sorted JSON: the same object always prints the same text."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)
