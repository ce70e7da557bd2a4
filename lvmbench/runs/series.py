"""Several runs on one prepared dataset: ``run --model a,b,c`` (and the points of ``sweep``).

Every run of a series uses the same split, test queries and pool, so the
leaderboard that ends ``run --model a,b,c`` compares like with like.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from lvmbench import workdir
from lvmbench.config import Recipe, recipe_from_dict, training_seed
from lvmbench.data.prepare import Prepared, prepare, resolve_data
from lvmbench.errors import Interrupted, UsageError
from lvmbench.io import atomic_write_json, read_json
from lvmbench.result import Result
from lvmbench.models import outside, registry
from lvmbench.report.results import SCHEMA_VERSION, utc_now
from lvmbench.runs.artefacts import dataset_record
from lvmbench.runs.executors import ExecutorSpec
from lvmbench.runs.jobs import JobResult, make_job, run_jobs
from lvmbench.runs.rundir import PLAN, claim_existing
from lvmbench.runtime import configure_threads, resolve_device
from lvmbench import trust
from lvmbench.trust import check_recipe_imports
from lvmbench.train import distributed

Log = Callable[[str], None]


@dataclass
class Outcome:
    """One run of a series: its results, or why it failed."""

    label: str
    run_dir: Path
    results: Result | None = None
    error: str | None = None
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> dict[str, Any]:
        """multi.json's / cv.json's row of this run: where, whether it finished, Hit@K (the recipe's K) and MRR."""
        r = self.results
        m = r.metrics if r is not None else None
        keys = [f"hit@{k}" for k in (r.ks if r is not None else [1, 5, 10])] + ["mrr"]
        return {
            "label": self.label,
            "run_dir": str(self.run_dir),
            "status": "ok" if self.ok else "failed",
            "error": self.error,
            "exit_code": self.exit_code,
            **{k: m.recorded(k) if m is not None else None for k in keys},
        }


def parse_models(spec: str) -> list[str]:
    """``a,b,c`` or ``all`` (every trainable model in the registry); each name checked, no repeats."""
    if spec.strip() == "all":
        return registry.trained_models()
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--model {spec!r}: no model names")
    for n in names:
        registry.get_entry(n)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"--model lists {', '.join(dup)} more than once")
    return names


def is_multi(spec: str | None) -> bool:
    return spec is not None and ("," in spec or spec.strip() == "all")




def series_resume_command(kind: str, parent: Path) -> str:
    import shlex

    command = {"sweep": "sweep", "suite": "suite run"}.get(kind, "run")
    return f"lvmbench {command} --resume {shlex.quote(str(parent))}"


def write_plan(parent: Path, kind: str, points: list[tuple[str, Recipe, Path]], prep: Prepared,
               **extra: Any) -> None:
    atomic_write_json(parent / PLAN, {
        "schema_version": SCHEMA_VERSION, "kind": kind, "created_utc": utc_now(),
        "dataset": dataset_record(prep), "split_sha256": prep.report["split"]["sha256"],
        "points": [{"label": label, "dir": str(run_dir.relative_to(parent)), "recipe": r.to_dict()}
                   for label, r, run_dir in points],
        **extra,
    })


def load_plan(parent: Path, models: list[str] | None = None) -> tuple[dict[str, Any], list[tuple[str, Recipe, Path]]]:
    """An interrupted series' plan and its points (label, recipe, run directory).

    ``models`` confirms outside models' import paths the plan records (never imported otherwise).
    """
    path = parent / PLAN
    if not path.is_file():
        raise UsageError(f"{path}: not found; {parent} is not an lvmbench series directory")
    plan = read_json(path, UsageError)
    done = {"sweep": "sweep.json", "folds": "cv.json", "suite": "suite.json"}.get(plan.get("kind"), "multi.json")
    if (parent / done).is_file() and workdir.incomplete(parent) is None:
        raise UsageError(f"{parent}: this {plan.get('kind')} already finished; nothing to resume")
    claim_existing(parent)
    points = [(pt["label"], recipe_from_dict(pt["recipe"], path), _inside(parent, pt["dir"], path))
              for pt in plan["points"]]
    outside.confirm([r.model.name for _, r, _ in points], models, str(path))
    for _, r, _ in points:
        check_recipe_imports(r.model.name, r.eval.baselines, str(path))
    return plan, points


def _inside(parent: Path, rel: Any, where: Path) -> Path:
    """A point's directory as the plan names it: a path inside the series directory, never outside it."""
    p = Path(str(rel))
    if not str(rel) or p.is_absolute() or ".." in p.parts:
        raise UsageError(f"{where}: point directory {rel!r} is not a path inside {parent}")
    return parent / p


def prepare_plan(plan: dict[str, Any], recipe: Recipe, data: str | None, where: Path,
                 log: Log) -> tuple[Prepared, torch.device]:
    """The series' dataset and split again, checked against the plan."""
    from lvmbench.runs.resume import check_dataset, check_split

    configure_threads(recipe)
    store = resolve_data(data if data is not None else plan["dataset"]["path"], log)
    check_dataset(store, plan["dataset"]["sha256"], where)
    prep = prepare(store, recipe)
    check_split(prep, plan["split_sha256"], where)
    return prep, resolve_device(recipe.train.device)


def parse_seeds(spec: str | None) -> list[int] | None:
    """``--seeds 0,1,2`` -> [0, 1, 2] (each >= 0, no repeats); None when not given."""
    if spec is None:
        return None
    try:
        seeds = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--seeds {spec!r}: comma-separated non-negative integers, e.g. 0,1,2") from None
    if not seeds or any(x < 0 for x in seeds):
        raise UsageError(f"--seeds {spec!r}: comma-separated non-negative integers, e.g. 0,1,2")
    dup = sorted({x for x in seeds if seeds.count(x) > 1})
    if dup:
        raise UsageError(f"--seeds lists {', '.join(map(str, dup))} more than once")
    return seeds


def seeded(recipe: Recipe, seeds: list[int] | None) -> list[tuple[int, Recipe]]:
    """One recipe per training seed (``train.seed``: initialisation and data order; the split stays)."""
    if seeds is None:
        return [(training_seed(recipe), recipe)]
    out = []
    for seed in seeds:
        r = copy.deepcopy(recipe)
        r.train.seed = seed
        out.append((seed, r))
    return out


def slug(*parts: Any) -> str:
    """A directory-name-safe label of a job (an import path's ``:`` and ``/`` become ``_``)."""
    return "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", str(p)) for p in parts if p not in (None, ""))


def run_series(
    points: list[tuple[str, Recipe, Path]], prep: Prepared | list[Any], device: torch.device | None = None,
    overwrite: bool = False, log: Log = print, resume_hint: str | None = None, resume: bool = False,
    spec: ExecutorSpec | None = None,
) -> list[Outcome]:
    """Train and score each (label, recipe, run_dir) as a job (:mod:`lvmbench.runs.jobs`), then read the outcomes.

    ``prep`` is the prepared dataset every point uses, or one chain store per
    point (a suite's tasks).  A point whose directory already holds its own
    finished run is reused; one that was interrupted resumes from its
    last.pt; ``spec.rerun`` runs every point again.  ``spec`` says where the
    jobs run (default: one after another in this process).  A run that fails
    (bad input, an integrity failure, or an unexpected error such as running
    out of memory) is reported and recorded, and the series goes on: one
    broken model must not cost the others' hours.  Ctrl-C stops the whole
    series (exit 130), names the runs not started and says how to continue
    (``resume_hint``).
    """
    distributed.refuse_series("several runs in one launch")
    spec = spec or ExecutorSpec()
    stores = prep if isinstance(prep, list) else [prep.store] * len(points)
    trusted = tuple(sorted(trust.trusted()))
    jobs = [make_job(label, recipe, store, run_dir, trusted, resume_hint or "")
            for (label, recipe, run_dir), store in zip(points, stores)]
    recipe_threads = points[0][1].train.threads if points else 0
    cuda = bool(points) and str(device or "").startswith("cuda")
    try:
        results = run_jobs(jobs, spec, log, spec.rerun, recipe_threads, cuda, resume)
    except KeyboardInterrupt as exc:  # Interrupted is one too
        raise _stopped(exc, "the series", getattr(exc, "not_started", []), resume_hint) from None
    return [_outcome(r) for r in results]


def _outcome(r: JobResult) -> Outcome:
    if not r.ok:
        return Outcome(r.label, Path(r.run_dir), None, r.error, r.exit_code)
    return Outcome(r.label, Path(r.run_dir), Result.from_json(Path(r.run_dir)))


def _stopped(exc: KeyboardInterrupt, label: str, rest: list[str], resume_hint: str | None) -> Interrupted:
    """Ctrl-C during ``label``: the message names the runs not started and how to continue."""
    note = f"; not started: {', '.join(rest)}" if rest else ""
    msg = str(exc) or f"interrupted during {label}"
    if resume_hint and "resume with" not in msg:
        msg += f"; resume with: {resume_hint}"
    return Interrupted(f"{msg}{note}")


def series_exit_code(outcomes: list[Outcome]) -> int:
    """0 when every run finished; otherwise the highest exit code among the failures."""
    return max((o.exit_code for o in outcomes if not o.ok), default=0)
