"""A complete outside model for lvmbench: a one-layer GRU that predicts a step from the last vector."""

import torch
from torch import nn


class TinyGRU(nn.Module):
    """One GRU layer over the context; a linear map of its last state is the step from the last vector."""

    predicts_delta = True  # lvmbench scores L2(last context vector + output)

    def __init__(self, dim: int, hidden: int = 256):
        super().__init__()
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, dim)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(context)  # [B, T, hidden]; padding sits after each context's last vector
        last = states[torch.arange(context.shape[0]), lengths.to(states.device) - 1]
        return self.out(last)
