"""Inference and search latency per query: what a deploy gate's latency budget is held against.

A deploy decision asks whether the model answers within budget, on the
machine that will serve it.  Every ``run`` and ``eval`` records, beside the
scores:

* the model's ``predict()`` latency at batch 1 (one query at a time, as a
  service answers) and at the scoring batch (``train.eval_batch``), per
  query: p50 / p95 / p99 / mean over the timed calls after untimed warm-up
  calls, on real test contexts;
* the exact search's latency per query against the run's pool, at batch 1
  and at the scoring batch;
* where it was measured: device, torch threads, CPU (or GPU) name.

Timing stops after ``eval.latency_calls`` calls or ``eval.latency_seconds``
per measurement, whichever comes first (never fewer than 5 timed calls), so a
slow model on a big batch does not add minutes to a run; the number of timed
calls is recorded beside each percentile, and a p99 over few calls is only a
maximum.  ``lvmbench latency RUN`` measures the same again on the machine it
runs on, since the deploy hardware is rarely the machine that trained.
"""

from __future__ import annotations

import platform
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lvmbench.data.samples import Samples, gather_batch
from lvmbench.evaluate.index import Pool, search
from lvmbench.models.predict import predict
from lvmbench.runtime import cpu_name

MIN_CALLS = 5


def _percentiles(seconds: list[float], per: int) -> dict[str, Any]:
    """Per-query milliseconds (a call's time / the queries in it) of the timed calls."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3 / per
    return {"calls": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def _timed(call: Callable[[int], None], calls: int, warmup: int, budget_s: float,
           sync: Callable[[], None]) -> list[float]:
    for i in range(warmup):
        call(i)
    sync()
    out: list[float] = []
    start = time.perf_counter()
    for i in range(calls):
        t0 = time.perf_counter()
        call(warmup + i)
        sync()
        out.append(time.perf_counter() - t0)
        if len(out) >= MIN_CALLS and time.perf_counter() - start > budget_s:
            break
    return out


def _sync(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


@torch.no_grad()
def model_latency(model: nn.Module, unit: torch.Tensor, samples: Samples, context_len: int, batch: int,
                  calls: int, warmup: int, budget_s: float) -> dict[str, Any]:
    """``predict()`` per query at ``batch``, on the queries' real contexts taken in turn."""
    was_training = model.training
    model.eval()
    n = len(samples)
    sync = _sync(unit.device)

    def call(i: int) -> None:
        idx = (np.arange(batch) + i * batch) % n
        ctx, lengths, _ = gather_batch(unit, samples.target[idx], samples.start[idx], context_len)
        predict(model, ctx, lengths)

    try:
        seconds = _timed(call, calls, warmup, budget_s, sync)
    finally:
        model.train(was_training)
    return {"batch": batch, **_percentiles(seconds, batch)}


def search_latency(pool: Pool, pred: np.ndarray, batch: int, k: int, calls: int, warmup: int,
                   budget_s: float) -> dict[str, Any]:
    """The exact search (:func:`lvmbench.evaluate.index.search`, top ``k``) per query at ``batch``."""
    n = len(pred)

    def call(i: int) -> None:
        idx = (np.arange(batch) + i * batch) % n
        search(pool, pred[idx], k)

    return {"batch": batch, "k": k, **_percentiles(_timed(call, calls, warmup, budget_s, lambda: None), batch)}


def machine(device: torch.device) -> dict[str, Any]:
    """Where a latency was measured."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "torch_threads": torch.get_num_threads(), "cpu": cpu_name(), "gpu": gpu,
            "platform": platform.platform()}


def measure(model: nn.Module | None, unit: torch.Tensor, samples: Samples, pool: Pool, pred: np.ndarray,
            context_len: int, batches: tuple[int, ...], calls: int, warmup: int, budget_s: float,
            k: int = 10) -> dict[str, Any]:
    """results.json 'latency': the model (None for predictions made elsewhere) and the search, per batch size."""
    out: dict[str, Any] = {"machine": machine(unit.device), "warmup_calls": warmup, "max_calls": calls,
                           "seconds_per_measurement": budget_s,
                           "model": None, "search": {}}
    if model is not None:
        out["model"] = {f"batch_{b}": model_latency(model, unit, samples, context_len, b, calls, warmup, budget_s)
                        for b in batches}
    out["search"] = {f"batch_{b}": search_latency(pool, pred, b, k, calls, warmup, budget_s) for b in batches}
    return out
