"""Helpers shared by the benchmark suites and ``python -m benchmarks.targets``.

Everything here is deterministic in its seed, so two runs time the same work.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np
import torch

from lvmbench.config import ModelConfig, TrainConfig
from lvmbench.data.store import ChainStore, write_store
from lvmbench.models import registry
from lvmbench.models.predict import predict
from lvmbench.train.loss import consultant_loss


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(n: int) -> dict[str, int]:
    """Fix torch intra-op and FAISS OpenMP threads to ``n``; return what is now in force."""
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    return thread_info()


def thread_info() -> dict[str, int]:
    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
    }


def environment(load: bool = True) -> dict[str, Any]:
    """Versions and thread counts: what a reader needs to compare two benchmark files.

    ``load`` adds the load averages (left out of pytest-benchmark's machine_info,
    which is compared between runs and should not differ for that reason)."""
    import numpy

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores_available": available_cores(),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "numpy": numpy.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **thread_info(),
        **({"loadavg": load_average()} if load else {}),
    }


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: other work on a shared machine shows up here."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def unit_rows(n: int, dim: int, seed: int = 0, n_centres: int | None = None, sample_seed: int | None = None,
              spread: float = 0.6, block: int = 65536) -> np.ndarray:
    """``[n, dim]`` float32 L2-normalised vectors around ``n_centres`` random centres (default n / 100).

    Embeddings cluster by topic; uniform random vectors do not, and make every
    ANN index look worse than it is on real data.  The centres depend on
    ``seed`` only, so queries drawn with another ``sample_seed`` (and the
    pool's ``n_centres``) come from the pool's distribution.  Generated
    blockwise: a 1M x 768 pool needs no float64 temporary of its own size.
    """
    out = np.empty((n, dim), dtype=np.float32)
    fill_unit_rows(out, seed, n_centres, sample_seed, spread, block)
    return out


def fill_unit_rows(out: np.ndarray, seed: int = 0, n_centres: int | None = None, sample_seed: int | None = None,
                   spread: float = 0.6, block: int = 65536) -> None:
    """Write :func:`unit_rows`' vectors into ``out`` (any ``[n, dim]`` float32 array, e.g. an
    ``np.lib.format.open_memmap``) block by block: the same values as ``unit_rows(n, dim, ...)``."""
    n, dim = out.shape
    n_centres = max(1, n // 100) if n_centres is None else n_centres
    centres = np.random.default_rng(seed).standard_normal((n_centres, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng([seed, 1 if sample_seed is None else 2 + sample_seed])
    for s in range(0, n, block):
        e = min(s + block, n)
        x = rng.standard_normal((e - s, dim), dtype=np.float32) * np.float32(spread / np.sqrt(dim))
        x += centres[rng.integers(0, n_centres, size=e - s)]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x


def random_walk_store(path: str | Path, n_chains: int, dim: int, min_len: int, max_len: int, seed: int = 0,
                      step: float = 0.5, dtype: Any = np.float16) -> ChainStore:
    """A chain store whose chains are long enough for full T=100 contexts (synth's are 8-48).

    Each chain is a random walk on the sphere: x_{t+1} = L2(x_t + step * noise).
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n_chains)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    vectors = np.empty((int(offsets[-1]), dim), dtype=np.float32)
    for c in range(n_chains):
        noise = rng.standard_normal((int(lengths[c]), dim), dtype=np.float32) * np.float32(step / np.sqrt(dim))
        noise[0] = rng.standard_normal(dim, dtype=np.float32)
        walk = np.cumsum(noise, axis=0)
        walk /= np.linalg.norm(walk, axis=1, keepdims=True)
        vectors[offsets[c] : offsets[c + 1]] = walk
    manifest = {
        "name": f"bench-walk-c{n_chains}-d{dim}-s{seed}",
        "source": "benchmarks._common.random_walk_store (random walks on the sphere)",
        "license": "CC0-1.0 (generated)",
        "encoder": "none (synthetic)",
        "normalisation": "l2",
        "chain_ids": [f"walk-{i:05d}" for i in range(n_chains)],
    }
    return write_store(path, vectors.astype(dtype), offsets, manifest, overwrite=True)


def random_batch(batch: int, context: int, dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(context [B, T, D], lengths [B] all T, target [B, D])``, L2-normalised rows."""
    g = torch.Generator().manual_seed(seed)
    ctx = torch.nn.functional.normalize(torch.randn(batch, context, dim, generator=g), dim=-1)
    target = torch.nn.functional.normalize(torch.randn(batch, dim, generator=g), dim=-1)
    return ctx, torch.full((batch,), context, dtype=torch.int64), target


def build_trainable(name: str, dim: int, seed: int = 0, cfg: ModelConfig | None = None) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = registry.build(name, dim, cfg or ModelConfig(name=name))
    model.train()
    return model


def make_train_step(
    model: torch.nn.Module, cfg: TrainConfig, ctx: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor,
    forward: Callable[..., torch.Tensor] | None = None, autocast: bool = False,
) -> Callable[[], float]:
    """One recipe micro-batch that is also a full optimiser step: forward (``predict``) +
    ``consultant_loss`` + backward + AdamW step.  ``forward`` may be a compiled model."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    fwd = forward if forward is not None else model

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        if autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                pred = predict(fwd, ctx, lengths)
            loss, _ = consultant_loss(pred.float(), target, cfg)
        else:
            loss, _ = consultant_loss(predict(fwd, ctx, lengths), target, cfg)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def rnn_forward_flops(rnn: torch.nn.RNNBase, x: Any) -> int:
    """Matmul FLOPs of one forward of a GRU/LSTM/RNN over ``x`` (padded tensor or PackedSequence)."""
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(x, PackedSequence):
        tokens = int(x.data.shape[0])
    else:
        tokens = int(x.shape[0] * x.shape[1]) if x.dim() == 3 else int(x.shape[0])
    gates = {"GRU": 3, "LSTM": 4}.get(rnn.mode, 1)
    dirs = 2 if rnn.bidirectional else 1
    h = rnn.hidden_size
    total = 0
    for layer in range(rnn.num_layers):
        inp = rnn.input_size if layer == 0 else h * dirs
        total += 2 * tokens * gates * h * (inp + h) * dirs
    return total


def train_step_flops(model: torch.nn.Module, cfg: TrainConfig, ctx: torch.Tensor, lengths: torch.Tensor,
                     target: torch.Tensor) -> int:
    """Matmul FLOPs of one forward + backward (an estimate; the optimiser is not counted).

    ``torch.utils.flop_counter`` counts every mm/addmm/bmm/attention.  A
    recurrent layer it can see decomposes into mm/addmm and is counted; one it
    cannot (a packed multi-layer LSTM runs as one fused op) is added
    analytically as 3 x its forward (backward = 2 x forward).
    """
    from torch.utils.flop_counter import FlopCounterMode

    seen: list[tuple[torch.nn.RNNBase, tuple]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp)))
             for m in model.modules() if isinstance(m, torch.nn.RNNBase)]
    try:
        with FlopCounterMode(display=False) as counter:
            loss, _ = consultant_loss(predict(model, ctx, lengths), target, cfg)
            loss.backward()
    finally:
        for h in hooks:
            h.remove()
    model.zero_grad(set_to_none=True)
    total = int(counter.get_total_flops())
    for rnn, inp in seen:
        analytic = rnn_forward_flops(rnn, inp[0])
        with FlopCounterMode(display=False) as alone, torch.no_grad():
            rnn(*inp)
        if alone.get_total_flops() < 0.5 * analytic:
            total += 3 * analytic
    return total


def percentile(data: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(data, dtype=np.float64), q)) if len(data) else float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median_time(fn: Callable[[], Any], rounds: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    return float(np.median([timed(fn)[0] for _ in range(rounds)]))


def rss_bytes() -> dict[str, int]:
    """Current and peak resident set size of this process (Linux ``/proc``), in bytes.

    ``rss`` = ``rss_anon`` (heap, arrays: what must fit in RAM) + ``rss_file``
    (pages of mapped files such as a memory-mapped bank: page cache, which the
    kernel can drop and re-read) + ``rss_shmem``.  ``peak_rss`` (VmHWM) counts
    both kinds."""
    out = {"rss": -1, "peak_rss": -1, "rss_anon": -1, "rss_file": -1}
    keys = {"VmRSS:": "rss", "VmHWM:": "peak_rss", "RssAnon:": "rss_anon", "RssFile:": "rss_file"}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key = keys.get(line.split(":", 1)[0] + ":")
            if key:
                out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


class RssSampler:
    """Peak anonymous and file-backed RSS over a ``with`` block, sampled every ``interval`` s.

    VmHWM (``peak_rss``) adds the pages of a memory-mapped bank to the heap;
    only the anonymous part must fit in RAM, so the two peaks are tracked
    apart by a background thread (FAISS, torch and numpy release the GIL in
    their kernels).  A peak shorter than ``interval`` can be missed."""

    def __init__(self, interval: float = 0.05) -> None:
        import threading

        self.interval = interval
        self.peak_anon = self.peak_file = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        r = rss_bytes()
        self.peak_anon = max(self.peak_anon, r["rss_anon"])
        self.peak_file = max(self.peak_file, r["rss_file"])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "RssSampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def info(self) -> dict[str, int]:
        return {"peak_rss_anon_sampled": self.peak_anon, "peak_rss_file_sampled": self.peak_file}


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def stats_of(benchmark: Any) -> Any:
    """The pytest-benchmark Stats of a finished ``pedantic`` call, or None when disabled."""
    meta = getattr(benchmark, "stats", None)
    return meta.stats if meta else None
