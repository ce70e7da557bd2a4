"""results.json, predictions.npz and report.md of a scored run, written last and atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lvmbench import workdir
from lvmbench.config import Recipe
from lvmbench.data.prepare import Prepared
from lvmbench.errors import IntegrityError
from lvmbench.io import atomic_save_npz, atomic_write_text, sha256_file
from lvmbench.models import registry
from lvmbench.report.gate import gate_verdict
from lvmbench.report.results import SCHEMA_VERSION, env_info, utc_now
from lvmbench.report.table import render_table
from lvmbench.result import Result
from lvmbench.train.checkpoint import best_name, find_best

Log = Callable[[str], None]


def dataset_record(prep: Prepared) -> dict[str, Any]:
    """results.json 'dataset': which chain store was scored (name, path, sha256, size, encoder, licence)."""
    m = prep.store.manifest
    return {
        "name": prep.store.name,
        "path": str(prep.store.path),
        "sha256": prep.store.sha256,
        "n_chains": prep.store.n_chains,
        "n_vectors": prep.store.n_vectors,
        "dim": prep.store.dim,
        "encoder": m.get("encoder"),
        "license": m.get("license"),
        "source": m.get("source"),
    }


def model_config(name: str, recipe: Recipe) -> dict[str, Any]:
    """What the model was built from: a built-in family reads the ModelConfig fields, an outside model only
    its name and ``model.options`` (the built-in fields do not apply to it, so recording them would mislead)."""
    if registry.get_entry(name).outside:
        return {"name": name, "options": dict(recipe.model.options)}
    return dict(vars(recipe.model))


def model_section(name: str, model: torch.nn.Module, recipe: Recipe, run_dir: Path | None,
                  history: dict[str, Any] | None) -> dict[str, Any]:
    """results.json 'model' for a registered model: kind, provenance, size, checkpoint (see :func:`model_config`)."""
    stop = recipe.train.stop_metric
    ckpt_path = (find_best(run_dir, stop) or run_dir / best_name(stop)) if run_dir else None
    entry = registry.get_entry(name)
    config = model_config(name, recipe)
    return {
        "name": name,
        "kind": entry.kind,
        "spec": entry.spec(),
        "params": registry.n_params(model),
        "checkpoint": str(ckpt_path) if ckpt_path else None,
        "checkpoint_sha256": sha256_file(ckpt_path) if ckpt_path else None,
        "best_epoch": history["best_epoch"] if history else None,
        "stopped_epoch": history["stopped_epoch"] if history else None,
        "config": config,
        **({"fit": model.describe()} if hasattr(model, "describe") else {}),
    }


def assemble(scored: dict[str, Any], model: dict[str, Any], prep: Prepared, recipe: Recipe,
             device: torch.device) -> Result:
    """The self-describing results object: model, recipe, data, split, gates and the scores
    (:func:`~lvmbench.evaluate.evaluation.evaluate_model`'s sections), typed; results.json is its ``to_json()``."""
    return Result.from_json({
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "lvmbench", "version": env_info()["lvmbench"]},
        "created_utc": utc_now(),
        "model": model,
        "params": model["params"],
        "seed": recipe.seed,
        "recipe": recipe.to_dict(),
        "dataset": dataset_record(prep),
        "split": {
            "seed": prep.split.seed,
            "sizes": prep.report["split"]["sizes"],
            "samples": prep.report["samples"],
            "sha256": prep.report["split"]["sha256"],
        },
        "gates": prep.report["gates"],
        "leakage": dict(prep.leakage),
        **scored,
        "env": env_info(str(device)),
    })


def run_status(result: Result) -> tuple[str, str | None]:
    """results.json 'status' and 'status_detail': 'complete' only for a run whose test and val consistency checks
    passed.

    ``gate`` passes only a complete run and ``compare`` leaves any other out;
    a run that failed before this point has no results.json at all (its
    directory keeps the ``.incomplete`` marker).
    """
    c = result.consistency
    problems = []
    if not c.ok:
        problems.append(f"training-time Hit@K and FAISS retrieval disagree on {c.n_mismatch} test queries "
                        "beyond float near-ties")
    if c.val is not None and not c.val.ok:
        problems.append("the best epoch's val Hit@K from the training loop disagrees with FAISS retrieval")
    return ("inconsistent" if problems else "complete"), "; ".join(problems) or None


def _has_policy(g: Any) -> bool:
    """Whether the recipe's [gate] names more than its one threshold."""
    return bool(g.thresholds or g.benchmark or g.against or g.max_p95_ms)


def _policy_verdict(run_dir: Path, g: Any, log: Log) -> None:
    """The recipe's whole gate policy on the finished run, printed (a run's exit code never depends on it)."""
    from lvmbench.errors import LvmbenchError
    from lvmbench.report.policy import from_recipe_gate
    from lvmbench.report.verdict import evaluate, render

    try:
        log(render(evaluate(from_recipe_gate(g), run_dir)))
    except LvmbenchError as exc:
        log(f"gate: the recipe's policy could not be evaluated ({exc})")


def finish(run_dir: Path, result: Result, arrays: dict[str, np.ndarray], recipe: Recipe, log: Log) -> int:
    """Gate, write predictions.npz, results.json and report.md, print the table; exit 3 on inconsistency."""
    g = recipe.gate
    result.status, result.status_detail = run_status(result)
    result.gate = gate_verdict(result, g.metric, g.min, g.on)
    atomic_save_npz(run_dir / "predictions.npz", **arrays)
    result.write(run_dir / "results.json")
    table = render_table(result)
    atomic_write_text(run_dir / "report.md", "# lvmbench report\n\n```\n" + table + "\n```\n")
    from lvmbench.report.html.build import REPORT, write_beside

    write_beside("run", [run_dir], run_dir / REPORT, log)  # the same run as one self-contained page
    log(table)
    log(f"artefacts in {run_dir}")
    workdir.mark_complete(run_dir)  # every file is written: gate, compare and eval may read it now
    if result.status == "complete" and _has_policy(g):
        _policy_verdict(run_dir, g, log)
    if not result.consistency.ok:
        raise IntegrityError(
            f"{run_dir}: training-time Hit@K and FAISS retrieval disagree on "
            f"{result.consistency.n_mismatch} queries beyond float near-ties (see results.json 'consistency')"
        )
    val = result.consistency.val
    if val is not None and not val.ok:
        raise IntegrityError(f"{run_dir}: val Hit@K from the training loop disagrees with FAISS retrieval")
    return 0
