"""Several models, or several training seeds, on one prepared dataset: ``run --model a,b,c`` and ``run --seeds``.

Every run of the series uses the same split, test queries and pool, so the
table that ends it compares like with like.  With one seed the series ends
with the ``compare`` leaderboard; with ``--seeds`` it ends with one row per
model over its seeds (mean and min-max across seeds, the seed-averaged
model's intervals, the paired test against the best baseline per seed and
pooled: :func:`lvmbench.report.suite.seeds_row`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

from lvmbench import workdir
from lvmbench.config import Recipe
from lvmbench.errors import IntegrityError, UsageError
from lvmbench.io import atomic_write_json, atomic_write_text
from lvmbench.report import suite as suite_report
from lvmbench.report.compare import load_run
from lvmbench.report.results import SCHEMA_VERSION, utc_now
from lvmbench.runs.executors import ExecutorSpec
from lvmbench.runs.jobs import job_dir
from lvmbench.runs.rundir import scoped, series_dir
from lvmbench.runs.series import (
    PLAN, Outcome, load_plan, prepare_plan, run_series, seeded, series_resume_command, slug, write_plan,
)
from lvmbench.runs.single import prepare_run
from lvmbench.train import distributed

Log = Callable[[str], None]


def _leaderboard(parent: Path, done: list[Outcome], n_models: int, log: Log) -> dict[str, Any] | None:
    """The compare leaderboard of the runs that finished (leaderboard.md, leaderboard.png)."""
    from lvmbench.report import compare as cmp
    from lvmbench.report import plots

    try:
        runs, _ = cmp.believed_runs([o.run_dir for o in done])
        cmp.check_comparable(runs)
        board = cmp.leaderboard(runs, "hit@5")
    except (UsageError, IntegrityError) as exc:
        log(f"no leaderboard: {exc}")
        return None
    table = cmp.render(board, "table")
    atomic_write_text(parent / "leaderboard.md", "# lvmbench leaderboard\n\n```\n" + table + "\n```\n")
    log("")
    log(f"leaderboard ({len(done)} of {n_models} models; `lvmbench compare {' '.join(str(o.run_dir) for o in done)}`)")
    log(table)
    plots.plot_leaderboard(board, parent / "leaderboard.png", log=log)
    return board


def seed_rows(parent: Path, points: list[dict[str, Any]], outcomes: list[Outcome], ks: list[int],
              log: Log) -> dict[str, Any]:
    """seeds.json and seeds.md: one row per model over the seeds that finished."""
    rows = []
    for model in dict.fromkeys(p["model"] for p in points):
        by_seed, base = {}, {}
        for p, o in zip(points, outcomes):
            if p["model"] == model and o.ok:
                arrays = load_run(o.run_dir).arrays
                by_seed[p["seed"]] = arrays["rank"]
                base = base or {k[len("rank__"):]: v for k, v in arrays.items() if k.startswith("rank__")}
        if by_seed:
            rows.append(suite_report.seeds_row(model, model, by_seed, base, ks))
    summary = suite_report.summarize(rows, ks)
    table = suite_report.render(summary, ks, first="model")
    atomic_write_json(parent / "seeds.json", {**summary, "schema_version": SCHEMA_VERSION,
                                              "created_utc": utc_now(), "ks": ks})
    atomic_write_text(parent / "seeds.md", "# lvmbench seeds\n\n```\n" + table + "\n```\n")
    log("")
    log(f"over the training seeds ({summary['paired_test']}):")
    log(table)
    return summary


def _finish_many(parent: Path, models: list[str], points: list[dict[str, Any]], outcomes: list[Outcome],
                 seeds: list[int] | None, ks: list[int], log: Log) -> None:
    done = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": utc_now(),
        "models": models,
        "seeds": seeds,
        "runs": [{**o.summary(), "model": p["model"], "seed": p["seed"],
                  "run_dir": str(Path(o.run_dir).relative_to(parent))} for p, o in zip(points, outcomes)],
        "failed": [o.label for o in failed],
        "leaderboard": _leaderboard(parent, done, len(models), log) if done and seeds is None else None,
    }
    if seeds is not None and done:
        seed_rows(parent, points, outcomes, ks, log)
    atomic_write_json(parent / "multi.json", summary)
    if done:
        from lvmbench.report.html.build import REPORT, write_beside

        write_beside("seeds" if seeds is not None else "compare", [parent], parent / REPORT, log)
    workdir.mark_complete(parent)
    for o in failed:
        log(f"FAILED {o.label}: {o.error}")
    log(f"{len(done)}/{len(outcomes)} runs finished; artefacts in {parent}")


def many_points(recipe: Recipe, models: list[str], seeds: list[int] | None, parent: Path,
                sha256: str) -> tuple[list[tuple[str, Recipe, Path]], list[dict[str, Any]]]:
    """(label, recipe, job directory) per model and seed, and what each point is."""
    points, what = [], []
    for name in models:
        r = copy.deepcopy(recipe)
        r.model.name = name
        for seed, rs in seeded(r, seeds):
            label = name if seeds is None else f"{name} seed {seed}"
            points.append((label, rs, job_dir(parent, slug(name, f"s{seed}"), rs, sha256)))
            what.append({"model": name, "seed": seed})
    return points, what


@scoped
def run_many(
    recipe: Recipe, models: list[str], data: str | None, out: str | Path | None, overwrite: bool = False,
    log: Log = print, seeds: list[int] | None = None, spec: ExecutorSpec | None = None,
) -> tuple[Path, list[Outcome]]:
    """Train and score several models (or one model under several seeds) on the same data, queries and pool.

    Each point runs as a job into ``OUT/<model>-s<seed>-<hash>/``; finished
    jobs in OUT are reused.  Ends with the ``compare`` leaderboard of the
    models that finished (``OUT/leaderboard.md``, ``OUT/multi.json``) or,
    with ``seeds``, the table over the seeds (``OUT/seeds.json``,
    ``OUT/seeds.md``).  An interrupted series continues when the same
    command is run again (or ``lvmbench run --resume OUT``).
    """
    distributed.refuse_series("run --model with several models")
    _, prep, device = prepare_run(models, recipe, data, log)
    parent = series_dir(out, "multi", overwrite, kind="multi", log=log)
    points, what = many_points(recipe, models, seeds, parent, prep.store.sha256)
    write_plan(parent, "multi", points, prep, models=models, seeds=seeds, what=what)
    log(f"running {len(points)} jobs into {parent}: {', '.join(models)}"
        + (f" x seeds {', '.join(map(str, seeds))}" if seeds else ""))
    outcomes = run_series(points, prep, device, overwrite, log, series_resume_command("multi", parent), spec=spec)
    _finish_many(parent, models, what, outcomes, seeds, list(recipe.eval.ks), log)
    return parent, outcomes


@scoped
def resume_many(parent: str | Path, data: str | None = None, log: Log = print,
                models: list[str] | None = None) -> tuple[Path, list[Outcome]]:
    """Continue an interrupted ``run --model a,b,c``: finished models are kept, started ones resume."""
    distributed.refuse_series("run --resume of several models")
    parent = Path(parent)
    plan, points = load_plan(parent, models)
    prep, device = prepare_plan(plan, points[0][1], data, parent / PLAN, log)
    log(f"resuming {len(points)} jobs in {parent}")
    outcomes = run_series(points, prep, device, False, log, series_resume_command("multi", parent), resume=True)
    what = plan.get("what") or [{"model": m, "seed": None} for m in plan["models"]]
    _finish_many(parent, plan["models"], what, outcomes, plan.get("seeds"), list(points[0][1].eval.ks), log)
    return parent, outcomes
