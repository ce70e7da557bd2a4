"""The metrics page of the documentation site, generated from the metric table ``METRICS``.

``python -m lvmbench.cli.docs_metrics > docs/concepts/metrics.md`` writes the page;
``python -m lvmbench.cli.docs_metrics --check docs/concepts/metrics.md`` exits 1 with
one line naming the first metric that the committed page is missing or describes
differently from ``lvmbench/evaluate/metrics.py`` (and 0 when the page is current).

The output is deterministic: it depends only on ``METRICS`` and the recipe's default ``eval.ks``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lvmbench.cli.docs_page import check_page, page_main
from lvmbench.config import EvalConfig
from lvmbench.evaluate.metrics import METRICS, Metric

REGENERATE = "python -m lvmbench.cli.docs_metrics > docs/concepts/metrics.md"
CHECK = "python -m lvmbench.cli.docs_metrics --check docs/concepts/metrics.md"

HEADER = f"""# Metrics

<!-- Generated from METRICS in lvmbench/evaluate/metrics.py: do not edit by hand.
     Regenerate with: {REGENERATE}
     CI checks it with: {CHECK} -->

Every number lvmbench reports for a ranking comes from one table, `METRICS` in
`lvmbench/evaluate/metrics.py`. `summarize()`, the run table, `compare`, `data info`,
`sweep` and the gate all read it, and this page is generated from it, so a metric added
there appears here (and the docs test fails until the page is regenerated).

Each query has exactly one relevant item: its true next vector. Its **rank** is 1 + the
number of its candidates that score at least the target's score, the target's bit-identical
copies left out, so a tie never helps the target ([the tie rule](../contract.md#the-tie-rule)).
The candidates are the run's fixed pool minus the query's excluded window
([scoring](../contract.md#scoring)).
"""

TABLE_HEAD = ("| key | column | what it is | better | 95 % interval | gate | in the tables |",
              "|---|---|---|---|---|---|---|")

NOTES = """## Names in other tools

* **Hit@K** is trec_eval's `success.K`, ranx's and MTEB's `hit_rate@k`, BEIR's `Accuracy@K` and
  FAISS's "1-recall@K". It equals Recall@K only because each query has exactly one relevant item.
* **MRR** is untruncated: the mean of 1/rank over the whole pool. trec_eval's `recip_rank` over a
  top-N run counts a target outside the top N as 0, so the two agree only when every target lies
  within N (`lvmbench trec --depth 0` exports every candidate).
* **CA** and **PAR** are the next-concept metrics of Meta's Large Concept Model work ("Large Concept
  Models: Language Modeling in a Sentence Representation Space", 2024). lvmbench takes CA over the
  run's fixed pool (not a batch) from the ranks, so it obeys the tie rule and the excluded window
  like every other rank metric; PAR is the ratio of the two means, because a per-query ratio
  explodes where the true next vector is nearly orthogonal to its context.

## Beside every metric

* **Chance rate** of Hit@K: the mean over queries of K / (that query's candidates), i.e. K / pool
  size when nothing is excluded. Every table prints it.
* **Intervals**: Wilson 95 % for a 0/1 per-query value (Hit@K); a seeded percentile bootstrap
  (1,000 resamples, `eval.bootstrap`) for any other mean, and for PAR's ratio of means.
* **Gates**: `lvmbench gate --min` holds a metric whose gate is a minimum (a fraction in [0, 1]),
  `--max` one whose gate is a maximum; a metric without a gate is refused with one line. See
  [the gate guide](../guides/gate.md).

## Adding a metric

One pure function over the rank array and one `Metric(...)` line in `METRICS`; then regenerate
this page. See [adding a metric](../contributing/extending.md#a-metric).
"""


def _key(metric: Metric) -> str:
    return f"`{metric.name}@K`" if metric.at_k else f"`{metric.name}`"


def _interval(metric: Metric) -> str:
    if metric.interval == "wilson":
        return "Wilson"
    if metric.interval == "bootstrap":
        return "bootstrap"
    return "none"


def _gate(metric: Metric) -> str:
    if metric.gate == "min":
        return "`--min` (a fraction in [0, 1])"
    if metric.gate == "max":
        return "`--max`"
    return "not gateable"


def _what(metric: Metric) -> str:
    text = metric.description.replace("|", r"\|").replace("<", "&lt;").replace(">", "&gt;")
    if metric.vectors:
        text += " (computed from the predictions and their context, not from the ranks)"
    return text


def row(metric: Metric) -> str:
    """The table row of one metric."""
    label = f"{metric.label}@K" if metric.at_k else metric.label
    cells = [_key(metric), label, _what(metric), "higher" if metric.higher_is_better else "lower",
             _interval(metric), _gate(metric), "yes" if metric.show else "results.json only"]
    return "| " + " | ".join(cells) + " |"


def render() -> str:
    """The whole Markdown page."""
    ks = ", ".join(str(k) for k in EvalConfig().ks)
    lines = [HEADER, "## The metric table", "", *TABLE_HEAD, *(row(m) for m in METRICS.values()), "",
             f"K is each of the recipe's `eval.ks` (default {ks}), so `hit@5` is a key and `hit@K` a family. "
             "\"results.json only\": recorded in `results.json` `metrics` (and gateable where the gate column "
             "says so), but not printed as a column.", "", NOTES]
    return "\n".join(lines).rstrip() + "\n"


def problem(committed: str) -> str | None:
    """The first difference between a committed page and the generated one, in words; None if none."""
    expected = render()
    if committed == expected:
        return None
    have = committed.splitlines()
    for metric in METRICS.values():
        line = row(metric)
        if line in have:
            continue
        if any(text.startswith(f"| {_key(metric)} |") for text in have):
            return f"metric {metric.name} is stale"
        return f"metric {metric.name} is missing"
    keys = {_key(m) for m in METRICS.values()}
    for text in have:
        if text.startswith("| `") and text.split(" | ")[0][2:] not in keys:
            return f"row {text.split(' | ')[0][2:]} names no metric of METRICS"
    want = expected.splitlines()
    n = next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
    return f"line {n + 1} differs from the generated page"


def check(path: Path) -> str | None:
    """One line saying why the page at ``path`` is not what ``METRICS`` generates; None if it is."""
    return check_page(path, problem, REGENERATE)


def main(argv: list[str] | None = None) -> int:
    return page_main(argv, "python -m lvmbench.cli.docs_metrics",
                     "Print the metrics page (Markdown) from METRICS, or check one.",
                     "exit 1 with one line naming the first missing or stale metric in PAGE", render, check)


if __name__ == "__main__":
    sys.exit(main())
