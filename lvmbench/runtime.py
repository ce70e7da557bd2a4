"""Process-wide settings every layer may need: device, threads, seeds, RNG state.

These live below data, models, training and evaluation so that none of them
has to import another to pick a device or restore a random stream (the
trainer and the distributed helpers used to import each other for this).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from lvmbench.config import Recipe
from lvmbench.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an explicit ``cuda`` without CUDA is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine (use --device auto or cpu)")
    return torch.device(name)


def configure_threads(recipe: Recipe) -> None:
    """Pin torch and FAISS threads (``train.threads``) and opt into deterministic kernels."""
    import faiss

    if recipe.train.threads > 0:
        torch.set_num_threads(recipe.train.threads)
        faiss.omp_set_num_threads(recipe.train.threads)
    if recipe.train.deterministic:
        torch.use_deterministic_algorithms(True)


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


def cpu_name() -> str:
    """The CPU's model name, as results and latency records name the machine."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 autocast runs on native instructions here (AVX512-BF16/AMX on CPU, Ampere+ on CUDA)."""
    try:
        if device.type == "cuda":
            return bool(torch.cuda.is_bf16_supported())
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
