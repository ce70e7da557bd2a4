"""Split by chain (document), never by window, and prove nothing leaked.

Splitting windows at random put almost every evaluation target inside some
training context in the project this recipe came from.  Here a whole chain
goes to one split, and :func:`check_leakage` hashes every stored vector so a
vector that occurs in both training and evaluation chains (a duplicated
paragraph, say) fails the run instead of inflating it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lvmbench.config import DataConfig
from lvmbench.errors import DataError, IntegrityError
from lvmbench.io import sha256_json

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    chains: dict[str, np.ndarray]  # split name -> ascending chain indices
    seed: int

    def to_dict(self, offsets: np.ndarray, chain_ids: list[str]) -> dict[str, Any]:
        lengths = np.diff(offsets)
        body = {name: [chain_ids[c] for c in idx] for name, idx in self.chains.items()}
        return {
            "seed": self.seed,
            "sizes": {
                name: {"chains": int(len(idx)), "vectors": int(lengths[idx].sum())}
                for name, idx in self.chains.items()
            },
            "sha256": self.sha256(chain_ids),
            "chains": body,
        }

    def sha256(self, chain_ids: list[str]) -> str:
        return sha256_json({name: [chain_ids[c] for c in idx] for name, idx in self.chains.items()})


def fold_split(kept: np.ndarray, folds: int, fold: int, seed: int, where: str = "dataset") -> Split:
    """Document-level k-fold cross-validation: fold ``f`` tests one part, validates on the next, trains on the rest.

    The parts are a seeded permutation of the kept chains cut into ``folds``
    near-equal pieces, so over the ``folds`` folds every document is a test
    document exactly once (and a val document once).
    """
    if len(kept) < folds:
        raise DataError(f"{where}: {len(kept)} usable chains cannot be cut into {folds} folds")
    parts = np.array_split(np.random.default_rng(seed).permutation(len(kept)), folds)
    test, val = parts[fold], parts[(fold + 1) % folds]
    train = np.concatenate([p for i, p in enumerate(parts) if i not in (fold, (fold + 1) % folds)])
    return Split(chains={"train": np.sort(kept[train]), "val": np.sort(kept[val]), "test": np.sort(kept[test])},
                 seed=seed)


def split_chains(kept: np.ndarray, cfg: DataConfig, seed: int, where: str = "dataset") -> Split:
    """Seeded chain-level split of the chains that passed the gates (or fold ``cfg.fold`` of ``cfg.folds``)."""
    if cfg.folds:
        return fold_split(kept, cfg.folds, cfg.fold, seed, where)
    n = len(kept)
    n_val = int(round(cfg.val_frac * n))
    n_test = int(round(cfg.test_frac * n))
    n_train = n - n_val - n_test
    if n == 0:
        raise DataError(f"{where}: no chain passes the quality gates (min_chain_len={cfg.min_chain_len})")
    if n_val < 1 or n_test < 1 or n_train < 1:
        raise DataError(
            f"{where}: {n} usable chains leave an empty split "
            f"(train={n_train}, val={n_val}, test={n_test}); add chains or change data.*_frac"
        )
    perm = np.random.default_rng(seed).permutation(n)
    chains = {
        "train": np.sort(kept[perm[:n_train]]),
        "val": np.sort(kept[perm[n_train : n_train + n_val]]),
        "test": np.sort(kept[perm[n_train + n_val :]]),
    }
    return Split(chains=chains, seed=seed)


MAX_LISTED = 20
"""Leaked vectors listed one by one in the report (all are counted)."""


def leakage_report(
    split: Split, offsets: np.ndarray, hashes: list[bytes], chain_ids: list[str]
) -> dict[str, Any]:
    """Which val/test vectors are bit-identical to a training vector: counts, chains, and the first rows."""
    train_chains: dict[bytes, list[int]] = {}
    for c in split.chains["train"]:
        for r in range(offsets[c], offsets[c + 1]):
            train_chains.setdefault(hashes[r], []).append(int(c))
    report: dict[str, Any] = {"checked_vectors": 0, "leaked_vectors": 0, "leaked_chains": {}, "vectors": []}
    for name in ("val", "test"):
        for c in split.chains[name]:
            rows = range(offsets[c], offsets[c + 1])
            report["checked_vectors"] += len(rows)
            leaked = [r for r in rows if hashes[r] in train_chains]
            if not leaked:
                continue
            report["leaked_vectors"] += len(leaked)
            report["leaked_chains"][chain_ids[c]] = {"split": name, "vectors": len(leaked)}
            for r in leaked[: max(0, MAX_LISTED - len(report["vectors"]))]:
                also = sorted(set(train_chains[hashes[r]]))
                report["vectors"].append({"row": int(r), "chain": chain_ids[c], "split": name,
                                          "position": int(r - offsets[c]),
                                          "also_in_train": [chain_ids[t] for t in also[:3]],
                                          "train_chains": len(also)})
    report["ok"] = report["leaked_vectors"] == 0
    return report


def leakage_message(report: dict[str, Any]) -> str:
    names = ", ".join(list(report["leaked_chains"])[:5])
    more = len(report["leaked_chains"]) - 5
    return (
        f"leakage: {report['leaked_vectors']} val/test vectors also occur in training chains, "
        f"in {len(report['leaked_chains'])} chains ({names}{', …' if more > 0 else ''}); "
        "deduplicate the dataset (`lvmbench data dedupe SRC --out NEW_DIR` writes a copy without them)"
    )


def check_leakage(
    split: Split, offsets: np.ndarray, hashes: list[bytes], chain_ids: list[str]
) -> dict[str, Any]:
    """Fail if any vector of a val/test chain is bit-identical to a training vector."""
    report = leakage_report(split, offsets, hashes, chain_ids)
    if not report["ok"]:
        raise IntegrityError(leakage_message(report))
    return report
