"""Checkpoints hold plain state_dicts and plain data only.

They load with ``torch.load(weights_only=True)``, which refuses any pickled
object that would run code, so a checkpoint from a stranger cannot execute
anything here.  Writes go to a temp file that is renamed into place.
"""

from __future__ import annotations

import os
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch

from lvmbench.errors import CheckpointError, first_line
from lvmbench.io import atomic_write

LEGACY_BEST = "best_val_hit5.pt"
"""The best checkpoint's name before it followed the recipe's stopping metric: an older run holds it whatever
the metric (an MRR run's too); :func:`find_best` still reads it."""
LAST = "last.pt"
"""The latest completed epoch with optimiser, scheduler, early-stopping and RNG state: what a resume reads."""
HISTORY = "training_history.json"

FORMAT = "lvmbench-checkpoint"
FORMAT_VERSION = 1


def best_name(stop_metric: str) -> str:
    """The best epoch's checkpoint (what a run scores), named by the metric early stopping follows:
    ``best_val_hit5.pt`` for hit@5, ``best_val_mrr.pt`` for mrr."""
    return f"best_val_{stop_metric.replace('@', '')}.pt"


def find_best(run_dir: str | Path, stop_metric: str | None = None) -> Path | None:
    """The run directory's best checkpoint, or None when it holds none.

    With the recipe's ``stop_metric``: :func:`best_name`, else the :data:`LEGACY_BEST` of a run made before the
    name followed the metric.  Without it (a directory read before its recipe is known): its one
    ``best_val_*.pt``; beside a :data:`LEGACY_BEST` the other one is the newer.
    """
    run_dir = Path(run_dir)
    legacy = run_dir / LEGACY_BEST
    if stop_metric is not None:
        named = run_dir / best_name(stop_metric)
        return named if named.is_file() else legacy if legacy.is_file() else None
    found = sorted(p for p in run_dir.glob("best_val_*.pt") if p.is_file())
    if len(found) > 1:
        found = [p for p in found if p.name != LEGACY_BEST]
    if len(found) > 1:
        raise CheckpointError(f"{run_dir}: several best checkpoints ({', '.join(p.name for p in found)}); "
                              "pass the one to use")
    return found[0] if found else None


def adopt_legacy_best(run_dir: str | Path, stop_metric: str) -> None:
    """Rename an older run's :data:`LEGACY_BEST` to :func:`best_name` (a resumed run keeps one best checkpoint)."""
    run_dir = Path(run_dir)
    named, legacy = run_dir / best_name(stop_metric), run_dir / LEGACY_BEST
    if named != legacy and legacy.is_file() and not named.exists():
        os.replace(legacy, named)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    atomic_write(path, lambda fh: torch.save(body, fh))


def _first_line(exc: BaseException) -> str:
    line = first_line(exc)
    return line.split(". ")[0] if len(line) > 120 else line  # torch's advice after the first sentence is noise


def _refusal_detail(exc: BaseException) -> str:
    """The one informative line of torch's weights-only refusal (which global it refused)."""
    text = str(exc)
    if "WeightsUnpickler error:" not in text:
        return _first_line(exc)
    rest = [line.strip() for line in text.split("WeightsUnpickler error:", 1)[1].splitlines() if line.strip()]
    return rest[0].split(" was not an allowed global")[0] if rest else _first_line(exc)


def _check_archive(path: Path) -> None:
    """Refuse a missing, non-zip, truncated or bit-flipped file before torch parses it."""
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    # lvmbench writes only torch's zip format; anything else (an empty or cut-off
    # file, a legacy raw pickle, garbage) is refused before torch parses it.
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc.strerror or exc})") from None
    if magic != b"PK\x03\x04":
        what = "empty file" if not magic else "not a PyTorch zip archive"
        raise CheckpointError(f"{path}: corrupt or not an lvmbench checkpoint ({what})")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint (the zip directory at its end is missing)")
    try:  # torch does not check the CRCs it writes; a flipped bit would load as a silently different weight
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint ({_first_line(exc)})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupt checkpoint (member {bad} fails its CRC check)")


def _load_weights_only(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load(weights_only=True)``, its refusals and parse errors mapped to one-line CheckpointErrors."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "Unsupported class" in str(exc):
            raise CheckpointError(
                f"{path}: refused to load: it holds a pickled object that could run code, not only tensors "
                f"and plain data ({_refusal_detail(exc)})"
            ) from None
        raise CheckpointError(f"{path}: corrupt checkpoint ({_refusal_detail(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({_first_line(exc)})") from None


def _check_contents(path: Path, ckpt: Any) -> None:
    """The loaded object must be an lvmbench checkpoint of a readable version with every required key."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an lvmbench checkpoint")
    version = ckpt.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: checkpoint format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt.get('format_version')} is newer than this lvmbench ({FORMAT_VERSION})"
        )
    for key in ("model", "dim", "state_dict", "recipe"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, refusing anything that could run code."""
    path = Path(path)
    _check_archive(path)
    ckpt = _load_weights_only(path, map_location)
    _check_contents(path, ckpt)
    return ckpt
