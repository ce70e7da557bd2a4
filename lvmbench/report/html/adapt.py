"""Run directories -> page views: the one place the HTML report reads a run's files.

Every number comes from the typed result (:class:`lvmbench.result.Result`,
:class:`lvmbench.result.History`) or from the per-query ranks in
``predictions.npz`` (read by :func:`lvmbench.report.compare.load_run`); the
leaderboard of several runs is :func:`lvmbench.report.compare.leaderboard`
itself, so the page never recomputes a paired test its own way.  A section
a run does not record (no training history for a baseline, no diagnostics
for an old file) is simply left out of the page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import numpy as np

from lvmbench import format as fmt
from lvmbench.errors import LvmbenchError, UsageError
from lvmbench.evaluate import metrics
from lvmbench.evaluate.diagnostics import BOUND
from lvmbench.evaluate.stats import PAIRED_K, holm
from lvmbench.report.html.blocks import pretty_json, two_lines
from lvmbench.report.html.views import (NO_EST, Board, Curves, Details, Direction, Est, Grid, Headline, Link,
                                        Offsets, PageView, Ranks, Row, RunParts, Verdict)
from lvmbench.result import History, Result, Scores

HIT = f"hit@{PAIRED_K}"
ARTEFACTS = (
    ("report.html", "this run's own page"), ("report.md", "the run table as text"),
    ("results.json", "every number, machine-readable"), ("predictions.npz", "per-query ranks and predictions"),
    ("training_history.json", "loss and val metrics per epoch"), ("metrics.jsonl", "the training log"),
    ("curves.png", "training curves (matplotlib)"), ("recipe.json", "the recipe"), ("split.json", "the split"),
    ("data_report.json", "data gates and leakage check"), ("best_val_*.pt", "best checkpoint (by stop metric)"),
    ("last.pt", "last checkpoint (resume)"),
)


class Loaded:
    """One run directory read once: its typed result, its per-query ranks (when stored) and its history."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir)
        self.arrays: dict[str, np.ndarray] = {}
        if (self.path / "predictions.npz").is_file():
            from lvmbench.report.compare import load_run

            run = load_run(self.path)  # the ranks checked as compare checks them
            self.arrays, self.result = run.arrays, run.results
        else:
            self.result = Result.from_json(self.path)
        self.history = History.load(self.path)

    @property
    def target_ids(self) -> np.ndarray | None:
        return self.arrays.get("target_ids")


def est(scores: Scores | None, key: str) -> Est:
    """A recorded metric and its recorded interval."""
    if scores is None:
        return NO_EST
    ci = scores.interval(key)
    return Est(scores.value(key), *(ci or (None, None)))


def rel(target: Path, page_dir: Path) -> str:
    """``target`` as a link from a page in ``page_dir``: relative, '/'-separated, percent-encoded."""
    path = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    return quote(Path(path).as_posix())


def _scores_row(name: str, kind: str, s: Scores, ks: Sequence[int], best: float | None, note: str = "") -> Row:
    value = s.value(HIT)
    lift = Est(value - best) if value is not None and best is not None else NO_EST
    return Row(name, kind, tuple(est(s, f"hit@{k}") for k in ks), est(s, "mrr"), s.n_queries, lift, note=note)


def _model_row(r: Result, ks: Sequence[int], best: str | None) -> Row:
    """The run's model against the best baseline: lift with its paired interval, McNemar (Holm over one), W/T/L."""
    name = r.model_name or "model"
    kind, note = ("baseline", "the run's model") if r.is_baseline_run else ("model", "")
    lift = r.lift
    if lift is None or best is None or lift.over != best or name == best:
        best_value = r.best_baseline.value() if r.best_baseline is not None else None
        return _scores_row(name, kind, r.metrics, ks, best_value, note)
    p = lift.mcnemar_p()
    ci = lift.interval()
    return Row(name, kind, tuple(est(r.metrics, f"hit@{k}") for k in ks), est(r.metrics, "mrr"),
               r.metrics.n_queries, Est(lift.value(), *(ci or (None, None))), p,
               holm([p])[0] if p is not None else None, lift.wtl, note)


def run_board(r: Result) -> Board:
    """The run table as a leaderboard: the model first, then every baseline by Hit@5 (as report.md)."""
    ks = tuple(r.ks)
    ranked = r.baselines_by(HIT)
    best = r.best_baseline.name if r.best_baseline is not None and r.best_baseline.name else (
        ranked[0][0] if ranked else None)
    best_value = r.best_baseline.value() if r.best_baseline is not None else None
    rows = [_model_row(r, ks, best)] if r.metrics is not None else []
    for name, s in ranked:
        if r.is_baseline_run and name == r.model_name and rows:
            continue  # the same ranks as the model's row
        rows.append(_scores_row(name, "baseline", s, ks, best_value, "best" if name == best else ""))
    boot = r.recipe.eval.bootstrap if r.recipe is not None and r.recipe.eval is not None else None
    notes = (f"Hit@K: Wilson 95 % intervals; MRR: percentile bootstrap ({boot or '?'} resamples). Lift, McNemar "
             f"and W/T/L are the model against the best baseline by Hit@{PAIRED_K} ({best or fmt.DASH}): the lift "
             "interval is a paired bootstrap over the queries, McNemar exact (Holm over the one model), W/T/L per "
             "query (lower rank wins); a baseline's lift is its difference from the best baseline.",)
    return Board(ks, tuple(rows), best_baseline=best, notes=notes)


def metric_grid(r: Result) -> Grid | None:
    """Every metric the tables show (the metric table's ``show``, the recipe's K), per predictor, with intervals."""
    keys = [k for k in metrics.keys(r.ks, vectors=True, shown=True)
            if r.metrics is not None and r.metrics.value(k) is not None]
    if not keys:
        return None
    names = [r.model_name] + [n for n, _ in r.baselines_by(HIT) if not (r.is_baseline_run and n == r.model_name)]
    rows, sort, classes = [], [], []
    for name in names:
        s = r.scores_of(name)
        cells = []
        for k in keys:
            e = est(s, k)
            ci = None if e.lo is None or e.hi is None else (e.lo, e.hi)
            cells.append(two_lines(fmt.pct_ci(e.value, ci) if k.startswith("hit@") else fmt.num_ci(e.value, ci)))
        rows.append((name, *cells))
        sort.append((None, *(s.value(k) if s else None for k in keys)))
        classes.append("model" if name == r.model_name and not r.is_baseline_run else "baseline")
    heads = tuple(metrics.parse_key(k)[0].heading(metrics.parse_key(k)[1]) + (" %" if k.startswith("hit@") else "")
                  for k in keys)
    return Grid("Every metric the tables show, with its 95 % interval where the run recorded one (Hit@K in %)",
                ("predictor", *heads), tuple(rows), tuple(sort), tuple(classes))


def verdict(r: Result, label: str = "recipe gate") -> Verdict | None:
    """The recipe gate's verdict recorded in results.json (as report.md prints it), or None when it records none."""
    from lvmbench.report.gate import gate_line

    g = r.gate
    if g is None or g.passed is None:
        return None
    try:
        text = gate_line(g).removeprefix("gate: ")
    except (KeyError, TypeError, ValueError) as exc:
        text = f"{g.metric}: {'PASS' if g.passed else 'FAIL'} (not shown: {exc})"
    return Verdict(label, bool(g.passed), text)


def shipped_matches(r: Result, target_ids: np.ndarray | None) -> list[str] | str:
    """The shipped benchmarks whose every pin the run matches (dataset, split, queries, pool, K's), or why unchecked."""
    from lvmbench.report import benchmark

    try:
        pins = benchmark.pins_of(r, target_ids)
        return [name for name, path in benchmark.shipped().items()
                if not benchmark.differences(pins, benchmark.load(str(path)))]
    except (LvmbenchError, OSError, ValueError, KeyError) as exc:
        return f"not checked ({exc})"


def benchmark_text(r: Result, target_ids: np.ndarray | None, short: bool = False) -> str:
    """Which shipped benchmark pin the run was measured on, if any."""
    from lvmbench.report import benchmark

    matches = shipped_matches(r, target_ids)
    if isinstance(matches, str):
        return matches
    if matches:
        names = ", ".join(f"'{m}'" for m in matches)
        return f"pin {names}" if short else f"measured on the shipped benchmark {names} (every pin matches)"
    if short:
        return "no shipped pin"
    return f"no shipped benchmark pin matches ({', '.join(benchmark.shipped())}); a custom dataset, split or pool"


def _short(h: str | None) -> str:
    return fmt.DASH if not h else f"{h[:12]}…"


def pin_text(r: Result) -> str:
    """The sha256 of what the number was measured on, shortened: dataset, split, query set, pool."""
    parts = (("dataset", r.dataset), ("split", r.split), ("queries", r.queries), ("pool", r.pool))
    return ", ".join(f"{name} {_short(part.sha256 if part is not None else None)}" for name, part in parts)


def pool_text(r: Result) -> str:
    p = r.pool
    if p is None:
        return fmt.DASH
    excl = (f"each query's context excluded ({p.exclude_len} preceding vectors)" if r.exclude_context
            else "context left in the pool")
    return f"{p.size} candidates ({p.split} split), {excl}"


def chance_text(r: Result) -> str:
    s = r.metrics
    return ", ".join(f"Hit@{k} {fmt.pct(s.chance_at(k) if s else None)} %" for k in r.ks)


def model_text(r: Result) -> str:
    m = r.model
    if m is None:
        return fmt.DASH
    params = f", {m.params:,} parameters" if isinstance(m.params, int) else ""
    epoch = f"; best epoch {m.best_epoch} of {m.stopped_epoch}" if m.best_epoch is not None else ""
    return f"{m.name} ({m.kind}{params}{epoch})"


def dataset_text(r: Result) -> str:
    d = r.dataset
    return fmt.DASH if d is None else f"{d.name} ({d.n_vectors} vectors, dim {d.dim}, {d.n_chains} chains)"


def status_text(r: Result) -> str:
    status, detail = r.effective_status()
    c = r.consistency
    agree = f"; consistency {c.n_agree}/{c.n_queries} agree, {c.n_mismatch or 0} mismatches" if c else ""
    return status + (f" ({detail})" if detail else "") + agree


def run_headline(run: Loaded) -> Headline:
    r = run.result
    queries = r.metrics.n_queries if r.metrics is not None else None
    facts = (("model", model_text(r)), ("dataset", dataset_text(r)),
             ("benchmark", benchmark_text(r, run.target_ids)), ("pin", pin_text(r)),
             ("queries", f"{queries} ({r.pool.split if r.pool else '?'} split)"), ("pool", pool_text(r)),
             ("chance", chance_text(r)), ("recipe", f"{r.recipe.name if r.recipe else '?'}, seed {r.seed}"),
             ("status", status_text(r)), ("scored", str(r.created_utc or fmt.DASH)))
    v = verdict(r)
    return Headline(facts, (v,) if v else ())


def curves(h: History | None, label: str) -> Curves | None:
    """Loss and the early-stopping metric per epoch from training_history.json."""
    if h is None or not h.epochs:
        return None
    metric = h.stop_metric or HIT
    if not all(metric in e.val for e in h.epochs):
        metric = HIT
    rows = h.epochs
    return Curves(label, tuple(float(e.epoch or 0) for e in rows), tuple(e.train_loss for e in rows),
                  tuple(e.val_loss for e in rows), metric, tuple(e.val.get(metric) for e in rows),
                  None if h.best_epoch is None else float(h.best_epoch), h.stop_reason or "")


def rank_edges(top: int) -> list[float]:
    """1, 2, 3, 5, 10, 20, 50, 100, ... past ``top``: bins [1,2) = rank 1, [2,3) = rank 2, [3,5) = ranks 3-4 ..."""
    edges, scale = [1.0, 2.0, 3.0, 5.0], 10.0
    while edges[-1] <= top:
        edges += [scale, 2 * scale, 5 * scale]
        scale *= 10
    while len(edges) > 2 and edges[-2] > top:
        edges.pop()
    return edges


def ranks(arrays: dict[str, np.ndarray], label: str, key: str = "rank") -> Ranks | None:
    """The distribution of the target's rank (``rank`` in predictions.npz: the headline's, context excluded)."""
    r = arrays.get(key)
    if r is None or not len(r):
        return None
    r = np.asarray(r)
    edges = rank_edges(int(r.max()))
    counts = np.bincount(np.searchsorted(edges, r, side="right") - 1, minlength=len(edges) - 1)
    return Ranks(label, tuple(int(c) for c in counts[: len(edges) - 1]), tuple(edges), int(len(r)),
                 float(np.median(r)))


def direction(r: Result, label: str) -> Direction | None:
    """cos(pred, x_{t+k}) per offset: the model first, then the baselines by Hit@5, then the bounds."""
    d = r.diagnostics
    if d is None or not d.rows or not d.offsets:
        return None
    order = [r.model_name] + [n for n, _ in r.baselines_by(HIT)]
    order += [n for n, row in d.rows.items() if row.kind == BOUND] + list(d.rows)
    seen: list[str] = []
    for n in order:
        if n in d.rows and n not in seen:
            seen.append(n)
    rows = []
    for name in seen:
        row = d.rows[name]
        by_k = row.by_offset()
        rows.append(Offsets(name, row.kind or "model", row.margin, tuple(by_k.get(k) for k in d.offsets)))
    return Direction(label, tuple(int(k) for k in d.offsets), tuple(rows))


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_flat(v)}" for k, v in value.items())
    return fmt.DASH if value is None else str(value)


def details(r: Result) -> Details:
    bank = r.pool.bank if r.pool is not None else None
    hashes = [("dataset", r.dataset.sha256 if r.dataset else None), ("split", r.split.sha256 if r.split else None),
              ("queries (target rows)", r.queries.sha256 if r.queries else None),
              ("pool", r.pool.sha256 if r.pool else None), ("bank", bank.sha256 if bank else None),
              ("checkpoint", r.model.checkpoint_sha256 if r.model else None),
              ("predictions file", r.model.predictions_sha256 if r.model else None)]
    env = [(k, _flat(v)) for k, v in (r.env.to_json().items() if r.env is not None else [])]
    lat = r.latency.model_at(1) if r.latency is not None else None
    t = r.timings
    more = [("latency, batch 1", f"p50 {fmt.num(lat.p50_ms)} ms, p95 {fmt.num(lat.p95_ms)} ms on "
             f"{r.latency.machine.where() if r.latency.machine else '?'}" if lat else fmt.DASH),
            ("timings", f"train {fmt.num(t.train_s, 1)} s, score {fmt.num(t.score_s, 1)} s, total "
             f"{fmt.num(t.total_s, 1)} s" if t else fmt.DASH),
            ("leakage check", "OK" if r.leakage is not None and r.leakage.ok else fmt.DASH if r.leakage is None
             else "FAILED"),
            ("written by", f"{r.tool.name} {r.tool.version}" if r.tool else fmt.DASH)]
    recipe = pretty_json(r.recipe.to_json()) if r.recipe is not None else ""
    return Details(tuple((k, v) for k, v in hashes if v), recipe, tuple(env), tuple(more))


def links(run_dir: Path, page_dir: Path, names: Sequence[tuple[str, str]] = ARTEFACTS,
          prefix: str = "") -> tuple[Link, ...]:
    """The run's artefacts that exist, linked relative to the page (the page itself left out)."""
    out = []
    for name, note in names:
        found = sorted(Path(run_dir).glob(name)) if "*" in name else [Path(run_dir) / name]
        for target in found:
            if target.is_file() and target.resolve() != (Path(page_dir) / "report.html").resolve():
                out.append(Link(prefix + target.name, rel(target, page_dir), note))
    return tuple(out)


def run_parts(run: Loaded, page_dir: Path, label: str, names: Sequence[tuple[str, str]] = ARTEFACTS) -> RunParts:
    prefix = "" if label == "" else f"{label}: "
    return RunParts(label or (run.result.model_name or "run"), curves(run.history, label or "training"),
                    ranks(run.arrays, label or (run.result.model_name or "model")),
                    direction(run.result, label or "this run"), links(run.path, page_dir, names, prefix))


def run_page(run_dir: str | Path, page_dir: Path) -> PageView:
    """One run: headline, the run table as a leaderboard, curves, ranks, direction, details and artefacts."""
    run = Loaded(run_dir)
    r = run.result
    if r.metrics is None:
        raise UsageError(f"{run.path}: results.json records no scores")
    parts = RunParts(r.model_name or "model", curves(run.history, r.model_name or "model"),
                     ranks(run.arrays, r.model_name or "model"), direction(r, r.model_name or "model"))
    title = f"lvmbench: {r.model_name} on {r.dataset.name if r.dataset else '?'}"
    return PageView("run", title, run_headline(run), run_board(r), runs=(parts,), details=details(r),
                    links=links(run.path, page_dir), metrics=metric_grid(r))


def _board_est(row: dict[str, Any], key: str) -> Est:
    return Est(row.get(key), row.get(f"{key}_lo"), row.get(f"{key}_hi"))


def compare_board(board: dict[str, Any]) -> Board:
    """:func:`lvmbench.report.compare.leaderboard`'s rows as a page leaderboard (its numbers, unchanged)."""
    ks = tuple(board["ks"])
    rows = []
    for b in board["rows"]:
        lift_ci = b.get("lift_ci") or (None, None)
        wtl = None if b.get("wins") is None else (b["wins"], b["ties"], b["losses"])
        note = ("best" if b["predictor"] == board.get("best_baseline") else "") + (
            "the run's model" if b.get("run_model") else "")
        rows.append(Row(b["predictor"], b["kind"], tuple(_board_est(b, f"hit@{k}") for k in ks), _board_est(b, "mrr"),
                        b.get("n_queries"), Est(b.get("lift"), *lift_ci), b.get("mcnemar_p"), b.get("holm_p"), wtl,
                        note))
    notes = (f"Every number recomputed from each run's per-query ranks (lvmbench compare). Hit@K: Wilson 95 % "
             f"intervals; MRR: {board['mrr_interval']}. Lift, McNemar and W/T/L against the best baseline by "
             f"{board['metric']} ({board.get('best_baseline') or fmt.DASH}); McNemar: {board['paired_test']}; "
             "lift interval: paired bootstrap over the queries.",)
    return Board(ks, tuple(rows), best_baseline=board.get("best_baseline"), notes=notes)


def compare_page(paths: Sequence[str | Path], page_dir: Path, warnings: Sequence[str] = ()) -> PageView:
    """Several runs on the same queries: the compare leaderboard, each run's curves and artefacts."""
    from lvmbench.report import compare

    believed, left_out = compare.believed_runs([Path(p) for p in paths])
    notes = list(warnings) + left_out + compare.check_comparable(believed)
    board = compare.leaderboard(believed, HIT)
    runs = [Loaded(run.path) for run in believed]
    first = runs[0].result
    labels = [b["predictor"] for b in board["rows"] if b["kind"] == "model" or b.get("run_model")]
    chance = ", ".join(f"Hit@{k} {fmt.pct(board['chance'].get(f'hit@{k}'))} %" for k in board["ks"])
    facts = (("models", ", ".join(labels) or fmt.DASH), ("dataset", dataset_text(first)),
             ("benchmark", benchmark_text(first, runs[0].target_ids)), ("pin", pin_text(first)),
             ("queries", f"{board['n_queries']} ({board['pool_split']} split), the same for every run"),
             ("pool", pool_text(first)), ("chance", chance))
    verdicts = tuple(v for v in (verdict(run.result, run.result.model_name or run.path.name) for run in runs) if v)
    parts = tuple(run_parts(run, page_dir, run.result.model_name or run.path.name) for run in runs)
    b = compare_board(board)
    b = Board(b.ks, b.rows, b.first, b.best_baseline, tuple(notes) + b.notes)
    title = f"lvmbench: {len(runs)} runs on {first.dataset.name if first.dataset else '?'}"
    return PageView("compare", title, Headline(facts, verdicts), b, runs=parts, details=details(first),
                    links=tuple(run_link(run.path, page_dir, run.result.model_name or run.path.name) for run in runs))


def run_link(run_dir: Path, page_dir: Path, label: str) -> Link:
    """A link to a run: its report.html when it has one, else its results.json."""
    target = run_dir / "report.html" if (run_dir / "report.html").is_file() else run_dir / "results.json"
    return Link(label, rel(target, page_dir), f"{Path(run_dir).name}/{target.name}")
