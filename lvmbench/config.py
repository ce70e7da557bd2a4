"""The consultant recipe as plain dataclasses.

Every number of the recipe lives here, so a reviewer can read the whole
protocol in one place and a user can change any of it with a TOML file or
``--set section.key=value`` without touching code.  Unknown keys and values of
the wrong type are errors: a silently ignored typo would make two runs look
comparable when they are not.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvmbench.errors import ConfigError


@dataclass
class DataConfig:
    """Quality gates, split and sample construction."""

    min_chain_len: int = 7
    """Chains shorter than this are dropped (the recipe's length gate)."""
    coherence_min: float = 0.0
    """Drop chains whose mean adjacent cosine is below this.  0.0 only removes
    chains that are anti-coherent on average, i.e. it is effectively off."""
    pair_coherence_min: float = 0.0
    """Drop *training* samples whose last-context/target cosine is below this.
    Never applied to evaluation queries: filtering queries by their answer
    would bias the score."""
    context_len: int = 100
    """T: at most this many previous vectors of the same chain form a context."""
    min_context: int = 1
    """A sample needs at least this many context vectors."""
    train_frac: float = 0.8
    val_frac: float = 0.1
    test_frac: float = 0.1
    folds: int = 0
    """Document-level k-fold cross-validation: with folds = K (>= 3) the *_frac are not used; fold ``fold``
    tests one K-th of the documents, validates on the next K-th and trains on the rest."""
    fold: int = 0


@dataclass
class ModelConfig:
    """Architecture knobs; each family reads the ones it uses."""

    name: str = "memory_gru"
    """A built-in family, an installed entry point ("lvmbench.models") or an import path ``pkg.module:NAME``."""
    hidden: int = 512
    layers: int = 4
    memory_slots: int = 512
    head_hidden: int = 2048
    dropout: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for an outside model's constructor (``[model.options]``, ``--set model.options.K=V``);
    the model validates them.  Built-in families take none: they read the fields above."""


@dataclass
class TrainConfig:
    """The optimisation half of the consultant recipe."""

    lr: float = 1e-4
    weight_decay: float = 1e-4
    micro_batch: int = 32
    accum_steps: int = 8
    grad_clip: float = 1.0
    max_epochs: int = 50
    patience: int = 3
    min_delta: float = 0.0
    warmup_epochs: float = 1.0
    final_lr_ratio: float = 0.1
    mse_weight: float = 1.0
    cos_weight: float = 0.5
    infonce_weight: float = 0.05
    tau: float = 0.07
    eval_batch: int = 256
    seed: int = -1
    """The seed of the model's initialisation and the data order; -1 = the recipe's ``seed`` (which also fixes
    the split).  Set it to repeat a training on the same split with other random draws."""
    loss: str = "consultant"
    """'consultant' (MSE + cos + in-batch InfoNCE, the weights above) or 'contrastive' (InfoNCE against the
    whole training split, the query's excluded context masked; see lvmbench/train/loss.py)."""
    max_negatives: int = 65536
    """contrastive: above this many training vectors, each micro-batch uses a seeded subset of this size."""
    stop_metric: str = "hit@5"
    """The val metric early stopping and the best checkpoint follow: 'hit@5' (or another hit@K of eval.ks)
    or 'mrr'."""
    device: str = "auto"
    logger: str = "none"
    """'none' or 'tensorboard' (TensorBoard event files in the run directory's tensorboard/, needs the
    tensorboard extra).  metrics.jsonl, one line per epoch and per validation, is written either way."""
    threads: int = 0
    """torch intra-op threads; 0 keeps torch's default."""
    deterministic: bool = False
    """Opt-in torch.use_deterministic_algorithms(True)."""
    bucket_by_length: bool = True
    """Micro-batches of similar context length (shuffle, sort by length, cut, shuffle the batches): a batch is
    padded only to lengths its samples nearly share.  Every sample is still seen once per epoch, in a seeded
    order (lvmbench/train/distributed.py, ShardedOrder).  On by default since 2026-12-06: memory_gru's epoch
    went from 27.7 s to 13.5 s on python-docs, with no test Hit@5 change beyond noise in the paired tests of
    docs/results.md ("Length-grouped batches and bf16 by default").  False reproduces earlier runs."""
    bf16_autocast: bool = True
    """The training forward/backward runs under torch.autocast(bfloat16); the loss is taken in float32, and
    validation and scoring stay float32.  On by default since 2026-12-06 (1.6-1.8x faster steps on a
    bf16-capable CPU; test Hit@5 identical to float32 in every paired comparison of docs/results.md).  On
    hardware without native bf16 it is slower, and training says so; False reproduces earlier runs."""


@dataclass
class EvalConfig:
    """The scoring contract (docs/contract.md, 'Scoring')."""

    ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    pool: str = "split"
    """'split': every vector of the scored split's chains; 'full': every vector."""
    exclude_context: bool = True
    exclude_len: int = 0
    """With exclude_context: leave out the exclude_len vectors before each target
    instead of only its context (0 = data.context_len; otherwise >= it).
    ``lvmbench sweep`` sets it to the longest context of the sweep, so every
    context length ranks each target among the same candidates."""
    search_depth: int = 0
    """How many results per query the FAISS search returns for the retrieval check (plus room for the
    excluded window); 0 = max(eval.ks).  Ranks are exact counts over the whole pool whatever it is."""
    tie_tol: float = 1e-5
    bootstrap: int = 1000
    latency_calls: int = 200
    """Timed calls per latency measurement (model and search, batch 1 and the scoring batch); 0 = none."""
    latency_warmup: int = 10
    """Untimed calls before each latency measurement."""
    latency_seconds: float = 3.0
    """Each latency measurement stops after this long (at least 5 timed calls), so a slow model on a big
    batch costs seconds, not minutes; the number of timed calls is recorded."""
    baselines: list[str] = field(
        default_factory=lambda: ["copy_last", "mean_context", "global_mean", "random", "ridge", "knn_successor",
                                 "decayed_mean"]
    )


@dataclass
class GateConfig:
    """The deploy gate this recipe names (a gate policy: lvmbench/report/policy.py); ``run`` prints its verdict."""

    metric: str = "hit@5"
    min: float = 0.55
    on: str = "value"
    """'value' gates on the point estimate, 'ci_low' on the Wilson lower bound."""
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    """More criteria: ``[[gate.thresholds]]`` tables of metric, min or max, on."""
    benchmark: str = ""
    """A shipped benchmark name or a BENCH.json path the run must be measured on ('' = none)."""
    against: str = ""
    """A deployed run directory the result must not be worse than ('' = none)."""
    against_metric: str = "hit@5"
    margin: float = 0.01
    """Non-inferiority margin of ``against``: the paired interval's lower bound must be >= -margin."""
    max_p95_ms: float = 0.0
    """Latency budget: the batch-1 model p95 per query, in ms (0 = none)."""


@dataclass
class Recipe:
    name: str = "consultant"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    gate: GateConfig = field(default_factory=GateConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce_list(value: Any, inner: Any, where: str) -> list[Any]:
    """A TOML array, or a ``--set`` string like ``[1, 5, 10]`` / ``1,5,10``."""
    if isinstance(value, str):
        value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    return [_coerce(v.strip() if isinstance(v, str) else v, inner, where) for v in value]


def _coerce_bool(value: Any, where: str) -> bool:
    """A TOML boolean, or one of the usual spellings of true/false from ``--set``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.lower() in {"false", "0", "no", "off"}:
        return False
    raise ConfigError(f"{where}: expected true/false, got {value!r}")


def _coerce_int(value: Any, where: str) -> int:
    """A base-10 integer; booleans are refused although Python counts them as ints."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 10)
    except ValueError:
        raise ConfigError(f"{where}: expected an integer, got {value!r}") from None


def _coerce_float(value: Any, where: str) -> float:
    """A number; booleans are refused so ``lr = true`` is not read as 1.0."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None


def _coerce_str(value: Any, where: str) -> str:
    """A string, taken as is (no conversion from other TOML types)."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


_SCALAR_COERCERS: dict[type, Callable[[Any, str], Any]] = {
    bool: _coerce_bool,
    int: _coerce_int,
    float: _coerce_float,
    str: _coerce_str,
}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert ``value`` (from TOML or a ``--set`` string) to the field's type."""
    if typing.get_origin(typ) is dict:  # a free-form table (a gate threshold); its reader validates it
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if typing.get_origin(typ) is list:
        (inner,) = typing.get_args(typ)
        return _coerce_list(value, inner, where)
    coerce = _SCALAR_COERCERS.get(typ)
    if coerce is None:
        raise ConfigError(f"{where}: unsupported field type {typ!r}")
    return coerce(value, where)


def training_seed(recipe: Recipe) -> int:
    """``train.seed`` when set, else ``seed``: initialisation and data order (the split always uses ``seed``)."""
    return recipe.seed if recipe.train.seed < 0 else recipe.train.seed


def exclusion_len(recipe: Recipe) -> int:
    """How many vectors before each target leave the pool with ``eval.exclude_context``.

    The query's own context (``data.context_len``), or the longer window
    ``eval.exclude_len`` when set: ``lvmbench sweep`` sets it to its longest
    context so every point of the sweep ranks each target among the same
    candidates.
    """
    return max(recipe.data.context_len, recipe.eval.exclude_len)


def _cli_literal(value: str) -> Any:
    """A ``--set`` value for a free-form table: a TOML literal (256, 0.1, true, [1, 2]) or else the string."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _set_option(table: dict[str, Any], keys: list[str], value: Any, dotted: str, from_cli: bool) -> None:
    """Set ``keys`` (nested) in a free-form table such as ``model.options``; its owner validates it."""
    for key in keys[:-1]:
        table = table.setdefault(key, {})
        if not isinstance(table, dict):
            raise ConfigError(f"'{dotted}': '{key}' is a value, not a table")
    table[keys[-1]] = _cli_literal(value) if from_cli and isinstance(value, str) else value


def _set_path(recipe: Recipe, dotted: str, value: Any, from_cli: bool = False) -> None:
    parts = dotted.split(".")
    obj: Any = recipe
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(type(obj))
        if part not in hints:
            known = ", ".join(sorted(hints))
            where = ".".join(parts[:i]) or "recipe"
            raise ConfigError(f"unknown setting '{dotted}': {where} has no '{part}' (known: {known})")
        if typing.get_origin(hints[part]) is dict:
            if i == len(parts) - 1:
                raise ConfigError(f"'{dotted}' is a table; set one of its keys ({dotted}.KEY=VALUE)")
            _set_option(getattr(obj, part), parts[i + 1:], value, dotted, from_cli)
            return
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(hints[part]):
                raise ConfigError(f"'{dotted}' is a section; set one of its keys instead")
            setattr(obj, part, _coerce(value, hints[part], dotted))
        else:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(f"unknown setting '{dotted}': '{part}' is not a section")


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, path + "."))
        else:
            out.append((path, value))
    return out


def _mark_explicit(recipe: Recipe, key: str) -> None:
    """Remember that the user set ``key`` (TOML or --set): a dataset that fixes it must not override it silently."""
    recipe.__dict__.setdefault("_explicit", set()).add(key)


def explicit_keys(recipe: Recipe) -> set[str]:
    """The dotted keys the user set in this process (empty for a recipe read back from a run)."""
    return set(recipe.__dict__.get("_explicit", set()))


def apply_overrides(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Apply ``section.key=value`` strings (the CLI's ``--set``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        key, value = item.split("=", 1)
        _set_path(recipe, key.strip(), value.strip(), from_cli=True)
        _mark_explicit(recipe, key.strip())
    check_recipe(recipe)
    return recipe


RECIPES: dict[str, dict[str, Any]] = {
    "consultant": {},
    "contrastive": {
        "name": "contrastive",
        "train": {"loss": "contrastive", "tau": 0.05, "stop_metric": "mrr", "max_epochs": 30},
    },
}
"""Named recipes (``--recipe NAME``): the consultant recipe is the default; each other one is a set of
overrides of it, so every field not named here is the consultant value."""


def named_recipe(name: str) -> Recipe:
    recipe = Recipe()
    for key, value in _flatten(RECIPES[name]):
        _set_path(recipe, key, value)
    return recipe


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    """The default recipe, or a named one, then a TOML file (data only, never executed), then ``--set``."""
    recipe = Recipe()
    if path is not None and str(path) in RECIPES and not Path(path).is_file():
        recipe, path = named_recipe(str(path)), None
    if path is not None:
        p = Path(path)
        try:
            table = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: recipe file not found (named recipes: {', '.join(RECIPES)})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from None
        try:
            for key, value in _flatten(table):
                _set_path(recipe, key, value)
                _mark_explicit(recipe, key)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None
    return apply_overrides(recipe, overrides or [])


def recipe_from_dict(table: Any, where: str | Path) -> Recipe:
    """A recipe stored as data (recipe.json, a checkpoint's 'recipe'), checked like a TOML recipe."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: the stored recipe is not a table")
    recipe = Recipe()
    try:
        for key, value in _flatten(table):
            _set_path(recipe, key, value)
        check_recipe(recipe)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return recipe


def _check_data(d: DataConfig) -> None:
    fracs = (d.train_frac, d.val_frac, d.test_frac)
    if any(f <= 0 for f in fracs) or abs(sum(fracs) - 1.0) > 1e-6:
        raise ConfigError(f"data.*_frac must be positive and sum to 1, got {fracs}")
    if d.context_len < 1 or d.min_context < 1 or d.min_chain_len < 2:
        raise ConfigError("data.context_len and data.min_context must be >= 1, data.min_chain_len >= 2")
    if d.folds and (d.folds < 3 or not 0 <= d.fold < d.folds):
        raise ConfigError(f"data.folds must be 0 (no cross-validation) or >= 3 with 0 <= data.fold < data.folds, "
                          f"got folds={d.folds}, fold={d.fold}")


def _check_train(t: TrainConfig, ks: list[int]) -> None:
    if t.micro_batch < 1 or t.accum_steps < 1 or t.max_epochs < 1 or t.patience < 1:
        raise ConfigError("train.micro_batch, accum_steps, max_epochs and patience must be >= 1")
    if t.lr <= 0 or t.tau <= 0:
        raise ConfigError("train.lr and train.tau must be positive")
    if t.device not in {"auto", "cpu", "cuda"} and not t.device.startswith("cuda:"):
        raise ConfigError(f"train.device must be auto, cpu or cuda, got {t.device!r}")
    if t.logger not in {"none", "tensorboard"}:
        raise ConfigError(f"train.logger must be 'none' or 'tensorboard', got {t.logger!r}")
    if t.loss not in {"consultant", "contrastive"}:
        raise ConfigError(f"train.loss must be 'consultant' or 'contrastive', got {t.loss!r}")
    if t.stop_metric != "mrr" and t.stop_metric not in {f"hit@{k}" for k in ks}:
        raise ConfigError(f"train.stop_metric must be 'mrr' or hit@K for a K of eval.ks, got {t.stop_metric!r}")


def _check_eval(e: EvalConfig, context_len: int) -> None:
    if not e.ks or any(k <= 0 for k in e.ks):
        raise ConfigError(f"eval.ks must be positive integers, got {e.ks}")
    if e.latency_calls < 0 or e.latency_warmup < 0 or e.latency_seconds <= 0:
        raise ConfigError("eval.latency_calls and eval.latency_warmup must be >= 0, eval.latency_seconds > 0")
    if 5 not in e.ks:
        raise ConfigError("eval.ks must include 5: the recipe early-stops and gates on Hit@5")
    if e.exclude_len < 0 or (e.exclude_len and e.exclude_len < context_len):
        raise ConfigError(
            f"eval.exclude_len must be 0 (= data.context_len) or >= data.context_len ({context_len}), "
            f"got {e.exclude_len}"
        )
    if e.pool not in {"split", "full"}:
        raise ConfigError(f"eval.pool must be 'split' or 'full', got {e.pool!r}")


def check_recipe(recipe: Recipe) -> None:
    """Reject settings that would make a run meaningless rather than fail later."""
    _check_data(recipe.data)
    _check_eval(recipe.eval, recipe.data.context_len)
    _check_train(recipe.train, recipe.eval.ks)
    if recipe.gate.on not in {"value", "ci_low"}:
        raise ConfigError(f"gate.on must be 'value' or 'ci_low', got {recipe.gate.on!r}")
