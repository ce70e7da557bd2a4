"""Training one model on several processes (``torchrun ... -m lvmbench run``).

Why it is built this way:

* **The same steps as one process.**  :class:`ShardedOrder` cuts the epoch's
  permutation (``default_rng([seed, epoch])``, the single-process order) into
  the same micro-batches and the same optimiser-step groups, and deals each
  group's micro-batches round-robin to the ranks.  ``train.accum_steps`` stays
  the *global* number of micro-batches per optimiser step, so the union of
  what the ranks see in one step is exactly the single-process step, the
  effective batch (micro_batch x accum_steps) is the recipe's whatever the
  world size, and the gradient equals the single-process one up to float
  summation order (the loop scales each loss by world / group size because
  DistributedDataParallel averages over ranks).  A 2-process run therefore
  reproduces a 1-process run to within rounding, which is what the test
  checks, and a checkpoint can be resumed at another world size.
* **Rank 0 writes, every rank decides the same.**  Validation sums are
  all-reduced and rank 0's numbers broadcast, so early stopping cannot split
  the ranks; a non-finite loss on any rank stops every rank; a parameter
  fingerprint is compared across ranks after every epoch.
* **No hangs on bad input.**  Checks that only need the recipe and the
  environment run on every rank before the process group exists; a check only
  rank 0 can make (the run directory) is shared with :func:`on_main`, so every
  rank fails with the same one-line error.  The group is destroyed as soon as
  training ends: rank 0 then scores on its own, and the other ranks exit 0
  (torchrun waits for them all), so no rank sits in a collective with a
  timeout while rank 0 scores.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import torch

from lvmbench.errors import LvmbenchError, UsageError, error_line
from lvmbench.runtime import resolve_device

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a torchrun launch; the default is a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    enabled: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()
_current: Dist = SINGLE


def from_env() -> Dist:
    """torchrun's WORLD_SIZE / RANK / LOCAL_RANK, read without starting anything (not distributed when absent or 1)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise UsageError(f"malformed torchrun environment ({exc})") from None
    if world <= 1:
        return SINGLE
    return Dist(rank=rank, world_size=world, local_rank=local, enabled=True)


def current() -> Dist:
    """The process group this process joined with :func:`init_from_env` (``SINGLE`` if none)."""
    return _current


def init_from_env(device_name: str) -> tuple[Dist, torch.device]:
    """Join torchrun's process group (gloo on CPU, nccl on CUDA) and resolve this rank's device.

    Single process: nothing is started and the device is ``--device`` as usual.
    Under torchrun with CUDA each process uses ``cuda:LOCAL_RANK``.
    """
    global _current
    dist = from_env()
    device = resolve_device(device_name)
    if not dist.enabled:
        return dist, device
    if device.type == "cuda":
        if dist.local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"LOCAL_RANK {dist.local_rank} but only {torch.cuda.device_count()} CUDA devices; "
                "use --nproc-per-node <= the number of GPUs"
            )
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise UsageError(f"--device {device}: distributed training supports cpu (gloo) and cuda (nccl)")
    if not torch.distributed.is_available():
        raise UsageError("this PyTorch build has no torch.distributed; run without torchrun")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    # a group the caller started itself is used as it is
    dist = Dist(torch.distributed.get_rank(), torch.distributed.get_world_size(), dist.local_rank,
                str(torch.distributed.get_backend()), True)
    _current = dist
    return dist, device


def shutdown(barrier: bool = True) -> None:
    """Leave the process group; with ``barrier`` only once every rank got here."""
    global _current
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if barrier:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    _current = SINGLE


def refuse_series(what: str) -> None:
    """Several trainings in one launch (``run --model a,b``, ``sweep``) are refused under torchrun."""
    d = from_env()
    if d.enabled:
        raise UsageError(
            f"{what} under torchrun (WORLD_SIZE={d.world_size}): distributed runs train one model; "
            "run them one by one"
        )


def accum_per_rank(accum_steps: int, world: int, hint: str | None = None) -> int:
    """Micro-batches each rank accumulates per optimiser step; refuses a global count the ranks cannot share."""
    if accum_steps % world:
        multiple = world * max(1, math.ceil(accum_steps / world))
        raise UsageError(
            f"train.accum_steps={accum_steps} is not a multiple of the {world} processes: each optimiser step's "
            f"{accum_steps} micro-batches must split evenly across ranks to keep the effective batch; "
            + (hint or f"use --set train.accum_steps=<multiple of {world}>, e.g. {multiple}")
        )
    return accum_steps // world


def quiet(_msg: str) -> None:
    """The log of ranks other than 0."""


def rank_log(log: Callable[[str], None], dist: Dist) -> Callable[[str], None]:
    return log if dist.is_main else quiet


class RankError(LvmbenchError):
    """Another rank's error, raised here so every rank stops with the same line and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def on_main(fn: Callable[[], T], dist: Dist | None = None) -> T:
    """Run ``fn`` on rank 0 only and give its result (or its error) to every rank."""
    dist = dist or _current
    if not dist.enabled:
        return fn()
    payload: list[Any] = [None]
    error: BaseException | None = None
    if dist.is_main:
        try:
            payload[0] = ("ok", fn())
        except Exception as exc:  # noqa: BLE001 - handed to the other ranks, re-raised here below
            error = exc
            payload[0] = ("error", str(exc), getattr(exc, "exit_code", 1))
    torch.distributed.broadcast_object_list(payload, src=0)
    if payload[0][0] == "ok":
        return payload[0][1]
    # torchrun stops every process as soon as one exits with an error, so each rank prints
    # the line first and none leaves before all have (rank 0's own non-lvmbench error
    # keeps its traceback instead)
    err = error if error is not None else RankError(payload[0][1], payload[0][2])
    if isinstance(err, LvmbenchError):
        print(error_line(err), file=sys.stderr, flush=True)
        err.reported = True
    torch.distributed.barrier()
    raise err


def broadcast_object(obj: T, dist: Dist) -> T:
    """Rank 0's ``obj`` on every rank."""
    if not dist.enabled:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(values: list[float] | torch.Tensor, dist: Dist) -> torch.Tensor:
    """Element-wise float64 sum over ranks (a copy on CPU; gloo and nccl both take it via the rank's device)."""
    t = torch.as_tensor(values, dtype=torch.float64).clone()
    if dist.enabled:
        dev = t.device
        if dist.backend == "nccl":
            t = t.cuda()
        torch.distributed.all_reduce(t)
        t = t.to(dev)
    return t


def any_rank(flag: bool, dist: Dist) -> bool:
    """True on every rank when ``flag`` is true on at least one."""
    if not dist.enabled:
        return flag
    return bool(all_reduce_sum([1.0 if flag else 0.0], dist)[0] > 0)


@torch.no_grad()
def fingerprint(model: torch.nn.Module) -> torch.Tensor:
    """Per parameter tensor: float64 sum and sum of absolute values.  Cheap; equal parameters give equal bits."""
    rows = [torch.stack([p.detach().double().sum(), p.detach().double().abs().sum()]) for p in model.parameters()]
    return torch.stack(rows).flatten().cpu()


def rank_spread(model: torch.nn.Module, dist: Dist) -> float:
    """Largest difference of :func:`fingerprint` between any rank and rank 0 (0.0 when in sync)."""
    mine = fingerprint(model)
    if not dist.enabled:
        return 0.0
    gathered = [torch.empty_like(mine) for _ in range(dist.world_size)]
    if dist.backend == "nccl":
        gathered = [g.cuda() for g in gathered]
        torch.distributed.all_gather(gathered, mine.cuda())
    else:
        torch.distributed.all_gather(gathered, mine)
    stacked = torch.stack([g.cpu() for g in gathered])
    return float((stacked - stacked[0]).abs().max())


@dataclass
class Group:
    """One optimiser step as this rank sees it."""

    size: int  # micro-batches in the step, over all ranks (the last step of an epoch may be short)
    mine: list[np.ndarray]  # this rank's micro-batches (sample indices), in order
    filler: np.ndarray | None  # a micro-batch to run with zero weight when ``mine`` is empty


class ShardedOrder:
    """The single-process data order, dealt out to ranks one optimiser step at a time.

    Epoch ``e``: permutation ``default_rng([seed, e])`` of the ``n`` samples, cut
    into micro-batches of ``micro_batch``, grouped ``accum_steps`` (global) to a
    step; rank ``r`` takes micro-batch ``i`` of a step starting at ``g`` when
    ``(i - g) % world == r``.  With ``world == 1`` this is exactly the loop's
    order without sharding.

    With ``lengths`` (each sample's context length: ``train.bucket_by_length``)
    the shuffled samples are stably sorted by length, cut into micro-batches
    of similar length, and the micro-batches are shuffled again
    (``default_rng([seed, e, 1])``): every sample is still seen once per epoch
    in a seeded order, but a batch is padded only to a length its samples
    nearly share, so a recurrent model computes on real context, not padding.
    """

    def __init__(self, n: int, micro_batch: int, accum_steps: int, seed: int, rank: int = 0, world: int = 1,
                 lengths: np.ndarray | None = None):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world of {world}")
        if lengths is not None and len(lengths) != n:
            raise ValueError(f"{len(lengths)} lengths for {n} samples")
        self.n, self.micro_batch, self.accum_steps, self.seed = n, micro_batch, accum_steps, seed
        self.rank, self.world, self.lengths = rank, world, lengths
        self.n_micro = math.ceil(n / micro_batch)
        self.steps = math.ceil(self.n_micro / accum_steps)
        self.order: np.ndarray | None = None
        self._bounds: np.ndarray | None = None

    def set_epoch(self, epoch: int) -> None:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        if self.lengths is not None:
            order = order[np.argsort(self.lengths[order], kind="stable")]
            batches = [order[i : i + self.micro_batch] for i in range(0, self.n, self.micro_batch)]
            shuffled = np.random.default_rng([self.seed, epoch, 1]).permutation(len(batches))
            order = np.concatenate([batches[b] for b in shuffled]) if batches else order
            # a short last batch may now sit anywhere; batch(i) slices by position, so keep each batch whole
            self._bounds = np.concatenate([[0], np.cumsum([len(batches[b]) for b in shuffled])])
        else:
            self._bounds = None
        self.order = order

    def real_share(self, lengths: np.ndarray, epoch: int = 1) -> float:
        """The share of the padded positions of this epoch's micro-batches that hold real context."""
        self.set_epoch(epoch)
        real = padded = 0
        for i in range(self.n_micro):
            lens = lengths[self.batch(i)]
            real += int(lens.sum())
            padded += int(lens.max()) * len(lens)
        return real / max(padded, 1)

    def batch(self, i: int) -> np.ndarray:
        assert self.order is not None, "call set_epoch first"
        if self._bounds is not None:
            return self.order[self._bounds[i] : self._bounds[i + 1]]
        return self.order[i * self.micro_batch : (i + 1) * self.micro_batch]

    def groups(self) -> Iterator[Group]:
        for start in range(0, self.n_micro, self.accum_steps):
            size = min(self.accum_steps, self.n_micro - start)
            mine = [self.batch(i) for i in range(start, start + size) if (i - start) % self.world == self.rank]
            yield Group(size, mine, None if mine else self.batch(start))
