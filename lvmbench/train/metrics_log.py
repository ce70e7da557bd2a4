"""metrics.jsonl (and optionally TensorBoard event files): the training log a tracker can read.

Every training writes ``metrics.jsonl`` in its run directory: one ``train`` line
per epoch (loss, learning rate, optimiser step, seconds) and one ``val`` line per
validation (every ``val_*`` metric).  Trackers tail an append-only file, so lines
are appended as epochs end; a resumed run rewrites the file from the history it
restored, so it never holds an epoch that the resumed state does not.
``train.logger = "tensorboard"`` (``--logger tensorboard``) also writes
TensorBoard event files under ``tensorboard/``; the recipe's numbers do not
depend on it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lvmbench.errors import UsageError
from lvmbench.io import atomic_write_text

METRICS_LOG = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
TRAIN_KEYS = ("train_loss", "lr", "seconds")


def _number(value: Any) -> float | int | None:
    """JSON has no NaN or infinity: a non-finite value is written as null."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def epoch_lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The two log records of one history row: what training did, and what validation measured."""
    head = {"epoch": int(row["epoch"]), "step": int(row["step"])}
    train = {**head, "event": "train", **{k: _number(row.get(k)) for k in TRAIN_KEYS}}
    val = {**head, "event": "val", **{k: _number(v) for k, v in row.items()
                                      if k.startswith("val_") and _number(v) is not None or k == "val_loss"}}
    return [train, val]


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, allow_nan=False)


class MetricsLog:
    """Appends each epoch to metrics.jsonl and, when asked, to TensorBoard; a no-op off the main rank."""

    def __init__(self, run_dir: Path, logger: str = "none", enabled: bool = True):
        self.path = run_dir / METRICS_LOG
        self.enabled = enabled
        self.writer = _tensorboard(run_dir) if enabled and logger == "tensorboard" else None

    def start(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite the file from ``rows`` (the history a fresh or resumed run starts from)."""
        if self.enabled:
            atomic_write_text(self.path, "".join(_dumps(r) + "\n" for row in rows for r in epoch_lines(row)))

    def epoch(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        records = epoch_lines(row)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(_dumps(r) + "\n" for r in records))
            f.flush()
        if self.writer is not None:
            for record in records:
                for key, value in record.items():
                    if key not in ("epoch", "step", "event") and value is not None:
                        self.writer.add_scalar(f"{record['event']}/{key}", value, record["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _tensorboard(run_dir: Path):  # -> torch.utils.tensorboard.SummaryWriter
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UsageError('--logger tensorboard needs TensorBoard: pip install -e ".[tensorboard]"') from None
    return SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, in order (for reports and tests)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
