"""The consultant recipe's training loop.

micro-batch x accumulation -> AdamW -> clip -> warmup + cosine; validation
Hit@5 against the fixed val pool every epoch (the same ``torch_ranks`` that the
consistency check later compares with FAISS); early stopping on it; the best
checkpoint kept, ``last.pt`` and ``training_history.json`` rewritten
atomically every epoch.

Resume: ``last.pt`` is written before the first epoch and after every
completed one, holding the model, optimiser, scheduler, early-stopping state
(best Hit@5, patience counter), step, the history so far and the python, numpy
and torch RNG states.  The data order needs no saved position: epoch ``e``
shuffles with ``default_rng([seed, e])`` and resume restarts at the first
micro-batch of the epoch after the checkpoint, so a resumed run takes exactly
the steps the uninterrupted one takes.  Ctrl-C (or a kill) mid-epoch loses
only that epoch's partial work; :class:`Interrupted` carries the resume command.

Several processes (torchrun): :mod:`lvmbench.train.distributed` deals each
optimiser step's micro-batches out to the ranks; with one process the loop
below is exactly the single-process recipe.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from lvmbench.config import Recipe
from lvmbench.errors import CheckpointError, LvmbenchError
from lvmbench.data.samples import Samples, gather_batch
from lvmbench.evaluate.scoring import Queries, predict_all, torch_ranks
from lvmbench.io import atomic_write_json
from lvmbench.models.predict import predict
from lvmbench.train import distributed
from lvmbench.train.checkpoint import save_checkpoint
from lvmbench.train.distributed import Dist, ShardedOrder
from lvmbench.train.loss import consultant_loss
from lvmbench.train.schedule import make_scheduler

BEST = "best_val_hit5.pt"
LAST = "last.pt"
HISTORY = "training_history.json"


@dataclass
class TrainData:
    unit: torch.Tensor  # [N, D] float32 L2-normalised, on the training device
    train: Samples
    val: Samples
    val_queries: Queries
    val_pool: torch.Tensor  # [P, D] on the training device


class Interrupted(LvmbenchError):
    """Ctrl-C: the run directory holds a resumable ``last.pt``; exit 130."""

    exit_code = 130


def resume_command(run_dir: Path) -> str:
    import shlex

    return f"lvmbench run --resume {shlex.quote(str(run_dir))}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors and plain data (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


RESUME_KEYS = ("optimizer", "scheduler", "best_hit5", "bad_epochs", "step", "epoch", "history", "rng")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from lvmbench.errors import UsageError

        raise UsageError(f"--device {name}: CUDA is not available on this machine (use --device auto or cpu)")
    return torch.device(name)


@torch.no_grad()
def validate(model: nn.Module, data: TrainData, recipe: Recipe, dist: Dist = distributed.SINGLE) -> dict[str, float]:
    """Val loss (recipe loss over micro-batch-sized chunks) and torch Hit@K on the val pool.

    Under torchrun the val queries are shared out: rank ``r`` takes the chunks
    ``r::world`` (the chunks the loss averages over), ranks them against the
    whole val pool, and the loss x weight, hit counts and reciprocal-rank sums
    are all-reduced; rank 0's result is then broadcast, so every rank takes the
    same early-stopping decision.  With one process the sums are those of
    ``np.average`` / ``metrics.hit_at_k`` / ``metrics.mrr`` over every query.
    """
    cfg = recipe.train
    n, mb = len(data.val), cfg.micro_batch
    chunks = list(range(0, n, mb))[dist.rank :: dist.world_size]
    keep = np.concatenate([np.arange(s, min(s + mb, n)) for s in chunks]) if chunks else np.empty(0, dtype=np.int64)
    samples = data.val.subset(keep)
    pred = predict_all(model, data.unit, samples, recipe.data.context_len, cfg.eval_batch).to(data.unit.device)
    target = data.unit[torch.from_numpy(samples.target).to(data.unit.device)]
    losses, weights, pos = [], [], 0
    for s in chunks:
        w = min(mb, n - s)
        loss, _ = consultant_loss(pred[pos : pos + w], target[pos : pos + w], cfg)
        losses.append(loss.item())
        weights.append(w)
        pos += w
    ranks, _ = torch_ranks(pred, data.val_pool, data.val_queries.subset(keep), exclude=recipe.eval.exclude_context)
    ks = list(recipe.eval.ks)
    local = [float(np.multiply(losses, weights).sum()), float(sum(weights))]
    local += [float((ranks <= k).sum()) for k in ks]
    local += [float((1.0 / ranks.astype(np.float64)).sum()), float(len(ranks))]
    tot = distributed.all_reduce_sum(local, dist).tolist()
    count = tot[-1]
    out = {"val_loss": tot[0] / tot[1]}
    for j, k in enumerate(ks):
        out[f"val_hit@{k}"] = tot[2 + j] / count
    out["val_mrr"] = tot[-2] / count
    return distributed.broadcast_object(out, dist)


def train(
    model: nn.Module,
    data: TrainData,
    recipe: Recipe,
    run_dir: Path,
    model_name: str,
    extra_ckpt: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    resume: dict[str, Any] | None = None,
    dist: Dist | None = None,
) -> dict[str, Any]:
    """Run the recipe; return the history dict that is also on disk.

    ``resume`` is a loaded ``last.pt``: training continues after its epoch
    with every piece of state it holds (see the module docstring).

    ``dist`` (from :func:`lvmbench.train.distributed.init_from_env`) trains on
    every rank of a torchrun launch with DistributedDataParallel: the same
    micro-batches and optimiser steps as one process (see
    :mod:`lvmbench.train.distributed`), only rank 0 writes files and logs.
    """
    cfg = recipe.train
    dist = dist or distributed.SINGLE
    log = distributed.rank_log(log, dist)
    world = dist.world_size
    per_rank = distributed.accum_per_rank(cfg.accum_steps, world)
    device = data.unit.device
    model.to(device)
    n = len(data.train)
    sampler = ShardedOrder(n, cfg.micro_batch, cfg.accum_steps, recipe.seed, dist.rank, world)
    n_micro = math.ceil(n / cfg.micro_batch)
    steps_per_epoch = math.ceil(n_micro / cfg.accum_steps)
    total_steps = steps_per_epoch * cfg.max_epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(optimizer, warmup, total_steps, cfg.final_lr_ratio)
    history: dict[str, Any] = {
        "model": model_name,
        "recipe": recipe.name,
        "history": [],
        "best_hit5": None,
        "best_epoch": None,
        "stopped_epoch": None,
        "stop_reason": None,
        "steps_per_epoch": steps_per_epoch,
        "effective_batch": cfg.micro_batch * cfg.accum_steps,
    }
    parallel = {
        "world_size": world,
        "backend": dist.backend,
        "micro_batch": cfg.micro_batch,
        "accum_per_rank": per_rank,
        "effective_batch": cfg.micro_batch * per_rank * world,
        "rank_sync": {"checked_epochs": 0, "max_abs_diff": 0.0, "per_epoch": []},
    }
    if dist.enabled:
        history["distributed"] = parallel
    best, bad_epochs, step, done = -math.inf, 0, 0, 0
    ckpt_common = {"model": model_name, "dim": int(data.unit.shape[1]), "recipe": recipe.to_dict(), **(extra_ckpt or {})}
    log(
        f"training {model_name}: {n} samples, {n_micro} micro-batches of {cfg.micro_batch} x {cfg.accum_steps} "
        f"accumulation = {steps_per_epoch} optimiser steps/epoch, at most {cfg.max_epochs} epochs, device {device}"
        + (f"; {world} processes ({dist.backend}): micro-batch {cfg.micro_batch} x {per_rank} accumulation per rank "
           f"x {world} ranks = effective batch {parallel['effective_batch']}" if dist.enabled else "")
    )
    if resume is not None:
        where = run_dir / LAST
        missing = [k for k in RESUME_KEYS if k not in resume]
        if missing:
            raise CheckpointError(f"{where}: not a resumable checkpoint (lacks {', '.join(missing)})")
        if resume["history"].get("steps_per_epoch") != steps_per_epoch:
            raise CheckpointError(
                f"{where}: saved with {resume['history'].get('steps_per_epoch')} optimiser steps per epoch, "
                f"but this data and recipe give {steps_per_epoch}"
            )
        try:
            model.load_state_dict(resume["state_dict"])
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            set_rng_state(resume["rng"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{where}: state does not fit model '{model_name}' ({first})") from None
        best = -math.inf if resume["best_hit5"] is None else float(resume["best_hit5"])
        bad_epochs, step, done = int(resume["bad_epochs"]), int(resume["step"]), int(resume["epoch"])
        history = resume["history"]
        history["resumed"] = list(history.get("resumed", [])) + [
            {"after_epoch": done, "step": step, **({"world_size": world} if dist.enabled else {})}
        ]
        if dist.enabled:  # the checkpoint may come from another world size; its rank checks carry over
            parallel["rank_sync"] = history.get("distributed", {}).get("rank_sync", parallel["rank_sync"])
            history["distributed"] = parallel
        log(
            f"resuming after epoch {done} (step {step}; best val Hit@5 "
            + ("none yet" if best == -math.inf else f"{100 * best:.1f}% at epoch {history['best_epoch']}")
            + f"; {bad_epochs}/{cfg.patience} epochs without improvement)"
        )

    net: nn.Module = model
    if dist.enabled:
        # wraps the same parameter objects the optimiser holds; checkpoints keep saving `model`
        # (no 'module.' prefix), validation runs `model` directly on each rank's share
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if dist.rank > 0:
            # identical seeds would give every rank the same dropout masks; rank 0 keeps the
            # single-process stream (the model is built and broadcast from rank 0 already)
            torch.manual_seed(int(np.random.SeedSequence([recipe.seed, dist.rank, done]).generate_state(1)[0]))

    def save_last(state: dict[str, Any]) -> None:
        if not dist.is_main:
            return
        save_checkpoint(
            run_dir / LAST,
            {
                **state,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "best_hit5": None if best == -math.inf else best,
                "bad_epochs": bad_epochs,
                "history": history,
                "rng": rng_state(),
            },
        )

    early_stop = f"early stop: val Hit@5 did not improve for {cfg.patience} epochs"
    try:
        if resume is None:
            # "epoch 0": a run stopped during its first epoch resumes from here
            save_last({**ckpt_common, "epoch": 0, "step": 0, "state_dict": model.state_dict(), "val_hit5": None})
        if bad_epochs >= cfg.patience:  # resumed after the epoch that triggered the early stop
            history["stop_reason"] = early_stop
        for epoch in range(done + 1, cfg.max_epochs + 1):
            if history["stop_reason"] is not None:
                break
            t0 = time.perf_counter()
            net.train()
            sampler.set_epoch(epoch)
            running, seen, diverged = 0.0, 0, False
            bar = tqdm(total=n_micro, desc=f"epoch {epoch}/{cfg.max_epochs}", leave=False,
                       disable=None if dist.is_main else True, file=sys.stderr)
            optimizer.zero_grad(set_to_none=True)
            for group in sampler.groups():
                # DDP averages gradients over the ranks, so each rank's losses are scaled by
                # world / group size: the sum equals the single-process sum of loss / group size.
                # A rank with no micro-batch in a short last step runs one with weight 0: every
                # rank must join each step's gradient all-reduce.
                batches = group.mine or [group.filler]
                for j, idx in enumerate(batches):
                    sync = not dist.enabled or j == len(batches) - 1  # all-reduce on the rank's last backward only
                    with contextlib.nullcontext() if sync else net.no_sync():
                        ctx, lengths, target = gather_batch(data.unit, data.train.target[idx], data.train.start[idx], recipe.data.context_len)
                        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16_autocast):
                            pred = predict(net, ctx, lengths)
                        loss, _ = consultant_loss(pred.float(), target, cfg)  # .float(): a no-op unless bf16_autocast
                        if not group.mine:
                            (loss * 0.0).backward()
                            continue
                        if not torch.isfinite(loss):
                            diverged = True
                            if not dist.enabled:
                                break
                            # under DDP the backward still runs: the other ranks wait for its all-reduce;
                            # every rank then learns of the divergence below and skips the step
                        (loss / (group.size / world)).backward()
                        running += loss.item() * len(idx)
                        seen += len(idx)
                    if not dist.enabled:
                        bar.update(1)
                        bar.set_postfix(loss=f"{running / max(seen, 1):.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
                if distributed.any_rank(diverged, dist):
                    diverged = True
                    break
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if dist.enabled:
                    bar.update(group.size)
                    bar.set_postfix(loss=f"{running / max(seen, 1):.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            bar.close()
            if diverged:
                history["stop_reason"] = f"non-finite training loss in epoch {epoch}"
                history["stopped_epoch"] = epoch
                log(f"epoch {epoch}: loss became non-finite; stopping (best checkpoint kept)")
                break
            if dist.enabled:
                running, seen = distributed.all_reduce_sum([running, seen], dist).tolist()
                spread = distributed.rank_spread(model, dist)
                sync = parallel["rank_sync"]
                sync["checked_epochs"] += 1
                sync["max_abs_diff"] = max(sync["max_abs_diff"], spread)
                sync["per_epoch"].append(spread)
                if spread > 0.0:  # every rank sees the same gathered fingerprints, so every rank stops here
                    from lvmbench.errors import IntegrityError

                    raise IntegrityError(
                        f"{model_name}: ranks out of sync after epoch {epoch} (parameter fingerprints differ by "
                        f"{spread:.3g}); DistributedDataParallel should keep them bit-identical"
                    )
            val = validate(model, data, recipe, dist)
            row = {
                "epoch": epoch,
                "step": step,
                "train_loss": running / max(seen, 1),
                **val,
                "lr": scheduler.get_last_lr()[0],
                "seconds": time.perf_counter() - t0,
            }
            history["history"].append(row)
            hit5 = val["val_hit@5"]
            # `best` survives a resume (restored from last.pt), so a resumed run can
            # never replace the best checkpoint with a worse one.
            improved = hit5 > best + cfg.min_delta
            state = {
                **ckpt_common,
                "epoch": epoch,
                "step": step,
                "state_dict": model.state_dict(),
                "val_hit5": hit5,
            }
            if improved:
                best, bad_epochs = hit5, 0
                history["best_hit5"], history["best_epoch"] = hit5, epoch
                if dist.is_main:
                    save_checkpoint(run_dir / BEST, state)
            else:
                bad_epochs += 1
            history["stopped_epoch"] = epoch
            if bad_epochs >= cfg.patience:
                history["stop_reason"] = early_stop
            # order matters for a kill between writes: best, then last (the resume
            # point, holding the history), then the history file
            save_last(state)
            done = epoch
            if dist.is_main:
                atomic_write_json(run_dir / HISTORY, history)
            log(
                f"epoch {epoch:3d}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
                + "  ".join(f"val_hit@{k} {val[f'val_hit@{k}']:.3f}" for k in recipe.eval.ks)
                + f"  lr {row['lr']:.2e}  {row['seconds']:.1f}s"
                + ("  *best*" if improved else f"  (no improvement {bad_epochs}/{cfg.patience})")
            )
        if history["stop_reason"] is None:
            history["stop_reason"] = f"reached max_epochs={cfg.max_epochs}"
        if dist.is_main:
            atomic_write_json(run_dir / HISTORY, history)
    except KeyboardInterrupt:
        if not (run_dir / LAST).is_file():
            raise Interrupted(f"{run_dir}: interrupted before the first checkpoint; nothing to resume") from None
        raise Interrupted(
            f"interrupted; {run_dir / LAST} holds the state after epoch {done} (work since then is lost); "
            f"resume with: {resume_command(run_dir)}"
        ) from None
    if history["best_epoch"] is None:
        from lvmbench.errors import IntegrityError

        raise IntegrityError(f"{model_name}: training produced no checkpoint ({history['stop_reason']})")
    return history
