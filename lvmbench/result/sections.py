"""The descriptive sections of results.json: what was scored, on what, how, and where.

Each class is one JSON object of the file; its fields are the keys lvmbench
writes today (see :mod:`lvmbench.result.record` for how unknown keys and
absent ones are kept).  The metric-keyed sections are in
:mod:`lvmbench.result.scores`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lvmbench.result.record import Record, spec
from lvmbench.result.scores import Scores

_field = spec  # ModelInfo has a field named ``spec``


@dataclass(kw_only=True)
class Tool(Record):
    name: str | None = spec()
    version: str | None = spec()


@dataclass(kw_only=True)
class ModelInfo(Record):
    """``model``: what was scored.  ``kind``: model | baseline | predictions (made elsewhere)."""

    name: str | None = _field()
    kind: str | None = _field()
    spec: dict[str, Any] | None = _field()
    params: int | None = _field()
    predictions: str | None = _field()
    predictions_sha256: str | None = _field()
    task: str | None = _field()
    task_sha256: str | None = _field()
    checkpoint: str | None = _field()
    checkpoint_sha256: str | None = _field()
    best_epoch: int | None = _field()
    stopped_epoch: int | None = _field()
    config: dict[str, Any] | None = _field()
    fit: dict[str, Any] | None = _field()


@dataclass(kw_only=True)
class DataSettings(Record):
    """The recipe's ``data`` table."""

    min_chain_len: int | None = spec()
    coherence_min: float | None = spec()
    pair_coherence_min: float | None = spec()
    context_len: int | None = spec()
    min_context: int | None = spec()
    train_frac: float | None = spec()
    val_frac: float | None = spec()
    test_frac: float | None = spec()
    folds: int | None = spec()
    fold: int | None = spec()


@dataclass(kw_only=True)
class EvalSettings(Record):
    """The recipe's ``eval`` table."""

    ks: list[int] | None = spec()
    pool: str | None = spec()
    exclude_context: bool | None = spec()
    exclude_len: int | None = spec()
    search_depth: int | None = spec()
    tie_tol: float | None = spec()
    bootstrap: int | None = spec()
    latency_calls: int | None = spec()
    latency_warmup: int | None = spec()
    latency_seconds: float | None = spec()
    baselines: list[str] | None = spec()


@dataclass(kw_only=True)
class RecipeRecord(Record):
    """``recipe``: the resolved recipe the run used (``parsed()`` gives the :class:`lvmbench.config.Recipe`)."""

    name: str | None = spec()
    seed: int | None = spec()
    data: DataSettings | None = spec(of=DataSettings)
    model: dict[str, Any] | None = spec()
    train: dict[str, Any] | None = spec()
    eval: EvalSettings | None = spec(of=EvalSettings)
    gate: dict[str, Any] | None = spec()

    def parsed(self, where: Any) -> Any:
        """The recipe as :func:`lvmbench.config.recipe_from_dict` reads it (ConfigError naming ``where``)."""
        from lvmbench.config import recipe_from_dict

        return recipe_from_dict(self.to_json(), where)


@dataclass(kw_only=True)
class DatasetInfo(Record):
    name: str | None = spec()
    path: str | None = spec()
    sha256: str | None = spec()
    n_chains: int | None = spec()
    n_vectors: int | None = spec()
    dim: int | None = spec()
    encoder: str | None = spec()
    license: str | None = spec()
    source: Any = spec()


@dataclass(kw_only=True)
class SplitInfo(Record):
    """``split``: its seed, sizes per split (chains, vectors), samples per split and sha256."""

    seed: int | None = spec()
    sizes: dict[str, Any] | None = spec()
    samples: dict[str, Any] | None = spec()
    sha256: str | None = spec()


@dataclass(kw_only=True)
class DataGates(Record):
    """``gates``: the data quality gates' report."""

    chains_in: int | None = spec()
    vectors_in: int | None = spec()
    removed_length: int | None = spec()
    removed_coherence: int | None = spec()
    chains_kept: int | None = spec()
    vectors_kept: int | None = spec()
    min_chain_len: int | None = spec()
    coherence_min: float | None = spec()
    coherence_would_remove: dict[str, Any] | None = spec()
    coherence_mean: float | None = spec()
    duplicate_vectors: int | None = spec()
    distinct_duplicated_vectors: int | None = spec()
    pair_coherence_min: float | None = spec()
    train_samples_removed_pair_coherence: int | None = spec()


@dataclass(kw_only=True)
class Leakage(Record):
    checked_vectors: int | None = spec()
    leaked_vectors: int | None = spec()
    leaked_chains: dict[str, Any] | None = spec()
    vectors: list[Any] | None = spec()
    ok: bool | None = spec()


@dataclass(kw_only=True)
class Bank(Record):
    """``pool.bank``: an external bank of candidates added to the pool (``eval --bank``)."""

    path: str | None = spec()
    sha256: str | None = spec()
    size: int | None = spec()
    dim: int | None = spec()
    memory_mapped: bool | None = spec()


@dataclass(kw_only=True)
class PoolInfo(Record):
    """``pool``: the candidates every predictor was ranked against."""

    split: str | None = spec()
    size: int | None = spec()
    exclude_context: bool | None = spec()
    exclude_len: int | None = spec()
    sha256: str | None = spec()
    target_in_pool: bool | None = spec()
    search_depth: int | None = spec()
    shards: int | None = spec()
    shard_size: int | None = spec()
    bank: Bank | None = spec(of=Bank)
    ties: str | None = spec()
    duplicates: str | None = spec()


@dataclass(kw_only=True)
class QueryRecord(Record):
    """``queries``: the scored split, the number of queries and the sha256 of their target rows."""

    split: str | None = spec()
    n: int | None = spec()
    sha256: str | None = spec()


@dataclass(kw_only=True)
class Consistency(Record):
    """``consistency``: the training loop's torch ranks against FAISS retrieval (``val``: the same on val)."""

    n_queries: int | None = spec()
    n_agree: int | None = spec()
    n_near_ties: int | None = spec()
    n_mismatch: int | None = spec()
    mismatched_queries: list[int] | None = spec()
    ks: list[int] | None = spec()
    tie_tol: float | None = spec()
    ok: bool | None = spec()
    rank_equal: int | None = spec()
    scope: str | None = spec()
    probe_missed: int | None = spec()
    val: Consistency | None = spec(of="self")
    recorded_val_hit5: float | None = spec(key="recorded_val_hit@5")
    faiss_val_hit5: float | None = spec(key="faiss_val_hit@5")


@dataclass(kw_only=True)
class OffsetCos(Record):
    """Mean cos(prediction, the vector ``k`` steps from the target in its chain) over ``n`` queries."""

    k: int | None = spec()
    mean: float | None = spec()
    n: int | None = spec()


@dataclass(kw_only=True)
class DirectionRow(Record):
    """One predictor's direction diagnostics (``kind``: model | baseline | bound | predictions; the oracle and
    copy_last rows that bracket the scale are the bounds, "reference" in a schema-1 file)."""

    kind: str | None = spec()
    cos_next: float | None = spec()
    cos_last: float | None = spec()
    margin: float | None = spec()
    offset_cos: list[OffsetCos] | None = spec(of=OffsetCos, many="list")

    def by_offset(self) -> dict[int, float | None]:
        """Offset k -> mean cos(pred, x_{t+k})."""
        return {o.k: o.mean for o in self.offset_cos or [] if o.k is not None}

    def counts(self) -> dict[int, int | None]:
        """Offset k -> how many queries have a vector k steps from their target."""
        return {o.k: o.n for o in self.offset_cos or [] if o.k is not None}


@dataclass(kw_only=True)
class Diagnostics(Record):
    """``diagnostics``: the direction table (``rows`` by predictor name, ``offsets`` k = -3..+3)."""

    definition: str | None = spec()
    offsets: list[int] | None = spec()
    rows: dict[str, DirectionRow] | None = spec(of=DirectionRow, many="map")


@dataclass(kw_only=True)
class Copies(Record):
    """``copies``: targets with a bit-identical copy among their candidates, and the metrics counting it against."""

    queries: int | None = spec()
    rule: str | None = spec()
    metrics_copies_against: Scores | None = spec(of=Scores)


@dataclass(kw_only=True)
class Machine(Record):
    device: str | None = spec()
    torch_threads: int | None = spec()
    cpu: str | None = spec()
    gpu: str | None = spec()
    platform: str | None = spec()

    def where(self) -> str:
        """'cpu, 2 threads, AMD EPYC' (the GPU's name in place of the CPU's when there is one)."""
        return f"{self.device or '?'}, {self.torch_threads or '?'} threads, {self.gpu or self.cpu or '?'}"


@dataclass(kw_only=True)
class LatencyStat(Record):
    """Per-query latency of one batch size, in milliseconds."""

    batch: int | None = spec()
    k: int | None = spec()
    calls: int | None = spec()
    p50_ms: float | None = spec()
    p95_ms: float | None = spec()
    p99_ms: float | None = spec()
    mean_ms: float | None = spec()


@dataclass(kw_only=True)
class Latency(Record):
    """``latency``: the model's and the exact search's latency per batch size (``batch_<B>``)."""

    machine: Machine | None = spec(of=Machine)
    warmup_calls: int | None = spec()
    max_calls: int | None = spec()
    seconds_per_measurement: float | None = spec()
    model: dict[str, LatencyStat] | None = spec(of=LatencyStat, many="map")
    search: dict[str, LatencyStat] | None = spec(of=LatencyStat, many="map")

    def model_at(self, batch: int) -> LatencyStat | None:
        return (self.model or {}).get(f"batch_{batch}")

    def search_at(self, batch: int) -> LatencyStat | None:
        return (self.search or {}).get(f"batch_{batch}")


@dataclass(kw_only=True)
class Timings(Record):
    score_s: float | None = spec()
    data_s: float | None = spec()
    train_s: float | None = spec()
    total_s: float | None = spec()
    resumed_after_epochs: list[int] | None = spec()


@dataclass(kw_only=True)
class Git(Record):
    commit: str | None = spec()
    dirty: bool | None = spec()


@dataclass(kw_only=True)
class Env(Record):
    """``env``: the software and machine the run was scored with."""

    lvmbench: str | None = spec()
    python: str | None = spec()
    torch: str | None = spec()
    faiss: str | None = spec()
    numpy: str | None = spec()
    torch_threads: int | None = spec()
    faiss_threads: int | None = spec()
    device: str | None = spec()
    cuda: str | None = spec()
    cpu: str | None = spec()
    platform: str | None = spec()
    git: Git | None = spec(of=Git)


@dataclass(kw_only=True)
class GateCheck(Record):
    """How the gate command re-checked a threshold: recomputed from ``predictions`` (``verified``) or not."""

    verified: bool | None = spec()
    predictions: str | None = spec()
    n_queries: int | None = spec()


@dataclass(kw_only=True)
class GateRecord(Record):
    """``gate``: the recipe's threshold held against the run (``check``: the gate command's re-check, if any)."""

    metric: str | None = spec()
    threshold: float | None = spec()
    kind: str | None = spec()
    on: str | None = spec()
    value: float | None = spec()
    passed: bool | None = spec()
    margin: float | None = spec()
    check: GateCheck | None = spec(of=GateCheck)
