"""A whole report page from a :class:`~lvmbench.report.html.views.PageView`: the same order for every kind.

headline (model, benchmark and pin, queries, pool, chance, gate verdicts) ->
leaderboard and its Hit@5 bars -> the sweep's trend -> drill-downs (a
suite's tasks, the folds of a CV run, each model over its seeds) -> the
run's own curves, ranks and direction -> hashes, recipe and environment
(collapsed) -> links to the artefacts.
"""

from __future__ import annotations

from lvmbench import __version__
from lvmbench.report.html import blocks
from lvmbench.report.html.page import Html, escape, page, section
from lvmbench.report.html.views import PageView

GENERATOR = f"lvmbench {__version__}"

LEAD = {
    "run": "One run: the model and every baseline on the same test queries and pool.",
    "compare": "Several runs on the same queries: the compare leaderboard, every number from the per-query ranks.",
    "suite": "A suite: one row per task, each against that task's best baseline; open a task for its drill-down.",
    "sweep": "A context-length sweep: every point retrained and scored on the same queries, pool and exclusion.",
    "cv": "Cross-validation: every document tested once, the folds' queries pooled; the fold spread below.",
    "seeds": "Several training seeds: the seed-averaged model per row, the spread across seeds below.",
}
BOARD_TITLE = {"suite": "Tasks", "sweep": "Context lengths"}


def _board(view: PageView) -> Html:
    if view.board is None:
        return Html("")
    body = blocks.board(view.board) + blocks.bars(view.bars or view.board, view.bars_title)
    return section(BOARD_TITLE.get(view.kind, "Leaderboard"), body, anchor="leaderboard")


def _groups(view: PageView) -> Html:
    if not view.groups:
        return Html("")
    title = {"suite": "Per task", "cv": "Folds", "seeds": "Seeds"}.get(view.kind, "Drill-down")
    open_ = len(view.groups) == 1
    return section(title, "".join(blocks.group(g, open_) for g in view.groups), anchor="groups")


def _runs(view: PageView) -> Html:
    if not view.runs:
        return Html("")
    if view.kind == "run":
        p = view.runs[0]
        parts = [section("Training", blocks.curves(p.curves), anchor="training") if p.curves else "",
                 section("Where the target ranks", blocks.ranks(p.ranks), anchor="ranks") if p.ranks else "",
                 section("Direction", blocks.direction(p.direction), anchor="direction") if p.direction else ""]
        return Html("".join(parts))
    body = "".join(f'<details class="run" data-run="{escape(p.label)}"><summary>{escape(p.label)}</summary>'
                   f"{blocks.run_parts(p)}</details>\n" for p in view.runs)
    return section("Runs", body, anchor="runs")


def render(view: PageView) -> Html:
    """The page as one self-contained HTML document (deterministic: the same view gives the same bytes)."""
    lead = f'<p class="lead" data-kind="{escape(view.kind)}">{escape(LEAD.get(view.kind, ""))}</p>\n'
    body = (lead + blocks.headline(view.headline) + _board(view)
            + (section("Trend", blocks.trend(view.trend), anchor="trend") if view.trend else "")
            + (section("Every metric", blocks.grid(view.metrics), collapsed=True, anchor="metrics")
               if view.metrics else "")
            + _groups(view) + _runs(view) + blocks.details(view.details)
            + (section("Artefacts", blocks.links(view.links), anchor="artefacts") if view.links else "")
            + f'<p class="muted generated">written by {escape(GENERATOR)}; self-contained: no network, '
            "no script or style from elsewhere</p>")
    return page(view.title, body, generator=GENERATOR)
