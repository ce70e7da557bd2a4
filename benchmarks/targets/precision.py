"""Target 5, options (speed only): bf16 autocast, ``torch.compile`` and 1 vs 2 threads for
memory_gru and transformer training steps, and the recipe trainer with ``train.bf16_autocast``."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import build_trainable, make_train_step, median_time, random_batch, set_threads, timed
from benchmarks.targets.common import (
    TRAINER_CALLS, CallTimer, Log, Result, default_store, result, trainer_setup,
)
from lvmbench.config import TrainConfig
from lvmbench.data.store import ChainStore
from lvmbench.train import trainer as loop
from lvmbench.train.trainer import train


def precision_case(model_name: str, rounds: int, threads: int) -> dict[str, Any]:
    """One synthetic training step (batch 32, T=100, D=384) per variant; fp32 measured first and last."""
    cfg = TrainConfig()
    dim, context, batch = 384, 100, 32
    ctx, lengths, target = random_batch(batch, context, dim)
    out: dict[str, Any] = {"model": model_name, "batch": batch, "context": context, "dim": dim}

    def measure(label: str, n_threads: int, compile_: bool, autocast: bool) -> None:
        set_threads(n_threads)
        torch._dynamo.reset()
        model = build_trainable(model_name, dim)
        fwd = torch.compile(model) if compile_ else None
        step = make_train_step(model, cfg, ctx, lengths, target, forward=fwd, autocast=autocast)
        first, _ = timed(step)  # includes compilation
        step()
        t = median_time(step, rounds, warmup=0)
        out[label] = {"step_s": t, "first_step_s": first, "threads": n_threads, "compile": compile_, "bf16": autocast}

    measure("fp32", threads, False, False)
    measure("bf16_autocast", threads, False, True)
    if threads > 1:
        measure("fp32_1_thread", 1, False, False)
    measure("compile", threads, True, False)
    measure("compile_bf16", threads, True, True)
    measure("fp32_again", threads, False, False)  # drift check
    set_threads(threads)
    torch._dynamo.reset()
    # the faster of the two fp32 runs (before and after the others): a conservative base for speed-ups
    base = min(out["fp32"]["step_s"], out["fp32_again"]["step_s"])
    out["fp32_drift"] = out["fp32_again"]["step_s"] / out["fp32"]["step_s"]
    out["speedup_vs_fp32"] = {k: base / v["step_s"] for k, v in out.items() if isinstance(v, dict) and "step_s" in v}
    return out


def trainer_bf16_case(model_name: str, store: ChainStore, n_samples: int, repeats: int) -> dict[str, Any]:
    """The recipe trainer itself with ``train.bf16_autocast`` off and on (real, varying batch shapes)."""
    recipe, prep, data, model, init = trainer_setup(store, model_name, n_samples)
    sub = data.train
    run_dir = Path(tempfile.mkdtemp(prefix="lvmbench-target-bf16-"))
    times: dict[bool, list[float]] = {False: [], True: []}
    losses: dict[bool, float] = {}
    for r in range(repeats + 1):  # the first round is a warm-up
        for bf16 in ((False, True) if r % 2 == 0 else (True, False)):
            recipe.train.bf16_autocast = bf16
            model.load_state_dict(init)
            with CallTimer(loop, TRAINER_CALLS) as tm:
                t0 = time.perf_counter()
                hist = train(model, data, recipe, run_dir, model_name, log=lambda _m: None)
                total = time.perf_counter() - t0
            if r:
                times[bf16].append(total - sum(tm.seconds.values()))
            losses[bf16] = hist["history"][-1]["train_loss"]
    shutil.rmtree(run_dir, ignore_errors=True)
    f32, b16 = float(np.median(times[False])), float(np.median(times[True]))
    return {"model": model_name, "dataset": store.name, "samples": len(sub), "repeats": repeats,
            "fp32_epoch_steps_s": f32, "bf16_epoch_steps_s": b16, "speedup": f32 / b16,
            "train_loss_fp32": losses[False], "train_loss_bf16": losses[True]}


def target_precision(rounds: int, threads: int, log: Log) -> list[Result]:
    out = []
    store = default_store(log)
    for model_name in ("memory_gru", "transformer"):
        c = trainer_bf16_case(model_name, store, 512, 3)
        log(f"[precision] recipe trainer, {model_name}, train.bf16_autocast: {c['fp32_epoch_steps_s']:.2f} s -> "
            f"{c['bf16_epoch_steps_s']:.2f} s per {c['samples']} samples (x{c['speedup']:.2f}); "
            f"epoch train loss {c['train_loss_fp32']:.4f} (fp32) vs {c['train_loss_bf16']:.4f} (bf16)")
        out.append(result("5 options (speed only)", f"{model_name}: recipe trainer with train.bf16_autocast, speed-up",
                          c["speedup"], 1.0, "higher", c))
    for model_name in ("memory_gru", "transformer"):
        log(f"[precision] {model_name}")
        c = precision_case(model_name, rounds, threads)
        log("  " + ", ".join(f"{k} {c[k]['step_s']:.3f} s (x{v:.2f})" for k, v in c["speedup_vs_fp32"].items()))
        for variant in ("bf16_autocast", "compile", "compile_bf16", "fp32_1_thread"):
            if variant in c["speedup_vs_fp32"]:
                out.append(result("5 options (speed only)",
                                  f"{model_name}: {variant} speed-up over fp32 x{threads} threads",
                                  c["speedup_vs_fp32"][variant], 1.0, "higher", c))
    return out


def run(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_precision(args.rounds, threads, log)
