"""results.json: its schema version, the environment record, and loading it back."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

import lvmbench
from lvmbench.errors import UsageError
from lvmbench.io import read_json
from lvmbench.runtime import cpu_name

SCHEMA_VERSION = 1


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


def load_results(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise UsageError(f"{p}: results file not found")
    results = read_json(p, UsageError)
    if not isinstance(results, dict):
        raise UsageError(f"{p}: not an lvmbench results object")
    version = results.get("schema_version")
    if not isinstance(version, int):
        raise UsageError(f"{p}: no schema_version; not an lvmbench results file")
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{p}: schema_version {version} is newer than this lvmbench reads ({SCHEMA_VERSION}); upgrade lvmbench"
        )
    return results
