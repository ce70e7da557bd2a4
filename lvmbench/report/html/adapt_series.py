"""Series directories (a suite, a CV run, a seeds run, a sweep) -> page views.

A series' own summary (``suite.json``, ``cv.json``, ``seeds.json``,
``sweep.json``: written by the series from the suite table's rows,
:mod:`lvmbench.report.suite`) holds the pooled numbers and the paired tests
over its tasks; each run directory it lists is read through
:mod:`lvmbench.report.html.adapt` (the typed result) for the per-run parts:
the spread across folds or seeds, the curves, ranks, direction, gate
verdicts and links.  Run directories are taken only as the summary records
them, and only inside the series directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from lvmbench import format as fmt
from lvmbench.errors import UsageError
from lvmbench.evaluate.stats import PAIRED_K, holm
from lvmbench.io import read_json
from lvmbench.report.html import adapt
from lvmbench.report.html.blocks import pretty_json, two_lines
from lvmbench.report.html.views import (NO_EST, Board, Details, Est, Extra, Group, Headline, Link, PageView, Row,
                                        Spread, Trend, Verdict)

HIT = f"hit@{PAIRED_K}"
Runs = list[tuple[str, adapt.Loaded]]


def summary(parent: Path, name: str) -> dict[str, Any]:
    """``parent/name`` (suite.json, cv.json, ...): refused with one line when the series has not written it."""
    path = Path(parent) / name
    if not path.is_file():
        raise UsageError(f"{path}: not found; the series has not finished (resume it, then report)")
    data = read_json(path, UsageError)
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not an lvmbench {name}")
    return data


def _est(d: dict[str, Any], key: str) -> Est:
    ci = d.get(f"{key}_ci") or (None, None)
    return Est(d.get(key), *ci)


def _ks(data: dict[str, Any]) -> tuple[int, ...]:
    ks = data.get("ks") or ((data.get("recipe") or {}).get("eval") or {}).get("ks") or [1, 5, 10]
    return tuple(int(k) for k in ks)


def model_row(row: dict[str, Any], ks: Sequence[int], name: str | None = None,
              extra: tuple[Extra, ...] = ()) -> Row:
    """A summary row's model (pooled over folds, averaged over seeds) against its best baseline."""
    vs = row.get("vs_best") or {}
    lift = Est(vs.get(HIT), *(vs.get(f"lift_ci_{HIT}") or (None, None))) if vs else NO_EST
    wtl = (vs["wins"], vs["ties"], vs["losses"]) if "wins" in vs else None
    return Row(name or row["model"], "model", tuple(_est(row, f"hit@{k}") for k in ks), _est(row, "mrr"),
               row.get("n_queries"), lift, vs.get(f"mcnemar_p_{HIT}"), vs.get("holm_p"), wtl, extra=extra)


def baseline_rows(row: dict[str, Any], ks: Sequence[int]) -> list[Row]:
    """A summary row's baselines, best first by Hit@5; lift = the difference from the best baseline."""
    base = row.get("baselines") or {}
    best = row.get("best_baseline")
    top = base.get(best, {}).get(HIT) if best else None
    out = []
    for name, b in sorted(base.items(), key=lambda kv: -(kv[1].get(HIT) or 0.0)):
        lift = Est(b[HIT] - top) if top is not None and b.get(HIT) is not None else NO_EST
        out.append(Row(name, "baseline", tuple(_est(b, f"hit@{k}") for k in ks), _est(b, "mrr"), b.get("n_queries"),
                       lift, note="best" if name == best else ""))
    return out


def group_board(row: dict[str, Any], ks: Sequence[int], note: str) -> Board:
    rows = [model_row(row, ks)] + baseline_rows(row, ks)
    return Board(tuple(ks), tuple(rows), best_baseline=row.get("best_baseline"), notes=(note,) if note else ())


def _runs(parent: Path, jobs: Sequence[dict[str, Any]], label: str = "") -> Runs:
    """(label, loaded run) for each finished job; a recorded path must stay inside ``parent``."""
    out: Runs = []
    seeds = {j.get("seed") for j in jobs}
    for j in jobs:
        rel = Path(str(j.get("run_dir", "")))
        if rel.is_absolute() or ".." in rel.parts or not str(rel):
            raise UsageError(f"{parent}: run directory {str(rel)!r} is not a path inside the series directory")
        if j.get("status") != "ok":
            continue
        parts = [f"fold {j['fold']}" if j.get("fold") is not None else "",
                 f"seed {j['seed']}" if j.get("seed") is not None and len(seeds) > 1 else ""]
        name = " ".join(p for p in [label, *parts] if p) or label or rel.name
        out.append((name, adapt.Loaded(parent / rel)))
    return out


def spread(runs: Runs, what: str, text: str) -> Spread | None:
    """Hit@5 of each fold or seed (its own Wilson interval), when there is more than one."""
    if len(runs) < 2:
        return None
    values = tuple(adapt.est(run.result.metrics, HIT) for _, run in runs)
    return Spread(what, tuple(label for label, _ in runs), values, text)


def spread_text(row: dict[str, Any]) -> str:
    f, s = row.get("folds"), row.get("seed_spread")
    parts = []
    if f:
        parts.append(f"folds: Hit@5 {fmt.pct(f['min'])}–{fmt.pct(f['max'])} % (sd {fmt.pct(f['sd'])} pts)")
    if s:
        every = (row.get("vs_best") or {}).get("every_seed_better")
        mark = "" if every is None else ("; lift on every seed" if every else "; not on every seed")
        parts.append(f"seeds: Hit@5 mean {fmt.pct(s['mean'])} %, {fmt.pct(s['min'])}–{fmt.pct(s['max'])} % over "
                     f"{len(s[HIT])} seeds{mark}")
    return "; ".join(parts)


def spread_cell(row: dict[str, Any]) -> str:
    """The fold and seed spread in a few characters, for a table cell."""
    f, s = row.get("folds"), row.get("seed_spread")
    parts = [f"folds {fmt.pct(f['min'])}–{fmt.pct(f['max'])}" if f else "",
             f"seeds {fmt.pct(s['min'])}–{fmt.pct(s['max'])} (mean {fmt.pct(s['mean'])})" if s else ""]
    return "; ".join(p for p in parts if p) or fmt.DASH


def verdicts(runs: Runs) -> tuple[Verdict, ...]:
    return tuple(v for v in (adapt.verdict(run.result, label) for label, run in runs) if v)


def parts(runs: Runs, page_dir: Path) -> tuple:
    return tuple(adapt.run_parts(run, page_dir, label) for label, run in runs)


def run_facts(runs: Runs) -> tuple[tuple[str, str], ...]:
    if not runs:
        return ()
    r = runs[0][1].result
    which = f" ({runs[0][0]})" if len(runs) > 1 else ""
    return (("dataset", adapt.dataset_text(r)), ("benchmark", adapt.benchmark_text(r, runs[0][1].target_ids)),
            ("pool", adapt.pool_text(r) + which), ("chance", adapt.chance_text(r) + which))


def group(name: str, row: dict[str, Any], ks: Sequence[int], runs: Runs, page_dir: Path, what: str,
          note: str = "") -> Group:
    facts = (("queries", str(row.get("n_queries"))),) + run_facts(runs)
    return Group(name, group_board(row, ks, note), spread(runs, what, spread_text(row)), parts(runs, page_dir),
                 facts, verdicts(runs))


def series_details(data: dict[str, Any], runs: Runs) -> Details:
    first = adapt.details(runs[0][1].result) if runs else Details()
    hashes = tuple((f"{label}: dataset", run.result.dataset.sha256) for label, run in runs
                   if run.result.dataset is not None and run.result.dataset.sha256)
    recipe = pretty_json(data["recipe"]) if data.get("recipe") else first.recipe
    return Details(hashes + first.hashes[1:], recipe, first.env, first.more)


def files(parent: Path, page_dir: Path, names: Sequence[str]) -> tuple[Link, ...]:
    return adapt.links(parent, page_dir, [(n, "") for n in names])


def _pooled_note(data: dict[str, Any]) -> str:
    return (f"Hit@K and MRR with 95 % intervals over the pooled queries; {data.get('paired_test', '')}. "
            "A baseline's lift is its difference from the best baseline.")


def suite_page(parent: Path, page_dir: Path) -> PageView:
    """One row per task against its best baseline, Hit@5 bars per task, a drill-down per task."""
    data = summary(parent, "suite.json")
    ks, model = _ks(data), str(data.get("model"))
    rows, groups, bars, all_runs, per_task = [], [], [], [], []
    spread_shown = any(r.get("folds") or r.get("seed_spread") for r in data.get("rows") or [])
    for row in data.get("rows") or []:
        task = row["task"]
        runs = _runs(parent, row.get("runs") or [], task)
        all_runs += runs
        per_task.append((task, runs[0][1] if runs else None))
        best = row.get("best_baseline")
        b = (row.get("baselines") or {}).get(best) or {}
        extra = (Extra("best baseline", best or fmt.DASH),
                 Extra("its Hit@5 % [95% CI]", two_lines(fmt.pct_ci(b.get(HIT), b.get(f"{HIT}_ci"))), b.get(HIT)))
        rows.append(model_row(row, ks, task, extra + ((Extra("Hit@5 % spread", spread_cell(row)),)
                                                      if spread_shown else ())))
        bars += [model_row(row, ks, f"{task}: {model}"), *[Row(f"{task}: {r.name}", "baseline", r.hits, r.mrr)
                                                          for r in baseline_rows(row, ks)[:1]]]
        groups.append(group(task, row, ks, runs, page_dir, "fold" if data.get("folds") else "seed",
                            _pooled_note(data)))
    facts = _suite_facts(data, model, per_task)
    board = Board(ks, tuple(rows), "task", kind_column=False, notes=(
        f"Each task's model against that task's best baseline; {data.get('paired_test', '')}.",))
    bar_board = Board(ks, tuple(bars), "predictor")
    links = files(parent, page_dir, ["suite.md", "suite.json", "series.json"]) + tuple(
        adapt.run_link(run.path, page_dir, label) for label, run in all_runs)
    return PageView("suite", f"lvmbench suite: {model}", Headline(facts, verdicts(all_runs)), board,
                    "Hit@5 per task: the model and the task's best baseline", tuple(groups),
                    details=series_details(data, all_runs), links=links, bars=bar_board)


def _suite_facts(data: dict[str, Any], model: str,
                 per_task: list[tuple[str, adapt.Loaded | None]]) -> tuple[tuple[str, str], ...]:
    """The suite's headline: the model, recipe, tasks, the macro average, and per task its queries, pool, chance
    and benchmark pin (from the task's first run)."""
    macro = data.get("macro") or {}

    def each(what) -> str:
        return "; ".join(f"{task} {what(run) if run is not None else fmt.DASH}" for task, run in per_task)

    pool = each(lambda run: f"{run.result.pool.size if run.result.pool else '?'}")
    chance = each(lambda run: fmt.pct(run.result.metrics.chance_at(PAIRED_K) if run.result.metrics else None) + " %")
    failed = data.get("failed") or []
    seeds = ", ".join(map(str, data.get("seeds") or [])) or "one"
    return (("model", model), ("recipe", str((data.get("recipe") or {}).get("name"))),
            ("tasks", ", ".join(data.get("tasks") or []) + (f"; failed: {', '.join(failed)}" if failed else "")),
            ("folds / seeds", f"{data.get('folds') or 'no'} folds; training seeds: {seeds}"),
            ("macro average", f"Hit@5 {fmt.pct(macro.get(HIT))} %, MRR {fmt.num(macro.get('mrr'))}, lift over "
             f"each task's best baseline {fmt.pts(macro.get('lift_hit@5'))} pts"),
            ("queries", "; ".join(f"{r['task']} {r.get('n_queries')}" for r in data.get("rows") or [])),
            ("pool (candidates)", pool), ("chance Hit@5", chance),
            ("benchmark", each(lambda run: adapt.benchmark_text(run.result, run.target_ids, short=True))))


def cv_page(parent: Path, page_dir: Path) -> PageView:
    """A cross-validated run: the pooled leaderboard, the spread over folds, each fold's run."""
    data = summary(parent, "cv.json")
    ks, row = _ks(data), (data.get("rows") or [None])[0]
    if row is None:
        raise UsageError(f"{parent / 'cv.json'}: no pooled row; no seed finished all its folds")
    runs = _runs(parent, data.get("runs") or [])
    facts = (("model", str(data.get("model"))), ("folds", f"{data.get('folds')}: every document tested once"),
             ("queries", f"{row.get('n_queries')} (the folds' test queries, pooled)")) + run_facts(runs)
    g = group("folds", row, ks, runs, page_dir, "fold", _pooled_note(data))
    return PageView("cv", f"lvmbench cross-validation: {data.get('model')}", Headline(facts, verdicts(runs)),
                    g.board, groups=(Group("folds", Board(ks, ()), g.spread, g.runs, (), ()),),
                    details=series_details(data, runs), links=files(parent, page_dir, ["cv.md", "cv.json"]) + tuple(
                        adapt.run_link(run.path, page_dir, label) for label, run in runs))


def seeds_page(parent: Path, page_dir: Path) -> PageView:
    """Several training seeds: the seed-averaged model per row, the spread over seeds per model."""
    data = summary(parent, "seeds.json")
    multi = summary(parent, "multi.json")
    ks, rows = _ks(data), data.get("rows") or []
    if not rows:
        raise UsageError(f"{parent / 'seeds.json'}: no model finished a seed")
    groups, board_rows, all_runs = [], [], []
    for row in rows:
        runs = _runs(parent, [j for j in multi.get("runs") or [] if j.get("model") == row["model"]], row["model"])
        all_runs += runs
        board_rows.append(model_row(row, ks, extra=(Extra("Hit@5 % spread", spread_cell(row)),)))
        g = group(row["model"], row, ks, runs, page_dir, "seed", _pooled_note(data))
        groups.append(Group(g.name, Board(ks, ()), g.spread, g.runs, g.facts, g.verdicts))
    board_rows += baseline_rows(rows[0], ks)
    facts = (("models", ", ".join(r["model"] for r in rows)), ("seeds", ", ".join(map(str, multi.get("seeds") or []))),
             ("queries", str(rows[0].get("n_queries")))) + run_facts(all_runs[:1])
    board = Board(ks, tuple(board_rows), best_baseline=rows[0].get("best_baseline"), notes=(_pooled_note(data),))
    return PageView("seeds", f"lvmbench seeds: {', '.join(r['model'] for r in rows)}",
                    Headline(facts, verdicts(all_runs)), board, groups=tuple(groups),
                    details=series_details(data, all_runs), links=files(parent, page_dir, [
                        "seeds.md", "seeds.json", "multi.json"]) + tuple(
                        adapt.run_link(run.path, page_dir, label) for label, run in all_runs))


def multi_runs(parent: Path) -> list[Path]:
    """The finished run directories of ``run --model a,b,c`` (its multi.json), for the compare page."""
    data = summary(parent, "multi.json")
    return [run.path for _, run in _runs(parent, data.get("runs") or [])]


def _point_row(p: dict[str, Any], run: adapt.Loaded | None, ks: Sequence[int], holm_p: float | None) -> Row:
    name = str(p["context"])
    if p.get("status") != "ok" or run is None:
        return Row(name, "model", tuple(NO_EST for _ in ks), NO_EST, note=f"FAILED: {p.get('error')}")
    m = p["metrics"]
    hits = tuple(Est(m[f"hit@{k}"], *(m["ci"].get(f"hit@{k}") or (None, None))) for k in ks)
    lift = run.result.lift
    ci = lift.interval() if lift else None
    best = lift.over if lift else None
    extra = (Extra("best baseline", best or fmt.DASH),
             Extra("best epoch", fmt.DASH if p.get("best_epoch") is None else str(p["best_epoch"]),
                   p.get("best_epoch")),
             Extra("margin", fmt.num(m.get("margin"), signed=True), m.get("margin")))
    return Row(name, "model", hits, Est(m["mrr"], *(m["ci"].get("mrr") or (None, None))), m.get("n_queries"),
               Est(lift.value(), *(ci or (None, None))) if lift else NO_EST, lift.mcnemar_p() if lift else None,
               holm_p, lift.wtl if lift else None, extra=extra)


def _reference_row(ref: dict[str, Any] | None, ks: Sequence[int]) -> list[Row]:
    if not ref:
        return []
    m = ref["metrics"]
    return [Row(ref["name"], "baseline", tuple(Est(m[f"hit@{k}"], *(m["ci"].get(f"hit@{k}") or (None, None)))
                                                 for k in ks), Est(m["mrr"], *(m["ci"].get("mrr") or (None, None))),
                m.get("n_queries"), note="reference, any context")]


def _sweep_runs(parent: Path, points: list[dict[str, Any]]) -> list[adapt.Loaded | None]:
    out: list[adapt.Loaded | None] = []
    for p in points:
        rd = Path(str(p.get("run_dir", "")))
        rd = parent / rd.name  # every point is a child of the sweep directory (sweep.json records absolute paths)
        out.append(adapt.Loaded(rd) if p.get("status") == "ok" and (rd / "results.json").is_file() else None)
    return out


def sweep_page(parent: Path, page_dir: Path) -> PageView:
    """Context length against Hit@K on a fixed pool: the points' table, the trend, each point's run."""
    data = summary(parent, "sweep.json")
    ks, points = _ks(data), data.get("points") or []
    runs = _sweep_runs(parent, points)
    ps = [r.result.lift.mcnemar_p() if r is not None and r.result.lift else None for r in runs]
    tested = [p for p in ps if p is not None]
    corrected = iter(holm(tested)) if tested else iter(())
    rows = [_point_row(p, run, ks, next(corrected) if q is not None else None) for p, run, q in zip(points, runs, ps)]
    ref = data.get("reference")
    q, pool = data.get("queries") or {}, data.get("pool") or {}
    checks = tuple(Verdict(k.replace("_", " "), v, "OK" if v else "FAILED: the points are not comparable")
                   for k, v in (data.get("checks") or {}).items() if v is not None)
    loaded = [(f"context {p['context']}", r) for p, r in zip(points, runs) if r is not None]
    facts = (("model", str(data.get("model"))), ("dataset", f"{(data.get('dataset') or {}).get('name')}"),
             ("contexts", ", ".join(map(str, data.get("contexts") or []))),
             ("queries", f"{q.get('n')} ({q.get('split')} split), the same at every point"),
             ("pool", f"{pool.get('size')} candidates, each query's {data.get('exclude_len')} preceding vectors "
              "excluded at every point"),
             ("chance", ", ".join(f"Hit@{k} {fmt.pct((data.get('chance') or {}).get(f'hit@{k}'))} %" for k in ks)))
    trend = Trend("context length", tuple(float(p["context"]) for p in points),
                  tuple(r.hits[list(ks).index(PAIRED_K)] if PAIRED_K in ks else NO_EST for r in rows),
                  ref["name"] if ref else "", ref["metrics"].get(HIT) if ref else None)
    board = Board(ks, tuple(rows + _reference_row(ref, ks)), "context", notes=(
        "Each point against its own best baseline (lift with its paired interval, McNemar Holm-corrected over the "
        "points, W/T/L); the reference ignores all but the last vector, so its ranks are the same at every point.",))
    return PageView("sweep", f"lvmbench sweep: {data.get('model')}", Headline(facts, checks + verdicts(loaded)),
                    board, trend=trend, runs=parts(loaded, page_dir), details=series_details(data, loaded),
                    links=files(parent, page_dir, ["sweep.md", "sweep.json", "series.json"]) + tuple(
                        adapt.run_link(run.path, page_dir, label) for label, run in loaded))
