"""The machinery every section of results.json shares: a dataclass read from JSON and written back exactly.

A :class:`Record` is a ``kw_only`` dataclass whose fields are the keys of one
JSON object (``spec(key=...)`` when the key is not an identifier, such as
``recorded_val_hit@5``).  Reading is lenient, so a file written by an older
lvmbench, or a hand-made one, reads as it is:

* a key the record names becomes its field (a nested record, a map or a list
  of records is read as such: ``spec(of=Scores, many="map")``);
* a key the metric table knows (``hit@5``, ``lift_ci_mrr``...) goes into the
  dict field a ``COLLECT`` entry names, keyed by the metric key;
* any other key is kept in ``extra``.

Writing (:meth:`Record.to_json`) gives back every key that was read, in the
order it was read, and every field assigned since (even to None); a field
left at its default that was neither read nor assigned is left out.  So
``Record.from_json(d).to_json() == d``, key order included.  Values are not coerced: a hand-edited number stays
what the file says, for the gate to judge.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lvmbench.errors import UsageError
from lvmbench.evaluate import metrics


def spec(key: str | None = None, of: type | None = None, many: str | None = None,
         factory: Any = None) -> Any:
    """A record field: its JSON ``key`` (default: the field name), a nested record type ``of`` (``"self"``: the
    record's own class) read once (``many=None``), per key (``"map"``) or per item (``"list"``); default None,
    or ``factory()``."""
    meta = {"key": key, "of": of, "many": many}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=None, metadata=meta)


def is_metric_key(key: str) -> bool:
    """Whether ``key`` names a metric of the table (``hit@5``, ``mrr``, ``par``...)."""
    try:
        metrics.parse_key(key)
    except KeyError:
        return False
    return True


class SchemaError(UsageError):
    """A results file whose structure lvmbench cannot read (exit 2)."""


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number",
            type(None): "null"}.get(type(value), type(value).__name__)


@dataclass(kw_only=True)
class Record:
    """Base of every section: unknown keys in ``extra``; what was read in ``_present`` and ``_order``."""

    COLLECT: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(dict field, key prefix): keys ``prefix + <metric key>`` are collected into that field."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    _present: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _order: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ready", True)

    def __setattr__(self, name: str, value: Any) -> None:
        """Setting a field after construction marks it present: it is written even when set to None."""
        object.__setattr__(self, name, value)
        if self.__dict__.get("_ready") and not name.startswith("_") and name != "extra":
            object.__setattr__(self, "_present", self._present | {name})

    @classmethod
    def _fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.name not in ("extra", "_present", "_order")]

    @classmethod
    def from_json(cls, data: Any, where: str = "results", path: str = "") -> Any:
        """The record of the JSON object ``data`` (``where``: the file, ``path``: the key path, for errors)."""
        if not isinstance(data, dict):
            raise SchemaError(f"{where}: '{path or cls.__name__}' is {_kind(data)}, not an object; not an lvmbench "
                              "results file")
        by_key = {f.metadata.get("key") or f.name: f for f in cls._fields()}
        collected: dict[str, dict[str, Any]] = {name: {} for name, _ in cls.COLLECT}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in data.items():
            f = by_key.get(k)
            if f is not None and f.name not in collected:
                kwargs[f.name] = _read(f, v, where, f"{path}.{k}" if path else k, cls)
                continue
            for name, prefix in cls.COLLECT:
                if k.startswith(prefix) and is_metric_key(k[len(prefix):]):
                    collected[name][k[len(prefix):]] = v
                    break
            else:
                extra[k] = v
        record = cls(**kwargs, **collected, extra=extra)
        record._present = frozenset(kwargs)
        record._order = tuple(data)
        return record

    def has(self, name: str) -> bool:
        """Whether field ``name`` was read from the file or set since (a field left at its default was neither)."""
        f = next(f for f in self._fields() if f.name == name)
        return name in self._present or not _is_default(f, getattr(self, name))

    def to_json(self) -> dict[str, Any]:
        """The JSON object again: every key read (in its order), every field set since, then ``extra``."""
        out: dict[str, Any] = {}
        collectors = dict(self.COLLECT)
        for f in self._fields():
            value = getattr(self, f.name)
            if f.name in collectors:
                out.update({collectors[f.name] + k: v for k, v in value.items()})
            elif f.name in self._present or not _is_default(f, value):
                out[f.metadata.get("key") or f.name] = _write(value)
        out.update(self.extra)
        if not self._order:
            return out
        first = {k: out[k] for k in self._order if k in out}
        return first | {k: v for k, v in out.items() if k not in first}


def _is_default(f: dataclasses.Field, value: Any) -> bool:
    if f.default_factory is not dataclasses.MISSING:
        return value == f.default_factory()
    return value is None if f.default is None else value == f.default


def _read(f: dataclasses.Field, value: Any, where: str, path: str, owner: type) -> Any:
    of, many = f.metadata.get("of"), f.metadata.get("many")
    of = owner if of == "self" else of
    if of is None or value is None:
        return value
    if many == "map":
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: '{path}' is {_kind(value)}, not an object; not an lvmbench results file")
        return {k: of.from_json(v, where, f"{path}.{k}") for k, v in value.items()}
    if many == "list":
        if not isinstance(value, list):
            raise SchemaError(f"{where}: '{path}' is {_kind(value)}, not a list; not an lvmbench results file")
        return [of.from_json(v, where, f"{path}[{i}]") for i, v in enumerate(value)]
    return of.from_json(value, where, path)


def _write(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, dict):
        return {k: _write(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_write(v) for v in value]
    return value
