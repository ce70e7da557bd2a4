"""One recipe training step per registered trainable model.

forward (``predict``) + ``consultant_loss`` + backward + AdamW step at the
recipe's micro-batch of 32, with every context full (T = 100, the recipe's
steady state, and T = 20), at the recipe's default model sizes.  Grouped by
model; ``extra_info`` has parameters, context, dim, threads, a matmul-FLOP
estimate, sequences/s and the achieved GFLOP/s.

Default: D = 384 (the shipped dataset's dim).  ``--bench-full`` adds D = 768.
"""

from __future__ import annotations

import pytest

from benchmarks._common import (
    build_trainable, make_train_step, random_batch, stats_of, thread_info, train_step_flops,
)
from lvmbench.config import TrainConfig
from lvmbench.models import registry

BATCH = 32
ROUNDS = 3
WARMUP = 1

CASES = [
    pytest.param(name, context, dim, id=f"{name}-T{context}-D{dim}",
                 marks=[pytest.mark.bench_full] if dim != 384 else [])
    for dim in (384, 768)
    for name in registry.trained_models()
    for context in (100, 20)
]


@pytest.mark.parametrize(("model_name", "context", "dim"), CASES)
def test_train_step(benchmark, model_name: str, context: int, dim: int, bench_threads: int) -> None:
    cfg = TrainConfig()
    model = build_trainable(model_name, dim)
    ctx, lengths, target = random_batch(BATCH, context, dim)
    flops = train_step_flops(model, cfg, ctx, lengths, target)
    step = make_train_step(model, cfg, ctx, lengths, target)

    benchmark.group = f"train_step {model_name}"
    benchmark.extra_info.update({
        "model": model_name,
        "params": registry.n_params(model),
        "batch": BATCH,
        "context": context,
        "dim": dim,
        "threads": bench_threads,
        **thread_info(),
        "flops_per_step": flops,
        "flops_note": "matmul FLOPs of forward+backward from torch.utils.flop_counter (optimiser excluded)",
    })
    loss = benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=WARMUP)
    assert loss == loss  # finite, not NaN
    stats = stats_of(benchmark)
    if stats:
        benchmark.extra_info["sequences_per_s"] = BATCH / stats.median
        benchmark.extra_info["gflops_per_s"] = flops / stats.median / 1e9
