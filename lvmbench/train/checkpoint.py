"""Checkpoints hold plain state_dicts and plain data only.

They load with ``torch.load(weights_only=True)``, which refuses any pickled
object that would run code, so a checkpoint from a stranger cannot execute
anything here.  Writes go to a temp file that is renamed into place.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from lvmbench.errors import CheckpointError
from lvmbench.io import atomic_write

FORMAT = "lvmbench-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    atomic_write(path, lambda fh: torch.save(body, fh))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: refused to load: it holds more than tensors and plain data ({first})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an lvmbench checkpoint")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt.get('format_version')} is newer than this lvmbench ({FORMAT_VERSION})"
        )
    for key in ("model", "dim", "state_dict", "recipe"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    return ckpt
