"""The recipe's training loop as a small trainer.

micro-batch x accumulation -> AdamW -> clip -> warmup + cosine; validation
Hit@K and MRR against the fixed val pool every epoch (:mod:`lvmbench.train.validate`);
early stopping on the recipe's ``train.stop_metric`` (:mod:`lvmbench.train.early_stopping`);
the best checkpoint kept (``best_val_<metric>.pt``:
:func:`~lvmbench.train.checkpoint.best_name`), ``last.pt`` and
``training_history.json`` rewritten atomically every epoch.

Resume: ``last.pt`` is written before the first epoch and after every
completed one, holding the model, optimiser, scheduler, early-stopping state
(the stop metric's best value, ``best_metric``, and the patience counter),
step, the history so far and the python, numpy and torch RNG states.  The
data order needs no saved position: epoch ``e`` shuffles with
``default_rng([seed, e])`` and resume restarts at the first micro-batch of
the epoch after the checkpoint, so a resumed run takes exactly the steps the
uninterrupted one takes.  Ctrl-C (or a kill) mid-epoch loses
only that epoch's partial work; :class:`~lvmbench.errors.Interrupted` says
which epoch ``last.pt`` holds.

Several processes (torchrun): :mod:`lvmbench.train.distributed` deals each
optimiser step's micro-batches out to the ranks; with one process the loop
below is exactly the single-process recipe.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lvmbench.config import Recipe, training_seed
from lvmbench.data.samples import gather_batch
from lvmbench.errors import CheckpointError, IntegrityError, Interrupted, ModelOutputError, first_line
from lvmbench.io import atomic_write_json
from lvmbench.models.predict import predict
from lvmbench.progress import Progress
from lvmbench.format import pct
from lvmbench.runtime import native_bf16, rng_state, set_rng_state
from lvmbench.train import distributed
from lvmbench.train.checkpoint import HISTORY, LAST, adopt_legacy_best, best_name, save_checkpoint
from lvmbench.train.distributed import Dist, Group, ShardedOrder
from lvmbench.train.early_stopping import EarlyStopping
from lvmbench.train.loss import consultant_loss
from lvmbench.train.metrics_log import MetricsLog
from lvmbench.train.schedule import make_scheduler
from lvmbench.train.validate import TrainData, batch_loss, validate_epoch

def resume_command(run_dir: Path) -> str:
    """What ``lvmbench run`` prints to continue an interrupted run."""
    import shlex

    return f"lvmbench run --resume {shlex.quote(str(run_dir))}"


def metric_label(key: str) -> str:
    """'hit@5' -> 'Hit@5', 'mrr' -> 'MRR': how logs name the stop metric."""
    return key.replace("hit@", "Hit@") if key.startswith("hit@") else key.upper()


def metric_text(key: str, value: float | None) -> str:
    """How logs print a value of the stop metric: '50.0%' for a Hit@K, '0.312' for MRR."""
    return "none yet" if value is None else f"{100 * value:.1f}%" if key.startswith("hit@") else f"{value:.3f}"


RESUME_KEYS = ("optimizer", "scheduler", "best_metric", "bad_epochs", "step", "epoch", "history", "rng")
LEGACY_BEST_KEY = "best_hit5"
"""Before the best value was named by the stop metric (``best_metric``), ``last.pt`` and the history held
``best_hit5`` (an MRR run's too: its best epoch's val Hit@5); a last.pt holding only it still resumes."""


def best_epoch_val(history: dict[str, Any], key: str = "hit@5") -> float | None:
    """The best epoch's val ``key`` (its row of the history; a history of an older lvmbench: its ``best_hit5``)."""
    for row in history.get("history") or []:
        if row.get("epoch") == history.get("best_epoch") and f"val_{key}" in row:
            return row[f"val_{key}"]
    return history.get(LEGACY_BEST_KEY) if key == "hit@5" else None


class Trainer:
    """One model through the recipe; :meth:`fit` returns the history that is also on disk."""

    def __init__(self, model: nn.Module, data: TrainData, recipe: Recipe, run_dir: Path, model_name: str,
                 extra_ckpt: dict[str, Any] | None = None, log: Callable[[str], None] = print,
                 dist: Dist | None = None, resume_hint: str | None = None):
        self.resume_hint = resume_hint or resume_command(run_dir)
        self.model, self.data, self.recipe, self.cfg = model, data, recipe, recipe.train
        self.run_dir, self.name = run_dir, model_name
        self.dist = dist or distributed.SINGLE
        self.log = distributed.rank_log(log, self.dist)
        self.device = data.unit.device
        model.to(self.device)
        self._setup_schedule()
        self.epoch = 0
        self._setup_history()
        self.stopping = EarlyStopping(self.cfg.patience, self.cfg.min_delta)
        self.step = self.done = 0
        self.ckpt_common = {"model": model_name, "dim": int(data.unit.shape[1]), "recipe": recipe.to_dict(),
                            **(extra_ckpt or {})}
        self.net: nn.Module = model
        self.metrics = MetricsLog(run_dir, self.cfg.logger, self.dist.is_main)

    def _setup_schedule(self) -> None:
        cfg, world = self.cfg, self.dist.world_size
        self.per_rank = distributed.accum_per_rank(cfg.accum_steps, world)
        n = len(self.data.train)
        lengths = (np.minimum(self.data.train.target - self.data.train.start, self.recipe.data.context_len)
                   if cfg.bucket_by_length else None)
        self.sampler = ShardedOrder(n, cfg.micro_batch, cfg.accum_steps, training_seed(self.recipe), self.dist.rank,
                                    world, lengths)
        self.n_micro = math.ceil(n / cfg.micro_batch)
        self.steps_per_epoch = math.ceil(self.n_micro / cfg.accum_steps)
        warmup = int(round(cfg.warmup_epochs * self.steps_per_epoch))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, warmup, self.steps_per_epoch * cfg.max_epochs,
                                        cfg.final_lr_ratio)

    def _setup_history(self) -> None:
        cfg, dist = self.cfg, self.dist
        self.history: dict[str, Any] = {
            "model": self.name, "recipe": self.recipe.name, "history": [], "best_epoch": None,
            "stopped_epoch": None, "stop_reason": None, "steps_per_epoch": self.steps_per_epoch,
            "effective_batch": cfg.micro_batch * cfg.accum_steps, "stop_metric": cfg.stop_metric, "best_metric": None,
        }
        self.parallel = {
            "world_size": dist.world_size, "backend": dist.backend, "micro_batch": cfg.micro_batch,
            "accum_per_rank": self.per_rank, "effective_batch": cfg.micro_batch * self.per_rank * dist.world_size,
            "rank_sync": {"checked_epochs": 0, "max_abs_diff": 0.0, "per_epoch": []},
        }
        if dist.enabled:
            self.history["distributed"] = self.parallel

    def _announce(self) -> None:
        cfg, dist = self.cfg, self.dist
        self.log(
            f"training {self.name}: {len(self.data.train)} samples, {self.n_micro} micro-batches of {cfg.micro_batch} "
            f"x {cfg.accum_steps} accumulation = {self.steps_per_epoch} optimiser steps/epoch, at most "
            f"{cfg.max_epochs} epochs, device {self.device}{self._precision()}"
            + (f"; {dist.world_size} processes ({dist.backend}): micro-batch {cfg.micro_batch} x {self.per_rank} "
               f"accumulation per rank x {dist.world_size} ranks = effective batch {self.parallel['effective_batch']}"
               if dist.enabled else "")
        )

    def _precision(self) -> str:
        """How the batches are cut and computed: bf16 autocast, and the share of padded positions that are real."""
        cfg = self.cfg
        out = ", bf16 autocast" if cfg.bf16_autocast else ""
        if cfg.bf16_autocast and not native_bf16(self.device):
            out += (" (this device has no native bfloat16, so it is likely slower than float32: "
                    "--set train.bf16_autocast=false)")
        lengths = self.sampler.lengths
        if lengths is not None:
            plain = ShardedOrder(self.sampler.n, cfg.micro_batch, cfg.accum_steps, self.sampler.seed)
            out += (f"; batches grouped by context length: {100 * self.sampler.real_share(lengths):.0f}% of padded "
                    f"positions are real context ({100 * plain.real_share(lengths):.0f}% without grouping)")
        return out

    def restore(self, resume: dict[str, Any]) -> None:
        """Continue after the epoch a loaded ``last.pt`` holds, with every piece of state in it."""
        where = self.run_dir / LAST
        missing = [k for k in RESUME_KEYS
                   if k not in resume and not (k == "best_metric" and LEGACY_BEST_KEY in resume)]
        if missing:
            raise CheckpointError(f"{where}: not a resumable checkpoint (lacks {', '.join(missing)})")
        if resume["history"].get("steps_per_epoch") != self.steps_per_epoch:
            raise CheckpointError(
                f"{where}: saved with {resume['history'].get('steps_per_epoch')} optimiser steps per epoch, "
                f"but this data and recipe give {self.steps_per_epoch}"
            )
        try:
            self.model.load_state_dict(resume["state_dict"])
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])
            set_rng_state(resume["rng"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{where}: state does not fit model '{self.name}' ({first_line(exc)})") from None
        self.stopping.restore(resume["best_metric"] if "best_metric" in resume else resume[LEGACY_BEST_KEY],
                              resume["bad_epochs"])
        self.step, self.done = int(resume["step"]), int(resume["epoch"])
        self.history = resume["history"]
        self.history.pop(LEGACY_BEST_KEY, None)  # the best epoch's row holds its val Hit@5
        self.history.setdefault("stop_metric", self.cfg.stop_metric)  # a history of an older lvmbench
        self.history.setdefault("best_metric", self.stopping.best_or_none)
        if self.dist.is_main:
            adopt_legacy_best(self.run_dir, self.cfg.stop_metric)
        dist = self.dist
        self.history["resumed"] = list(self.history.get("resumed", [])) + [
            {"after_epoch": self.done, "step": self.step, **({"world_size": dist.world_size} if dist.enabled else {})}
        ]
        if dist.enabled:  # the checkpoint may come from another world size; its rank checks carry over
            self.parallel["rank_sync"] = self.history.get("distributed", {}).get(
                "rank_sync", self.parallel["rank_sync"]
            )
            self.history["distributed"] = self.parallel
        best = self.stopping.best_or_none
        self.log(
            f"resuming after epoch {self.done} (step {self.step}; best val {metric_label(self.cfg.stop_metric)} "
            + metric_text(self.cfg.stop_metric, best)
            + ("" if best is None else f" at epoch {self.history['best_epoch']}")
            + f"; {self.stopping.bad_epochs}/{self.cfg.patience} epochs without improvement)"
        )

    def _wrap_parallel(self) -> None:
        if not self.dist.enabled:
            return
        # wraps the same parameter objects the optimiser holds; checkpoints keep saving `model`
        # (no 'module.' prefix), validation runs `model` directly on each rank's share
        device = self.device
        self.net = nn.parallel.DistributedDataParallel(self.model,
                                                       device_ids=[device.index] if device.type == "cuda" else None)
        if self.dist.rank > 0:
            # identical seeds would give every rank the same dropout masks; rank 0 keeps the
            # single-process stream (the model is built and broadcast from rank 0 already)
            seed = np.random.SeedSequence([training_seed(self.recipe), self.dist.rank, self.done]).generate_state(1)[0]
            torch.manual_seed(int(seed))

    def _save_last(self, state: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        save_checkpoint(self.run_dir / LAST, {
            **state, "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "best_metric": self.stopping.best_or_none, "bad_epochs": self.stopping.bad_epochs,
            "history": self.history, "rng": rng_state(),
        })

    def _state(self, epoch: int, val_hit5: float | None) -> dict[str, Any]:
        return {**self.ckpt_common, "epoch": epoch, "step": self.step, "state_dict": self.model.state_dict(),
                "val_hit5": val_hit5}

    def fit(self, resume: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train to early stopping, divergence or ``max_epochs``; return the history."""
        self._announce()
        if resume is not None:
            self.restore(resume)
        self._wrap_parallel()
        early_stop = (f"early stop: val {metric_label(self.cfg.stop_metric)} did not improve for "
                      f"{self.cfg.patience} epochs")
        self.metrics.start(self.history["history"])
        try:
            if resume is None:  # "epoch 0": a run stopped during its first epoch resumes from here
                self._save_last(self._state(0, None))
            if self.stopping.should_stop:  # resumed after the epoch that triggered the early stop
                self.history["stop_reason"] = early_stop
            for epoch in range(self.done + 1, self.cfg.max_epochs + 1):
                if self.history["stop_reason"] is not None:
                    break
                if not self._epoch(epoch, early_stop):
                    break
            if self.history["stop_reason"] is None:
                self.history["stop_reason"] = f"reached max_epochs={self.cfg.max_epochs}"
            if self.dist.is_main:
                atomic_write_json(self.run_dir / HISTORY, self.history)
        except KeyboardInterrupt:
            if not (self.run_dir / LAST).is_file():
                raise Interrupted(
                    f"{self.run_dir}: interrupted before the first checkpoint; resume with: {self.resume_hint}"
                ) from None
            raise Interrupted(f"interrupted; {self.run_dir / LAST} holds the state after epoch {self.done} "
                              f"(work since then is lost); resume with: {self.resume_hint}") from None
        finally:
            self.metrics.close()
        if self.history["best_epoch"] is None:
            degenerate = [r["epoch"] for r in self.history["history"] if r.get("val_degenerate")]
            why = (f"; the val predictions of epoch(s) {', '.join(map(str, degenerate))} were not finite unit vectors"
                   if degenerate else "")
            raise IntegrityError(f"{self.name}: training produced no checkpoint: no epoch had a usable val "
                                 f"{metric_label(self.cfg.stop_metric)} ({self.history['stop_reason']}{why})")
        return self.history

    def _epoch(self, epoch: int, early_stop: str) -> bool:
        """One epoch, its validation and checkpoints; False when training must stop at once (divergence)."""
        t0 = time.perf_counter()
        running, seen, diverged = self._run_epoch(epoch)
        if diverged:
            self.history["stop_reason"] = f"non-finite training loss in epoch {epoch}"
            self.history["stopped_epoch"] = epoch
            best = self.history["best_epoch"]
            self.log(f"epoch {epoch}: loss became non-finite; stopping "
                     + (f"(the best checkpoint, epoch {best}, is kept)" if best is not None else
                        "(no epoch had a usable val score before it, so there is no checkpoint to keep)"))
            return False
        if self.dist.enabled:
            running, seen = distributed.all_reduce_sum([running, seen], self.dist).tolist()
            self._check_ranks(epoch)
        val = validate_epoch(self.model, self.data, self.recipe, self.dist)
        row = {"epoch": epoch, "step": self.step, "train_loss": running / max(seen, 1), **val,
               "lr": self.scheduler.get_last_lr()[0], "seconds": time.perf_counter() - t0}
        self.history["history"].append(row)
        hit5 = val["val_hit@5"]
        # the best value survives a resume (restored from last.pt), so a resumed run can
        # never replace the best checkpoint with a worse one
        improved = self.stopping.update(val[f"val_{self.cfg.stop_metric}"])
        state = self._state(epoch, hit5)
        if improved:
            self.history["best_epoch"] = epoch
            self.history["best_metric"] = val[f"val_{self.cfg.stop_metric}"]
            if self.dist.is_main:
                save_checkpoint(self.run_dir / best_name(self.cfg.stop_metric), state)
        self.history["stopped_epoch"] = epoch
        if self.stopping.should_stop:
            self.history["stop_reason"] = early_stop
        # order matters for a kill between writes: best, then last (the resume
        # point, holding the history), then the history file
        self._save_last(state)
        self.done = epoch
        if self.dist.is_main:
            atomic_write_json(self.run_dir / HISTORY, self.history)
        self.metrics.epoch(row)
        self._log_epoch(row, val, improved)
        return True

    def _log_epoch(self, row: dict[str, Any], val: dict[str, Any], improved: bool) -> None:
        degenerate, first = val.get("val_degenerate"), val.get("val_degenerate_first", "?")
        scores = (f"val: {degenerate} predictions are not finite unit vectors ({first}); not eligible as best"
                  if degenerate else
                  "  ".join(f"val_hit@{k} {pct(val[f'val_hit@{k}'])}%" for k in self.recipe.eval.ks)
                  + (f"  val_mrr {val['val_mrr']:.3f}" if "val_mrr" in val else ""))
        self.log(
            f"epoch {row['epoch']:3d}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  {scores}"
            + f"  lr {row['lr']:.2e}  {row['seconds']:.1f}s"
            + ("  *best*" if improved else f"  (no improvement {self.stopping.bad_epochs}/{self.cfg.patience})")
        )

    def _run_epoch(self, epoch: int) -> tuple[float, int, bool]:
        """Every optimiser step of one epoch: (summed loss x samples, samples, diverged)."""
        self.net.train()
        self.sampler.set_epoch(epoch)
        self.epoch = epoch
        acc = [0.0, 0, False]  # running loss sum, samples seen, diverged
        bar = Progress(self.n_micro, f"epoch {epoch}/{self.cfg.max_epochs}", self.log, "micro-batches",
                       enabled=self.dist.is_main)
        self.optimizer.zero_grad(set_to_none=True)
        for group in self.sampler.groups():
            self._accumulate(group, acc, bar)
            if distributed.any_rank(bool(acc[2]), self.dist):
                acc[2] = True
                break
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            if self.dist.enabled:
                bar.update(group.size)
                self._postfix(bar, acc)
        bar.close()
        return float(acc[0]), int(acc[1]), bool(acc[2])

    def _postfix(self, bar: Progress, acc: list[Any]) -> None:
        bar.set_postfix(loss=f"{acc[0] / max(acc[1], 1):.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")

    def _accumulate(self, group: Group, acc: list[Any], bar: Progress) -> None:
        """Forward and backward of this rank's micro-batches of one optimiser step.

        DDP averages gradients over the ranks, so each rank's losses are scaled by
        world / group size: the sum equals the single-process sum of loss / group size.
        A rank with no micro-batch in a short last step runs one with weight 0: every
        rank must join each step's gradient all-reduce.
        """
        dist, cfg, data = self.dist, self.cfg, self.data
        batches = group.mine or [group.filler]
        for j, idx in enumerate(batches):
            sync = not dist.enabled or j == len(batches) - 1  # all-reduce on the rank's last backward only
            with contextlib.nullcontext() if sync else self.net.no_sync():
                ctx, lengths, target = gather_batch(data.unit, data.train.target[idx], data.train.start[idx],
                                                    self.recipe.data.context_len)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16_autocast):
                    try:
                        pred = predict(self.net, ctx, lengths)
                    except ModelOutputError as exc:
                        raise ModelOutputError(f"model '{self.name}': training step {self.step + 1} (epoch "
                                               f"{self.epoch}): {exc}") from None
                # .float(): a no-op unless bf16_autocast
                loss, _ = batch_loss(pred.float(), target, data.train.target[idx], data.train.start[idx], data,
                                     self.recipe, consultant_loss)
                if not group.mine:
                    (loss * 0.0).backward()
                    continue
                if not torch.isfinite(loss):
                    acc[2] = True
                    if not dist.enabled:
                        break
                    # under DDP the backward still runs: the other ranks wait for its all-reduce;
                    # every rank then learns of the divergence and skips the step
                (loss / (group.size / dist.world_size)).backward()
                acc[0] += loss.item() * len(idx)
                acc[1] += len(idx)
            if not dist.enabled:
                bar.update(1)
                self._postfix(bar, acc)

    def _check_ranks(self, epoch: int) -> None:
        """Parameter fingerprints of every rank must agree bit for bit after each epoch."""
        spread = distributed.rank_spread(self.model, self.dist)
        sync = self.parallel["rank_sync"]
        sync["checked_epochs"] += 1
        sync["max_abs_diff"] = max(sync["max_abs_diff"], spread)
        sync["per_epoch"].append(spread)
        if spread > 0.0:  # every rank sees the same gathered fingerprints, so every rank stops here
            raise IntegrityError(
                f"{self.name}: ranks out of sync after epoch {epoch} (parameter fingerprints differ by "
                f"{spread:.3g}); DistributedDataParallel should keep them bit-identical"
            )


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
    resume_hint: str | None = None,
) -> dict[str, Any]:
    """Run the recipe; return the history dict that is also on disk.

    ``resume`` is a loaded ``last.pt``: training continues after its epoch
    with every piece of state it holds.  ``dist`` (from
    :func:`lvmbench.train.distributed.init_from_env`) trains on every rank of a
    torchrun launch with DistributedDataParallel: the same micro-batches and
    optimiser steps as one process, only rank 0 writes files and logs.
    ``resume_hint`` is the command an interrupt tells the user to run
    (default ``lvmbench run --resume RUN_DIR``).
    """
    return Trainer(model, data, recipe, run_dir, model_name, extra_ckpt, log, dist, resume_hint).fit(resume)
