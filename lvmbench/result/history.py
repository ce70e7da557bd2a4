"""training_history.json as a typed record: one row per epoch, the best epoch and why training stopped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lvmbench.errors import UsageError
from lvmbench.io import read_json
from lvmbench.result.record import Record, spec

HISTORY = "training_history.json"


@dataclass(kw_only=True)
class Epoch(Record):
    """One epoch: the mean training loss, the validation loss and metrics (``val`` by metric key), lr, seconds."""

    COLLECT = (("val", "val_"),)

    epoch: int | None = spec()
    step: int | None = spec()
    train_loss: float | None = spec()
    val_loss: float | None = spec()
    val: dict[str, Any] = spec(factory=dict)
    lr: float | None = spec()
    seconds: float | None = spec()


@dataclass(kw_only=True)
class History(Record):
    """A trained run's ``training_history.json`` (``epochs``: the file's ``history`` list).

    ``best_metric`` is the best epoch's value of ``stop_metric``.  A history of an older lvmbench also holds
    ``best_hit5`` (the best epoch's val Hit@5, whatever the stop metric): kept, untyped, in ``extra``.
    """

    model: str | None = spec()
    recipe: str | None = spec()
    epochs: list[Epoch] | None = spec(key="history", of=Epoch, many="list")
    best_epoch: int | None = spec()
    stopped_epoch: int | None = spec()
    stop_reason: str | None = spec()
    steps_per_epoch: int | None = spec()
    effective_batch: int | None = spec()
    stop_metric: str | None = spec()
    best_metric: float | None = spec()
    resumed: list[Any] | None = spec()
    distributed: dict[str, Any] | None = spec()

    @classmethod
    def load(cls, run_dir: str | Path) -> History | None:
        """RUN_DIR/training_history.json (or that file), None when there is none (a baseline or predictions run)."""
        p = Path(run_dir)
        p = p / HISTORY if p.is_dir() else p
        if not p.is_file():
            return None
        return cls.from_json(read_json(p, UsageError), str(p))
