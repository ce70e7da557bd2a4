"""Models that live outside lvmbench: import paths, installed entry points, in-process registration.

Three ways in (the patterns of lm-evaluation-harness, torchtune and mteb):

* ``--model package.module:NAME`` imports ``NAME`` from an importable module;
* an installed package declares ``[project.entry-points."lvmbench.models"]
  mymodel = "pkg.mod:NAME"`` and ``--model mymodel`` finds it;
* ``@lvmbench.register_model("mymodel")`` registers it in this process.

``NAME`` is a class or a factory called ``NAME(dim, **model.options)``; a
parameter named ``train`` also receives the training split's data (a
:class:`~lvmbench.models.entry.Context`).  Setting ``lvmbench_kind =
"baseline"`` on it scores it without training.  What it builds must meet
:mod:`lvmbench.models.protocol`; anything that does not is refused with one
line.

**The trust boundary** (:mod:`lvmbench.trust`): an import path is imported
only when this command named it; :func:`from_import_path` refuses any other,
whatever route reached it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from typing import Any, Callable

from torch import nn

from lvmbench.config import ModelConfig
from lvmbench.errors import ConfigError, UsageError, first_line
from lvmbench.models.entry import Context, Entry
from lvmbench.models.protocol import check_model
from lvmbench.trust import is_import_path, is_trusted

GROUP = "lvmbench.models"
KINDS = ("model", "baseline")

def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else f"{getattr(obj, '__module__', '?')}.{obj.__name__}"


def _takes_train(factory: Callable[..., Any]) -> bool:
    try:
        return "train" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _builder(name: str, factory: Callable[..., Any], kind: str) -> Callable[[int, ModelConfig, Context], nn.Module]:
    """``factory(dim, **options[, train=ctx])``, with the options checked against its signature first."""
    def build(dim: int, cfg: ModelConfig, ctx: Context) -> nn.Module:
        kwargs = dict(cfg.options)
        if _takes_train(factory):
            kwargs["train"] = ctx
        try:
            inspect.signature(factory).bind(dim, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"model.options for '{name}': {first_line(exc)} "
                              f"(it takes {name.rsplit(':', 1)[-1]}{inspect.signature(factory)})") from None
        except ValueError:
            pass  # no introspectable signature: the call itself decides
        try:
            model = factory(dim, **kwargs)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's constructor failed: one line, not a traceback
            raise UsageError(f"model '{name}': building it as {name.rsplit(':', 1)[-1]}({dim}, **model.options) "
                             f"failed ({type(exc).__name__}: {first_line(exc)})") from None
        check_model(model, name, dim, trained=kind == "model")
        return model

    return build


def make_entry(name: str, factory: Any, kind: str, description: str, source: str,
               package: str | None = None, version: str | None = None) -> Entry:
    if kind not in KINDS:
        raise UsageError(f"model '{name}': kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not callable(factory):
        raise UsageError(f"model '{name}': {factory!r} is not a class or a function")
    return Entry(name, kind, description or _summary(factory), _builder(name, factory, kind), outside=True,
                 source=source, package=package, version=version)


def _distribution(module: str) -> tuple[str | None, str | None]:
    """The installed distribution (and its version) that provides a top-level module, if any."""
    top = module.split(".")[0]
    names = importlib.metadata.packages_distributions().get(top) or []
    for dist in names:
        try:
            return dist, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, getattr(importlib.import_module(top), "__version__", None)


def from_import_path(spec: str) -> Entry:
    """``package.module:NAME`` -> an entry; the only place lvmbench imports a path, and only a given one."""
    module, _, attr = spec.partition(":")
    if not module or not attr or not all(p.isidentifier() for p in module.split(".") + attr.split(".")):
        raise UsageError(f"--model {spec}: an import path is package.module:NAME")
    if not is_trusted(spec):  # the backstop: whatever route reached here, a path from a file is not imported
        raise UsageError(f"{spec}: lvmbench imports a module path only when this command names it (--model, "
                         f"--set model.name=..., --set eval.baselines=... or --allow-import {spec})")
    try:
        obj: Any = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise UsageError(f"--model {spec}: cannot import {module} ({first_line(exc)}; is it installed or on "
                         "PYTHONPATH?)") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module raised (or exited) while importing
        raise UsageError(f"--model {spec}: importing {module} failed "
                         f"({type(exc).__name__}: {first_line(exc)})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--model {spec}: {module} has no attribute {attr}")
        obj = getattr(obj, part)
    package, version = _distribution(module)
    return make_entry(spec, obj, getattr(obj, "lvmbench_kind", "model"), "", "import path", package, version)


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """Every ``lvmbench.models`` entry point of the installed packages (nothing is imported)."""
    return sorted(importlib.metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


def from_entry_point(name: str) -> Entry | None:
    found = [ep for ep in entry_points() if ep.name == name]
    if not found:
        return None
    if len({ep.value for ep in found}) > 1:
        raise UsageError(f"--model {name}: declared by several installed packages "
                         f"({', '.join(ep.value for ep in found)}); use its import path instead")
    ep = found[0]
    try:
        obj = ep.load()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the package's module raised (or exited) while importing
        raise UsageError(f"--model {name}: entry point {ep.value} failed to load "
                         f"({type(exc).__name__}: {first_line(exc)})") from None
    dist = ep.dist
    return make_entry(name, obj, getattr(obj, "lvmbench_kind", "model"), "", "entry point",
                      dist.name if dist else None, dist.version if dist else None)


def resolve(name: str) -> Entry | None:
    """An import path or an entry-point name; None when it is neither."""
    return from_import_path(name) if ":" in name else from_entry_point(name)


def confirm(recorded: list[str], given: list[str] | None, where: str) -> None:
    """A model path read from a file is imported only when the user names it again (``--model``).

    Entry-point and built-in names resolve without that; an import path
    (``pkg.mod:NAME``) recorded in a checkpoint, recipe.json or series.json
    must be passed on the command line, and a different one is refused.
    """
    needed = sorted({n for n in recorded if is_import_path(n)})
    if given is None:
        if needed:
            raise UsageError(f"{where} names the model import path {', '.join(needed)}; lvmbench never imports a "
                             f"module path read from a file: pass --model {','.join(needed)} to confirm it")
        return
    if sorted(set(given)) != sorted(set(recorded)):
        raise UsageError(f"--model {','.join(given)} differs from the model(s) {where} records: "
                         f"{','.join(dict.fromkeys(recorded))}")
