"""Linear warmup over the first epoch's optimiser steps, then cosine decay to a floor."""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, warmup_steps: int, total_steps: int, final_ratio: float) -> float:
    """Multiplier of the base lr *for* optimiser step ``step`` (0-based).

    Rises linearly to 1 over ``warmup_steps`` steps, then follows a half cosine
    from 1 down to ``final_ratio`` at ``total_steps``, and stays there.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, final_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup_steps, total_steps, final_ratio)
    )
