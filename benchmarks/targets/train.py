"""Target 3, training-loop overhead: the recipe trainer per optimiser step <= 1.05 x a bare
PyTorch loop doing the same forward/backward/step on the same batches, and sample assembly
(``gather_batch``) <= 5 % of the step time."""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks._common import timed
from benchmarks.targets.common import (
    TRAINER_CALLS, CallTimer, Log, Result, default_store, result, trainer_setup,
)
from lvmbench.config import Recipe
from lvmbench.data.samples import gather_batch
from lvmbench.data.store import ChainStore
from lvmbench.models.predict import predict
from lvmbench.train import trainer as loop
from lvmbench.train.trainer import TrainData, train
from lvmbench.train.loss import loss_terms
from lvmbench.train.schedule import make_scheduler

Params = dict[str, torch.Tensor]


@dataclass
class EpochPlan:
    """The trainer's epoch-1 micro-batches (its order, its sizes), so the bare loop does the same work."""

    data: TrainData
    context_len: int
    idx: list[np.ndarray]  # sample positions of each micro-batch
    batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # pre-gathered
    steps: int  # optimiser steps

    @classmethod
    def of(cls, data: TrainData, recipe: Recipe) -> "EpochPlan":
        cfg, sub = recipe.train, data.train
        n = len(sub)
        n_micro = math.ceil(n / cfg.micro_batch)
        steps = math.ceil(n_micro / cfg.accum_steps)
        order = np.random.default_rng([recipe.seed, 1]).permutation(n)  # the trainer's epoch-1 order
        idx = [order[i * cfg.micro_batch : (i + 1) * cfg.micro_batch] for i in range(n_micro)]
        T = recipe.data.context_len
        return cls(data, T, idx, [gather_batch(data.unit, sub.target[i], sub.start[i], T) for i in idx], steps)

    @property
    def n_micro(self) -> int:
        return len(self.idx)

    def gather(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sub = self.data.train
        return gather_batch(self.data.unit, sub.target[self.idx[i]], sub.start[self.idx[i]], self.context_len)

    def gather_all(self) -> None:
        for i in range(self.n_micro):
            self.gather(i)


def bare_epoch(model: nn.Module, init: Params, recipe: Recipe, plan: EpochPlan, gather: bool = False) -> Params:
    """The same forward/backward/step on the same batches: pre-gathered, or gathered in the loop."""
    cfg = recipe.train
    steps, n_micro = plan.steps, plan.n_micro
    model.load_state_dict(init)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = make_scheduler(opt, int(round(cfg.warmup_epochs * steps)), steps * cfg.max_epochs, cfg.final_lr_ratio)
    opt.zero_grad(set_to_none=True)
    for i in range(n_micro):
        ctx, lengths, target = plan.gather(i) if gather else plan.batches[i]
        g0 = (i // cfg.accum_steps) * cfg.accum_steps
        gs = min(cfg.accum_steps, n_micro - g0)
        terms = loss_terms(predict(model, ctx, lengths), target, cfg.tau)
        loss = cfg.mse_weight * terms["mse"] + cfg.cos_weight * terms["cos"] + cfg.infonce_weight * terms["infonce"]
        (loss / gs).backward()
        if i - g0 + 1 == gs:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
    return {k: v.clone() for k, v in model.state_dict().items()}


def trainer_epoch(model: nn.Module, init: Params, data: TrainData, recipe: Recipe, run_dir: Path,
                  model_name: str) -> tuple[dict[str, float], Params]:
    """One epoch of lvmbench's own ``train``: total seconds, the seconds of each of ``TRAINER_CALLS``, weights."""
    model.load_state_dict(init)
    with CallTimer(loop, TRAINER_CALLS) as tm:
        t0 = time.perf_counter()
        train(model, data, recipe, run_dir, model_name, log=lambda _m: None)
        total = time.perf_counter() - t0
    return {"total": total, **tm.seconds}, {k: v.clone() for k, v in model.state_dict().items()}


def train_case(model_name: str, store: ChainStore, n_samples: int, repeats: int) -> dict[str, Any]:
    recipe, _prep, data, model, init = trainer_setup(store, model_name, n_samples)
    plan = EpochPlan.of(data, recipe)
    run_dir = Path(tempfile.mkdtemp(prefix="lvmbench-target-train-"))
    # warm-up: one whole bare epoch, so every batch shape has met its kernels and the allocator
    bare_epoch(model, init, recipe, plan)

    tr_rows: list[dict[str, float]] = []
    bare_s: list[float] = []
    bare_g_s: list[float] = []
    gather_s: list[float] = []
    same = True
    for r in range(repeats):
        for which in (("trainer", "bare", "bare_gather") if r % 2 == 0 else ("bare_gather", "bare", "trainer")):
            if which == "trainer":
                row, p_tr = trainer_epoch(model, init, data, recipe, run_dir, model_name)
                tr_rows.append(row)
            elif which == "bare":
                t, p_bare = timed(lambda: bare_epoch(model, init, recipe, plan))
                bare_s.append(t)
            else:
                t, _ = timed(lambda: bare_epoch(model, init, recipe, plan, gather=True))
                bare_g_s.append(t)
        same &= all(torch.equal(p_tr[k], p_bare[k]) for k in p_tr)
        gather_s.append(timed(plan.gather_all)[0])
    shutil.rmtree(run_dir, ignore_errors=True)
    return _train_summary(model_name, store, recipe, plan, tr_rows, bare_s, bare_g_s, gather_s, same, repeats)


def _train_summary(model_name: str, store: ChainStore, recipe: Recipe, plan: EpochPlan,
                   tr_rows: list[dict[str, float]], bare_s: list[float], bare_g_s: list[float],
                   gather_s: list[float], same: bool, repeats: int) -> dict[str, Any]:
    """Medians of the repeats and the ratios; the trainer's validation and file writes taken out."""
    cfg, steps = recipe.train, plan.steps
    med = {k: float(np.median([row[k] for row in tr_rows])) for k in tr_rows[0]}
    steps_only = float(np.median([row["total"] - row["validate_epoch"] - row["save_checkpoint"]
                                  - row["atomic_write_json"] for row in tr_rows]))
    b = float(np.median(bare_s))
    bg = float(np.median(bare_g_s))
    g = float(np.median(gather_s))
    return {
        "model": model_name, "dataset": store.name, "samples": len(plan.data.train), "micro_batches": plan.n_micro,
        "optimiser_steps": steps, "micro_batch": cfg.micro_batch, "accum_steps": cfg.accum_steps,
        "max_context_in_batches": int(max(int(bt[1].max()) for bt in plan.batches)),
        "trainer_seconds": med, "trainer_steps_only_s": steps_only, "bare_loop_s": b, "gather_all_s": g,
        "trainer_per_step_s": steps_only / steps, "bare_per_step_s": b / steps,
        "bare_loop_gathering_s": bg, "ratio_steps_only": steps_only / b,
        "ratio_vs_bare_gathering": steps_only / bg,
        "ratio_including_validation_and_checkpoints": med["total"] / b,
        "assembly_share_of_step": g / steps_only, "identical_weights_after_epoch": bool(same), "repeats": repeats,
    }


def target_train(repeats: int, log: Log) -> list[Result]:
    out = []
    store = default_store(log)
    for model_name, n_samples in (("memory_gru", 512), ("amn", 2048)):
        log(f"[train] {model_name} on {store.name}, {n_samples} training samples")
        c = train_case(model_name, store, n_samples, repeats)
        log(f"  trainer {c['trainer_per_step_s']:.3f} s/step (steps only), bare {c['bare_per_step_s']:.3f} s/step: "
            f"ratio {c['ratio_steps_only']:.3f} (vs a bare loop that gathers its batches "
            f"{c['ratio_vs_bare_gathering']:.3f}; "
            f"incl. validation+checkpoints {c['ratio_including_validation_and_checkpoints']:.3f}); "
            f"assembly {100 * c['assembly_share_of_step']:.2f} % of step; "
            f"identical weights {c['identical_weights_after_epoch']}")
        out.append(result("3 training-loop overhead", f"{model_name}: trainer / bare loop per optimiser step",
                          c["ratio_steps_only"], 1.05, "lower", c))
        out.append(result("3 sample assembly share", f"{model_name}: gather_batch / trainer step time",
                          c["assembly_share_of_step"], 0.05, "lower", c))
    return out


def run(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_train(args.rounds, log)
