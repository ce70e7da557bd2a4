"""The shape of the code, checked: layers only point down, no import cycles, rooms stay small.

docs/architecture.md describes the layers; this test is what keeps them.  A
module may import modules of its own layer or of lower layers, never higher
ones (imports inside functions count too), and no set of modules may import
one another in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lvmbench"

LAYERS: list[tuple[str, ...]] = [
    ("lvmbench.errors", "lvmbench.io", "lvmbench.config", "lvmbench.runtime", "lvmbench.progress", "lvmbench.format",
     "lvmbench.trust",
     "lvmbench.workdir"),
    ("lvmbench.data",),
    ("lvmbench.models",),
    ("lvmbench.evaluate", "lvmbench.result"),
    ("lvmbench.train",),
    ("lvmbench.report",),
    ("lvmbench.runs",),
    ("lvmbench.cli", "lvmbench.__main__"),
]
"""Lowest first.  ``lvmbench`` itself (the package ``__init__``) is the public
facade and may only import lazily, so it is not placed in a layer."""

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
EXCEPTIONS: dict[str, str] = {}
"""``module`` or ``module:function`` -> why it may exceed the limits (none today)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    return None


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """lvmbench modules imported anywhere in the file (module level or inside functions)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t.startswith("lvmbench"))
    return {t if t in known else t.rpartition(".")[0] for t in found} & known - {name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(path, name, known) for name, path in mods.items()}


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if m != "lvmbench" and layer_of(m) is None]
    assert not unplaced, f"modules outside every layer of docs/architecture.md: {unplaced}"


def test_layers_only_point_down():
    upward = []
    for name, deps in graph().items():
        mine = layer_of(name)
        if mine is None:
            continue
        upward += [f"{name} -> {d}" for d in deps if d != "lvmbench" and (layer_of(d) or 0) > mine]
    assert not upward, "imports that point up a layer:\n" + "\n".join(sorted(upward))


def test_package_facade_stays_light():
    """``import lvmbench`` must not pull in torch or FAISS (``lvmbench --help`` stays fast)."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    heavy = [ast.unparse(n) for n in top if "lvmbench" in ast.unparse(n) and "errors" not in ast.unparse(n)]
    assert not heavy, f"lvmbench/__init__.py imports at module level: {heavy}"


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    g = {name: {d for d in deps if d != "lvmbench"} for name, deps in graph().items()}
    assert _cycles(g) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("root", ["lvmbench", "benchmarks"])
def test_modules_and_functions_stay_small(root):
    too_big = []
    for path in sorted((ROOT / root).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES and rel not in EXCEPTIONS:
            too_big.append(f"{rel}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and f"{rel}:{node.name}" not in EXCEPTIONS:
                    too_big.append(f"{rel}:{node.name}: {n} lines")
    assert not too_big, "over the size limits (docs/architecture.md):\n" + "\n".join(too_big)
