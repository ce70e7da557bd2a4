"""results.json as one typed object: :class:`Result`, its schema version and the migrations of older files.

``Result.from_json(path_or_dict)`` reads a run's results (a run directory,
its results.json, or the parsed object), refuses a file newer than this
lvmbench with one line naming it, migrates an older one step by step
(:data:`MIGRATIONS`) and returns the typed record; ``to_json()`` gives the
object back exactly (``Result.from_json(d).to_json() == d`` for a current
file, key order included).  Every lvmbench reader of a run's results goes
through this type; ``tests/test_architecture.py`` checks that no module
outside :mod:`lvmbench.result` reads results.json itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lvmbench.errors import UsageError
from lvmbench.io import atomic_write_json, read_json
from lvmbench.result.record import Record, spec
from lvmbench.result.scores import BestBaseline, Lift, Scores
from lvmbench.result.sections import (
    Consistency, Copies, DataGates, DatasetInfo, Diagnostics, Env, GateRecord, Latency, Leakage, ModelInfo,
    PoolInfo, QueryRecord, RecipeRecord, SplitInfo, Timings, Tool,
)

SCHEMA_VERSION = 2
"""The results.json layout this lvmbench writes (and the newest it reads).  2: the direction table's rows that
bracket the scale (oracle, copy_last) are of kind "bound", where 1 called them "reference"."""
RESULTS = "results.json"
DEFAULT_KS = (1, 5, 10)


def _bounds_not_references(data: dict[str, Any]) -> dict[str, Any]:
    """1 -> 2: a direction row of kind "reference" (oracle, copy_last) is of kind "bound" (key order kept)."""
    diag = data.get("diagnostics")
    rows = diag.get("rows") if isinstance(diag, dict) else None
    if not isinstance(rows, dict):
        return dict(data)
    rows = {name: {**row, "kind": "bound"} if isinstance(row, dict) and row.get("kind") == "reference" else row
            for name, row in rows.items()}
    return {**data, "diagnostics": {**diag, "rows": rows}}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _bounds_not_references}
"""``v -> f``: ``f`` turns a version-``v`` object into a version-``v + 1`` one (returning a new dict).  A change of
the on-disk shape bumps :data:`SCHEMA_VERSION` and adds the step from the previous version here."""


def results_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/results.json`` for a run directory."""
    p = Path(path)
    return p / RESULTS if p.is_dir() else p


def migrate(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` checked against :data:`SCHEMA_VERSION` and brought up to it (one line naming ``where`` if it cannot)."""
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError(f"{where}: no schema_version; not an lvmbench results file")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{where}: schema_version {version} is newer than this lvmbench reads ({SCHEMA_VERSION}); "
                         "upgrade lvmbench")
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise UsageError(f"{where}: schema_version {version} is older than any lvmbench results file this "
                             f"version can migrate (oldest: {min(MIGRATIONS, default=SCHEMA_VERSION)})")
        data = step(data)
        version += 1
        data["schema_version"] = version
    return data


@dataclass(kw_only=True)
class Result(Record):
    """One scored run: every section of results.json, typed (see each section's class).

    ``metrics`` is the run's model (or predictions), ``baselines`` every
    baseline by name (:meth:`scores_of` finds either); ``lift`` is the lift
    over the best baseline and ``lift_over`` the paired test against every
    baseline (:meth:`lift_against`).  Sections the file lacks are None.
    """

    schema_version: int | None = spec()
    tool: Tool | None = spec(of=Tool)
    created_utc: str | None = spec()
    model: ModelInfo | None = spec(of=ModelInfo)
    params: int | None = spec()
    seed: int | None = spec()
    recipe: RecipeRecord | None = spec(of=RecipeRecord)
    dataset: DatasetInfo | None = spec(of=DatasetInfo)
    split: SplitInfo | None = spec(of=SplitInfo)
    gates: DataGates | None = spec(of=DataGates)
    leakage: Leakage | None = spec(of=Leakage)
    pool: PoolInfo | None = spec(of=PoolInfo)
    metrics: Scores | None = spec(of=Scores)
    metrics_with_context: Scores | None = spec(of=Scores)
    baselines: dict[str, Scores] | None = spec(of=Scores, many="map")
    consistency: Consistency | None = spec(of=Consistency)
    diagnostics: Diagnostics | None = spec(of=Diagnostics)
    best_baseline: BestBaseline | None = spec(of=BestBaseline)
    lift: Lift | None = spec(of=Lift)
    lift_over: dict[str, Lift] | None = spec(of=Lift, many="map")
    copies: Copies | None = spec(of=Copies)
    ann: dict[str, Any] | None = spec()
    queries: QueryRecord | None = spec(of=QueryRecord)
    latency: Latency | None = spec(of=Latency)
    timings: Timings | None = spec(of=Timings)
    env: Env | None = spec(of=Env)
    status: str | None = spec()
    status_detail: str | None = spec()
    gate: GateRecord | None = spec(of=GateRecord)

    @classmethod
    def from_json(cls, data: Any, where: str | None = None, path: str = "") -> Result:  # type: ignore[override]
        """A run directory, a results.json path or the parsed object -> the typed result (version checked, migrated).

        One line (UsageError, exit 2) naming the file for a missing file, malformed JSON, something that is
        not a results object, a newer schema version or a section of the wrong shape.
        """
        if isinstance(data, (str, Path)):
            p = results_path(data)
            if not p.is_file():
                raise UsageError(f"{p}: results file not found")
            where = str(p)
            data = read_json(p, UsageError)
        where = where or "results"
        if not isinstance(data, dict):
            raise UsageError(f"{where}: not an lvmbench results object")
        return super().from_json(migrate(data, where), where)

    def write(self, path: str | Path) -> Path:
        """Atomically write ``to_json()`` to ``path`` (a run directory: its results.json)."""
        p = Path(path) / RESULTS if Path(path).is_dir() else Path(path)
        atomic_write_json(p, self.to_json())
        return p

    @property
    def ks(self) -> list[int]:
        """The recipe's ``eval.ks``; (1, 5, 10) for a file that records none."""
        ks = self.recipe.eval.ks if self.recipe is not None and self.recipe.eval is not None else None
        return [int(k) for k in ks] if isinstance(ks, list) and ks else list(DEFAULT_KS)

    @property
    def model_name(self) -> str | None:
        return self.model.name if self.model is not None else None

    @property
    def model_kind(self) -> str | None:
        return self.model.kind if self.model is not None else None

    @property
    def is_baseline_run(self) -> bool:
        """A run of a baseline (``run --model copy_last``): its model is also among its baselines."""
        return self.model_kind == "baseline"

    @property
    def exclude_context(self) -> bool:
        """Whether the headline ranks left each query's context out of the pool (True when unrecorded)."""
        return True if self.pool is None or not self.pool.has("exclude_context") else bool(self.pool.exclude_context)

    def scores_of(self, name: str) -> Scores | None:
        """The scores of predictor ``name``: the run's model (``metrics``), else that baseline's."""
        if name == self.model_name and self.metrics is not None:
            return self.metrics
        return (self.baselines or {}).get(name)

    def lift_against(self, baseline: str) -> Lift | None:
        """The model against ``baseline``: lift, paired interval, McNemar p, W/T/L."""
        return (self.lift_over or {}).get(baseline)

    def baselines_by(self, key: str = "hit@5") -> list[tuple[str, Scores]]:
        """The baselines, best first by ``key`` (ties keep the file's order)."""
        return sorted((self.baselines or {}).items(), key=lambda kv: -(kv[1].value(key) or 0.0))

    def effective_status(self) -> tuple[str, str | None]:
        """(status, detail): the recorded status, or for a file written before runs recorded one, what its
        consistency record says."""
        if self.status is not None:
            return self.status, self.status_detail
        c = self.consistency
        val = c.val if c is not None else None
        val_ok = val is None or bool(val.ok) or (val.ok is None and "ok" not in val._present)
        ok = bool(c is not None and c.ok) and val_ok
        return ("complete" if ok else "inconsistent"), self.status_detail
