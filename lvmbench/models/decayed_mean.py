"""The decayed-mean baseline: ŷ = x_last + a·m_h − g·μ, three coefficients chosen on the val split.

``m_h`` is the mean of the context with weights halving every ``h`` vectors
back (the last vector weighs 1, the one ``h`` back 1/2); ``μ`` is the mean
training vector.  Adding the recent past to the last vector points the
prediction along the document's direction; subtracting ``μ`` removes what all
vectors share (MiniLM vectors sit in a narrow cone), so the prediction is
compared on what is specific to it.

The coefficients are chosen as a model's checkpoint is: on val, never on
test.  Every (a, h, g) of a small grid is scored by the MRR of the val
queries (at most ``FIT_QUERIES``, a seeded subset beyond that) ranked against
the val pool, each query's excluded window left out as at evaluation; the
best wins (ties: the earliest grid point).  MRR, not Hit@5, because it uses
every rank rather than a 0/1 cut, which matters on a few hundred queries; it
is also what the contrastive recipe early-stops on.  The choice and its val
MRR are recorded in results.json.  L2-normalising a prediction does not
change its ranking, so the grid is searched on unnormalised scores.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from lvmbench.data.samples import context_index
from lvmbench.models.predict import last_vector

GRID_A = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
GRID_H = (1.0, 2.0, 3.0, 5.0, 8.0)
GRID_G = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
FIT_QUERIES = 4096
BLOCK = 256


@dataclass(frozen=True)
class Fit:
    a: float
    half_life: float
    g: float
    val_mrr: float
    queries: int
    pool: int


def decay_weights(lengths: torch.Tensor, width: int, half_life: float) -> torch.Tensor:
    """``[B, width]`` weights of a right-padded context: 0.5 ** (age / h), 0 on padding, each row summing to 1."""
    pos = torch.arange(width, device=lengths.device)[None, :]
    age = (lengths[:, None] - 1 - pos).to(torch.float32)
    w = torch.where(age >= 0, torch.pow(0.5, age / half_life), torch.zeros_like(age))
    return w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)


def decayed_mean(context: torch.Tensor, lengths: torch.Tensor, half_life: float) -> torch.Tensor:
    w = decay_weights(lengths.to(context.device), context.shape[1], half_life).to(context.dtype)
    return torch.einsum("bt,btd->bd", w, context)


class DecayedMean(nn.Module):
    """ŷ = x_last + a·m_h − g·μ with fixed (fitted) coefficients; no trainable parameters.

    The coefficients are buffers, so a checkpoint carries the ones it was used with.
    """

    predicts_delta = False

    def __init__(self, fit: Fit, mean: np.ndarray):
        super().__init__()
        self.fit = fit
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("coef", torch.tensor([fit.a, fit.half_life, fit.g], dtype=torch.float32))

    def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to(context.device)
        a, h, g = (float(c) for c in self.coef)
        m = decayed_mean(context, lengths, h)
        return last_vector(context, lengths) + a * m - g * self.mean.to(context.dtype)

    def describe(self) -> dict[str, float]:
        """What results.json records: the coefficients and how they were chosen."""
        a, h, g = (float(c) for c in self.coef)
        return {**asdict(self.fit), "a": a, "half_life": h, "g": g,
                "chosen_by": f"max val MRR over a {len(GRID_A)}x{len(GRID_H)}x{len(GRID_G)} grid of (a, h, g)"}


def _features(unit: np.ndarray, targets: np.ndarray, starts: np.ndarray, context_len: int) -> dict[str, np.ndarray]:
    """x_last and m_h for every grid h, per query, as the model computes them (blockwise: no N x T x D)."""
    out = {"last": np.empty((len(targets), unit.shape[1]), np.float32)}
    out.update({f"m{h}": np.empty_like(out["last"]) for h in GRID_H})
    unit_t = torch.from_numpy(unit)
    for s in range(0, len(targets), BLOCK):
        rows, lengths = context_index(targets[s : s + BLOCK], starts[s : s + BLOCK], context_len)
        ctx = unit_t[torch.from_numpy(np.where(rows >= 0, rows, 0))] * torch.from_numpy(rows >= 0)[..., None]
        lt = torch.from_numpy(lengths)
        out["last"][s : s + BLOCK] = last_vector(ctx, lt).numpy()
        for h in GRID_H:
            out[f"m{h}"][s : s + BLOCK] = decayed_mean(ctx, lt, h).numpy()
    return out


def _grid_mrr(feats: dict[str, np.ndarray], mean: np.ndarray, pool: np.ndarray, pos: np.ndarray,
              lo: np.ndarray) -> np.ndarray:
    """Summed reciprocal ranks ``[h, a, g]`` of every grid point (``pos``: target positions in ``pool``).

    A query's candidates ``[lo, pos)`` (its excluded window) are set to -inf
    in the last-vector scores, which keeps them at -inf in every combination.
    """
    total = np.zeros((len(GRID_H), len(GRID_A), len(GRID_G)))
    g = np.asarray(GRID_G, np.float32)[:, None, None]
    s_mean = (pool @ mean)[None, None, :]  # the mean's score: the same for every query
    for s in range(0, len(pos), BLOCK):
        e = min(s + BLOCK, len(pos))
        q = np.arange(e - s)
        s_last = feats["last"][s:e] @ pool.T
        for j in q:
            s_last[j, lo[s + j] : pos[s + j]] = -np.inf
        for i, h in enumerate(GRID_H):
            s_m = feats[f"m{h}"][s:e] @ pool.T
            for k, a in enumerate(GRID_A):
                scores = (s_last + np.float32(a) * s_m)[None] - g * s_mean  # [G, b, P]
                target = scores[:, q, pos[s:e]][..., None]
                total[i, k] += (1.0 / (1 + (scores > target).sum(axis=-1))).sum(axis=-1)
    return total


def fit_decayed_mean(unit: np.ndarray, targets: np.ndarray, starts: np.ndarray, pool_rows: np.ndarray,
                     mean: np.ndarray, context_len: int, exclusion: int, seed: int) -> Fit:
    """The grid point with the best MRR of these queries against this pool (see the module docstring)."""
    rng = np.random.default_rng([seed, 20261202])
    pick = np.sort(rng.choice(len(targets), min(FIT_QUERIES, len(targets)), replace=False))
    t, st = targets[pick], starts[pick]
    feats = _features(unit, t, st, context_len)
    pool = np.ascontiguousarray(unit[pool_rows])
    pos = np.searchsorted(pool_rows, t)
    lo = np.searchsorted(pool_rows, t - np.minimum(t - st, exclusion))
    total = _grid_mrr(feats, np.asarray(mean, np.float32), pool, pos, lo)
    i, j, k = np.unravel_index(int(np.argmax(total)), total.shape)
    return Fit(GRID_A[j], GRID_H[i], GRID_G[k], float(total[i, j, k] / len(t)), len(t), len(pool_rows))


_FITS: dict[str, Fit] = {}


def _key(ctx: object, *names: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in names:
        a = np.ascontiguousarray(getattr(ctx, name))
        h.update(f"{name}{a.dtype}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    h.update(f"{ctx.context_len}/{ctx.exclusion}/{ctx.seed}".encode())
    return h.hexdigest()


def fit_for(ctx: object) -> Fit:
    """The fit for a registry Context, computed once per dataset and split (the baseline and reference share it)."""
    if getattr(ctx, "val_targets", None) is None or getattr(ctx, "unit", None) is None:
        raise ValueError("the decayed-mean fit needs the val split (registry.Context with val_targets)")
    key = _key(ctx, "unit", "val_targets", "val_starts", "val_rows", "train_mean")
    if key not in _FITS:
        _FITS[key] = fit_decayed_mean(ctx.unit, ctx.val_targets, ctx.val_starts, ctx.val_rows,
                                      ctx.train_mean, ctx.context_len, ctx.exclusion, ctx.seed)
    return _FITS[key]


def build(dim: int, cfg: object, ctx: object) -> DecayedMean:
    """Registry factory: the baseline with coefficients chosen on this run's val split."""
    return DecayedMean(fit_for(ctx), ctx.train_mean)
