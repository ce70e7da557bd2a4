"""The standard suite's tasks: chain stores under ``fixtures/suite/`` whose manifest has a ``suite`` section.

A task fixes its split and gates in the manifest (``recipe.data``, applied by
:func:`lvmbench.data.prepare.apply_dataset_settings`), so every run of it, by
anyone, scores the same test queries against the same pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lvmbench.data.prepare import REPO_ROOT
from lvmbench.errors import UsageError
from lvmbench.io import read_json

SUITE_DIR = REPO_ROOT / "fixtures" / "suite"


@dataclass(frozen=True)
class SuiteTask:
    name: str
    path: Path
    manifest: dict[str, Any]


def suite_tasks(root: str | Path | None = None, names: list[str] | None = None) -> list[SuiteTask]:
    """The tasks under ``root`` (default fixtures/suite), in name order; ``names`` selects some, each checked."""
    base = Path(root) if root is not None else SUITE_DIR
    if not base.is_dir():
        raise UsageError(f"{base}: suite directory not found")
    found = {}
    for mpath in sorted(base.glob("*/manifest.json")):
        manifest = read_json(mpath, UsageError)
        if isinstance(manifest, dict) and isinstance(manifest.get("suite"), dict):
            found[mpath.parent.name] = SuiteTask(mpath.parent.name, mpath.parent, manifest)
    if not found:
        raise UsageError(f"{base}: no suite tasks (chain stores whose manifest has a 'suite' section)")
    if names is None:
        return list(found.values())
    unknown = [n for n in names if n not in found]
    if unknown:
        raise UsageError(f"--tasks {','.join(unknown)}: not in the suite (tasks: {', '.join(found)})")
    return [found[n] for n in names]
