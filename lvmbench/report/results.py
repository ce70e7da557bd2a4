"""results.json: its schema version, the environment record, and loading it back (a :class:`lvmbench.result.Result`)."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

import lvmbench
from lvmbench.result import SCHEMA_VERSION, Result
from lvmbench.runtime import cpu_name

__all__ = ["SCHEMA_VERSION", "env_info", "load_results", "utc_now"]


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def env_info(device: str = "cpu") -> dict[str, Any]:
    import faiss
    import torch

    return {
        "lvmbench": lvmbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "faiss": getattr(faiss, "__version__", "unknown"),
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "device": device,
        "cuda": torch.version.cuda,
        "cpu": cpu_name(),
        "platform": platform.platform(),
        "git": _git(),
    }


def load_results(path: str | Path) -> Result:
    """A run's results.json (the file, or its run directory), typed: :meth:`lvmbench.result.Result.from_json`."""
    return Result.from_json(path)
