"""Baselines that need no training, scored through exactly the model path.

The celebrated 51 % "peak" of the original project was copy-the-last-vector;
no trivial predictor was ever scored through its Hit@K code.  These are
``nn.Module``s with the model interface so ``predict()`` and the scorer cannot
tell them apart from a trained model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from lvmbench.config import ModelConfig
from lvmbench.errors import UsageError
from lvmbench.models.predict import last_vector

if TYPE_CHECKING:
    from lvmbench.models.entry import Context


class CopyLast(nn.Module):
    """ŷ = the last context vector."""

    predicts_delta = False

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return last_vector(context, lengths)


class MeanContext(nn.Module):
    """ŷ = mean of the real (unpadded) context vectors."""

    predicts_delta = False

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return context.sum(dim=1) / lengths.to(context.device, context.dtype).clamp(min=1).unsqueeze(-1)


class GlobalMean(nn.Module):
    """ŷ = the mean training vector, whatever the context."""

    predicts_delta = False

    def __init__(self, mean: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.mean.to(context.device).expand(context.shape[0], -1)


class RandomVector(nn.Module):
    """ŷ = a random direction, seeded so two runs agree.

    The generator advances per call, so a fixed query order (the scorer's)
    gives the same predictions every run.
    """

    predicts_delta = False

    def __init__(self, dim: int, seed: int):
        super().__init__()
        self.dim = dim
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out = torch.randn(context.shape[0], self.dim, generator=self.generator)
        return out.to(context.device)


RIDGE_LAMBDA = 1.0
"""Ridge penalty on W, fixed in advance (never tuned on val or test).  With unit
vectors each diagonal entry of XᵀX is about (pairs / D), so 1.0 is a light
touch on any real training split; it mainly keeps the solve well-posed when
pairs < D."""


def _pair_rows(pairs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    prev, nxt = (np.asarray(a, dtype=np.int64) for a in pairs)
    if prev.shape != nxt.shape or prev.ndim != 1 or len(prev) == 0:
        raise ValueError("training pairs must be two equal-length, non-empty 1-d row arrays")
    return prev, nxt


def fit_ridge(
    unit: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], lam: float = RIDGE_LAMBDA, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge from x_{t-1} to x_t: ``(W [D, D], b [D])``, ŷ = x W + b.

    Minimises Σ‖x_i W + b − y_i‖² + λ‖W‖² (the intercept is not penalised),
    solved on centred data in float64; the rows are gathered chunk by chunk, so
    memory stays at D² plus one chunk however many pairs there are.
    """
    prev, nxt = _pair_rows(pairs)
    d = unit.shape[1]
    n = len(prev)
    sx, sy = np.zeros(d), np.zeros(d)
    xx, xy = np.zeros((d, d)), np.zeros((d, d))
    for s in range(0, n, chunk):
        x = unit[prev[s : s + chunk]].astype(np.float64)
        y = unit[nxt[s : s + chunk]].astype(np.float64)
        sx += x.sum(0)
        sy += y.sum(0)
        xx += x.T @ x
        xy += x.T @ y
    mx, my = sx / n, sy / n
    cxx = xx - n * np.outer(mx, mx)  # centred XᵀX and XᵀY
    cxy = xy - n * np.outer(mx, my)
    w = np.linalg.solve(cxx + lam * np.eye(d), cxy)
    return w.astype(np.float32), (my - mx @ w).astype(np.float32)


class Ridge(nn.Module):
    """ŷ = x_last W + b, W and b fitted in closed form on the training pairs."""

    predicts_delta = False

    def __init__(self, unit: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], lam: float = RIDGE_LAMBDA):
        super().__init__()
        w, b = fit_ridge(unit, pairs, lam)
        self.lam = lam
        self.register_buffer("weight", torch.from_numpy(w))
        self.register_buffer("bias", torch.from_numpy(b))

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = last_vector(context, lengths)
        return x.to(self.weight.dtype) @ self.weight + self.bias


class KNNSuccessor(nn.Module):
    """ŷ = the successor of the training vector nearest to the last context vector.

    The index holds every training vector that has a successor in its own chain
    (the ``prev`` side of the training pairs), searched exactly by inner
    product (FAISS ``IndexFlatIP`` on unit vectors, i.e. cosine).  Equal scores
    go to the lower index position, i.e. the earlier training pair.
    """

    predicts_delta = False

    def __init__(self, unit: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]):
        super().__init__()
        import faiss

        prev, nxt = _pair_rows(pairs)
        self.unit = unit  # a reference, not a copy: successors are gathered per query
        self.successor = nxt
        self.index = faiss.IndexFlatIP(unit.shape[1])
        self.index.add(np.ascontiguousarray(unit[prev], dtype=np.float32))

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        q = last_vector(context, lengths).detach().float().cpu().numpy()
        _, nn_idx = self.index.search(np.ascontiguousarray(q), 1)
        out = self.unit[self.successor[nn_idx[:, 0]]]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(device=context.device, dtype=context.dtype)


# Factories for the registry: ``factory(dim, cfg, ctx)``, ctx = the training split's data.


def _context_arrays(name: str, ctx: "Context") -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    if ctx.unit is None or ctx.train_pairs is None or len(ctx.train_pairs[0]) == 0:
        raise UsageError(
            f"{name} needs the training split's (x_{{t-1}}, x_t) pairs (registry.Context.unit/train_pairs)"
        )
    return ctx.unit, ctx.train_pairs


def copy_last(dim: int, cfg: ModelConfig, ctx: "Context") -> nn.Module:
    return CopyLast()


def mean_context(dim: int, cfg: ModelConfig, ctx: "Context") -> nn.Module:
    return MeanContext()


def global_mean(dim: int, cfg: ModelConfig, ctx: "Context") -> nn.Module:
    if ctx.train_mean is None:
        raise UsageError("global_mean needs the training split's mean vector")
    return GlobalMean(ctx.train_mean)


def random_vector(dim: int, cfg: ModelConfig, ctx: "Context") -> nn.Module:
    return RandomVector(dim, ctx.seed)


def ridge(dim: int, cfg: ModelConfig, ctx: "Context") -> nn.Module:
    return Ridge(*_context_arrays("ridge", ctx))


def knn_successor(dim: int, cfg: ModelConfig, ctx: "Context") -> nn.Module:
    return KNNSuccessor(*_context_arrays("knn_successor", ctx))
