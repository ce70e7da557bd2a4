"""Which import paths this command may import: the trust boundary for code named by a string.

Code is named only on the command line or by an installed entry point.  An
import path (``package.module:NAME``) is imported only when it is *trusted*:
named in this command's ``--model``, ``--set model.name=``, ``--set
eval.baselines=`` or ``--allow-import`` (the CLI enters :func:`trusted_imports`
with them), or by a program through :func:`trusted_imports`.  A file that
names code - a TOML recipe, ``recipe.json``, a checkpoint's recipe, a task
file's meta, ``series.json`` - is checked by :func:`check_recipe_imports`,
which refuses with one line naming the file and the flag that confirms it;
:func:`lvmbench.models.outside.from_import_path` refuses any untrusted path
whatever route reached it.  This module imports nothing heavy, so every
command can set the boundary before it loads torch.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterable, Iterator

from lvmbench.errors import UsageError

_TRUSTED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("lvmbench_trusted_imports",
                                                                          default=frozenset())


def is_import_path(name: str) -> bool:
    return ":" in name


@contextlib.contextmanager
def trusted_imports(specs: Iterable[str]) -> Iterator[None]:
    """Within this block, the import paths ``specs`` (named on the command line, or by a program) may be imported."""
    token = _TRUSTED.set(_TRUSTED.get() | {s for s in specs if is_import_path(s)})
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def is_trusted(spec: str) -> bool:
    return spec in _TRUSTED.get()


def trusted() -> frozenset[str]:
    """The import paths trusted now (a worker process is handed them with the jobs it runs)."""
    return _TRUSTED.get()


def check_recipe_imports(model: str, baselines: list[str], where: str) -> None:
    """Refuse a recipe read from ``where`` that names an import path nobody named on the command line."""
    for field_, names, flag in (("model.name", [model], "--model"), ("eval.baselines", baselines, "--allow-import")):
        for spec in names:
            if is_import_path(spec) and not is_trusted(spec):
                raise UsageError(f"{where}: {field_} names the import path {spec}; lvmbench never imports a module "
                                 f"path read from a file: pass {flag} {spec} to confirm it")


def specs_in(values: Iterable[str | None]) -> set[str]:
    """The import paths in comma-separated values (``--model a,pkg:X``, ``--set eval.baselines=[b, pkg:Y]``)."""
    out: set[str] = set()
    for value in values:
        for part in (value or "").replace("[", "").replace("]", "").split(","):
            part = part.strip().strip("'\"")
            if is_import_path(part):
                out.add(part)
    return out
