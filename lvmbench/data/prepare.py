"""data -> gates -> split -> leakage check -> samples, in one call.

Also resolves what ``--data`` means: a chain-store directory, ``synth`` (the
synthetic corpus, generated once into the cache) or nothing (the default
dataset).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lvmbench import workdir
from lvmbench.config import DataConfig, Recipe, check_recipe, explicit_keys
from lvmbench.data import synth
from lvmbench.data.gates import GateResult, apply_gates, row_hashes, unit_vectors
from lvmbench.data.samples import Samples, make_samples, pair_coherence
from lvmbench.data.split import Split, check_leakage, leakage_report, split_chains
from lvmbench.data.store import ChainStore, load_store
from lvmbench.errors import ConfigError, DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASET = REPO_ROOT / "fixtures" / "python-docs"
SYNTH_DEFAULTS = {"n_chains": 200, "dim": 384, "seed": 0}


def cache_dir() -> Path:
    return Path(os.environ.get("LVMBENCH_CACHE", Path.home() / ".cache" / "lvmbench"))


def synth_path(n_chains: int, dim: int, seed: int) -> Path:
    return cache_dir() / f"synth-v{synth.VERSION}-c{n_chains}-d{dim}-s{seed}"


def resolve_data(spec: str | None, log: Callable[[str], None] = print) -> ChainStore:
    """``None`` -> default dataset; ``'synth'`` -> cached synthetic corpus; else a directory."""
    if spec is None:
        spec = str(DEFAULT_DATASET) if (DEFAULT_DATASET / "manifest.json").is_file() else "synth"
    if spec == "synth":
        path = synth_path(**SYNTH_DEFAULTS)
        if not (path / "manifest.json").is_file():
            _generate_synth(path, log)
        return load_store(path)
    return load_store(spec)


def _generate_synth(path: Path, log: Callable[[str], None]) -> None:
    """Write the synthetic corpus once; a second process generating it at the same time waits for the first."""
    import time

    for _ in range(600):
        try:
            workdir.acquire(path, sibling=True)
            break
        except workdir.LockedError:
            time.sleep(0.5)  # another process is generating it; it takes seconds
    else:
        raise DataError(f"{path}: another process has been generating the synthetic corpus for 5 minutes")
    try:
        if not (path / "manifest.json").is_file():
            log(f"generating the synthetic corpus into {path} (once)")
            synth.write_synth(path, overwrite=True, **SYNTH_DEFAULTS)
    finally:
        workdir.release(path, sibling=True)


@dataclass
class Prepared:
    store: ChainStore
    unit: np.ndarray  # float32 [N, D] L2-normalised
    gates: GateResult
    split: Split
    samples: dict[str, Samples]
    leakage: dict[str, Any]
    report: dict[str, Any]


FIXABLE = ("train_frac", "val_frac", "test_frac", "min_chain_len", "coherence_min", "pair_coherence_min",
           "min_context")
"""The data settings a dataset's manifest may fix (its ``recipe.data`` table): the split and the gates."""


def apply_dataset_settings(recipe: Recipe, store: ChainStore) -> Recipe:
    """Adopt the split and gates a dataset fixes in its manifest (a suite task does); refuse a contradicting --set.

    The recipe is changed in place, so what a run records is what it used.
    A value the user did not set is replaced; one the user set (``--set`` or a
    TOML recipe) to something else is refused: the task would not be the
    published one.
    """
    fixed = (store.manifest.get("recipe") or {}).get("data") or {}
    default, explicit = DataConfig(), explicit_keys(recipe)
    for key, value in fixed.items():
        if key not in FIXABLE:
            raise DataError(f"{store.path / 'manifest.json'}: recipe.data.{key} cannot be fixed by a dataset "
                            f"(only {', '.join(FIXABLE)})")
        mine = getattr(recipe.data, key)
        if f"data.{key}" in explicit and mine != value:
            raise ConfigError(f"data.{key}={mine}: {store.path} fixes data.{key} = {value} in its manifest "
                              "(the task's published split and gates)")
        setattr(recipe.data, key, type(getattr(default, key))(value))
    check_recipe(recipe)
    return recipe


def prepare(store: ChainStore, recipe: Recipe, strict: bool = True) -> Prepared:
    """Gates, split, leakage check and samples.  ``strict=False`` records leakage instead of refusing it
    (``data info`` reports it in full, then exits 3).  The dataset's fixed settings are applied first."""
    apply_dataset_settings(recipe, store)
    d = recipe.data
    unit = unit_vectors(store.vectors)
    hashes = row_hashes(store.vectors)
    gates = apply_gates(unit, store.offsets, hashes, d)
    split = split_chains(gates.kept, d, recipe.seed, where=str(store.path))
    chain_ids = store.chain_ids()
    leakage = (check_leakage if strict else leakage_report)(split, store.offsets, hashes, chain_ids)
    samples = {name: make_samples(store.offsets, idx, d.min_context) for name, idx in split.chains.items()}
    removed_pair = 0
    if d.pair_coherence_min > -1.0:
        keep = pair_coherence(unit, samples["train"]) >= d.pair_coherence_min
        removed_pair = int((~keep).sum())
        samples["train"] = samples["train"].subset(keep)
    for name, s in samples.items():
        if len(s) == 0:
            raise DataError(f"{store.path}: the {name} split has no samples after the gates")
    report = {
        "gates": {
            **gates.report,
            "pair_coherence_min": d.pair_coherence_min,
            "train_samples_removed_pair_coherence": removed_pair,
        },
        "split": split.to_dict(store.offsets, chain_ids),
        "samples": {name: len(s) for name, s in samples.items()},
        "leakage": leakage,
    }
    return Prepared(store, unit, gates, split, samples, leakage, report)
