"""Only the result type reads results.json: every other module goes through ``lvmbench.result.Result``.

Checked on the source (AST), in the spirit of ``test_architecture.py``.  Outside
``lvmbench/result/`` (the type and its sections), a module may not

1. read results.json itself: call ``load_results``, or call ``read_json``,
   ``json.load(s)``, ``open``, ``np.load``, ``.read_text()``, ``.read_bytes()``
   or ``.open()`` on an expression that names ``"results.json"`` (directly, or
   through a variable assigned from such an expression in the same function);
2. index a result by a string key: subscript with a string literal (or
   f-string), or call ``.get(<string literal or f-string>, ...)``, on an
   expression derived from a result.  Derived from a result means: a variable
   assigned from ``Result.from_json(...)``, ``load_results(...)``, any
   ``.to_json()`` (the raw dict again), a call of a function whose return
   annotation names a class of ``lvmbench/result/`` (``gate_verdict`` ->
   ``GateRecord``, ``assemble`` -> ``Result``...), a parameter annotated with
   such a class, an attribute named ``results``/``result`` (``run.results``),
   and anything reached from those by attribute, subscript, method call or
   iteration (``for name, s in result.baselines.items()``).

Subscripts with a variable (``result.baselines[name]``: a predictor chosen at
run time) are allowed; a literal key of the file is what this forbids.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lvmbench"
TYPE_PACKAGE = PACKAGE / "result"
RESULTS_FILE = "results.json"
READERS = {"read_json", "load", "loads", "open", "read_text", "read_bytes"}
SOURCES = {"load_results", "from_json", "to_json"}
RESULT_ATTRS = {"results", "result"}


def record_classes() -> set[str]:
    """Every class the result package defines (the record types a parameter or a return may be annotated with)."""
    names = set()
    for path in TYPE_PACKAGE.rglob("*.py"):
        names |= {n.name for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.ClassDef)}
    return names - {"SchemaError"}


def _names_in(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    found = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    found |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    for n in ast.walk(node):  # string annotations ("Result | None")
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            try:
                found |= _names_in(ast.parse(n.value, mode="eval"))
            except SyntaxError:
                pass
    return found


def returning_records(trees: list[ast.AST], classes: set[str]) -> set[str]:
    """Names of the functions outside the result package whose return annotation names a record class (the
    package's own constructors are caught as ``<RecordClass>.<method>(...)`` calls)."""
    return {n.name for tree in trees for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and _names_in(n.returns) & classes}


def _callee(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _mentions_results_file(node: ast.AST, paths: set[str]) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and n.value == RESULTS_FILE:
            return True
        if isinstance(n, ast.Name) and n.id in paths:
            return True
    return False


def _key_literal(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr)


class Checker(ast.NodeVisitor):
    """One module: the violations of both rules, as 'line: what'."""

    def __init__(self, classes: set[str], returning: set[str]) -> None:
        self.classes, self.returning = classes, returning
        self.tainted: set[str] = set()
        self.paths: set[str] = set()
        self.found: list[str] = []

    # -- what is derived from a result
    def derived(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.tainted
        if isinstance(node, ast.Attribute):
            return node.attr in RESULT_ATTRS or self.derived(node.value)
        if isinstance(node, ast.Subscript):
            return self.derived(node.value)
        if isinstance(node, ast.Call):
            name, f = _callee(node), node.func
            if name in SOURCES or name in self.returning:
                return True
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in self.classes:
                return True  # History.load(run_dir), Result.from_json(...)
            return isinstance(node.func, ast.Attribute) and self.derived(node.func.value)
        if isinstance(node, ast.BoolOp):
            return any(self.derived(v) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self.derived(node.body) or self.derived(node.orelse)
        return False

    def _bind(self, target: ast.AST, value: ast.AST) -> None:
        names = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        if self.derived(value):
            self.tainted |= names
        if _mentions_results_file(value, self.paths):
            self.paths |= names

    # -- scopes
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        saved = (set(self.tainted), set(self.paths))
        args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        self.tainted |= {a.arg for a in args if _names_in(a.annotation) & self.classes}
        self.generic_visit(node)
        self.tainted, self.paths = saved

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for t in node.targets:
            self._bind(t, node.value)
            self.visit(t)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._bind(node.target, node.value)
        if isinstance(node.target, ast.Name) and _names_in(node.annotation) & self.classes:
            self.tainted.add(node.target.id)

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self._bind(node.target, node.iter)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.visit(node.iter)
        self._bind(node.target, node.iter)
        for cond in node.ifs:
            self.visit(cond)

    def _comprehension(self, node: ast.AST, parts: list[ast.AST]) -> None:
        for gen in node.generators:
            self.visit_comprehension(gen)
        for part in parts:
            self.visit(part)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    # -- the two rules
    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _key_literal(node.slice) and self.derived(node.value):
            self.found.append(f"{node.lineno}: {ast.unparse(node)} indexes a result by a string key")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee(node)
        if name == "load_results":
            self.found.append(f"{node.lineno}: {ast.unparse(node)} reads results.json outside lvmbench.result")
        elif name in READERS and _mentions_results_file(node, self.paths):
            self.found.append(f"{node.lineno}: {ast.unparse(node)} reads results.json outside lvmbench.result")
        elif (name == "get" and isinstance(node.func, ast.Attribute) and node.args and _key_literal(node.args[0])
              and self.derived(node.func.value)):
            self.found.append(f"{node.lineno}: {ast.unparse(node)} indexes a result by a string key")
        self.generic_visit(node)


def violations(source: str, classes: set[str], returning: set[str]) -> list[str]:
    checker = Checker(classes, returning)
    checker.visit(ast.parse(source))
    return checker.found


def _modules() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))
            if TYPE_PACKAGE not in p.parents and p.name != "__main__.py"}


def _context() -> tuple[set[str], set[str]]:
    classes = record_classes()
    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))
             if TYPE_PACKAGE not in p.parents]
    return classes, returning_records(trees, classes)


def test_no_module_outside_the_result_type_reads_results_json_by_key():
    classes, returning = _context()
    assert {"Result", "Scores", "Lift", "GateRecord"} <= classes and {"gate_verdict", "assemble"} <= returning
    found = [f"{p.relative_to(ROOT)}:{v}" for p, text in _modules().items()
             for v in violations(text, classes, returning)]
    assert not found, "results.json read outside lvmbench.result (use lvmbench.result.Result):\n" + "\n".join(found)


PLANTED = {
    "raw read": 'import json\ndef f(d):\n    return json.loads((d / "results.json").read_text())["metrics"]\n',
    "raw read through a variable": 'def f(d):\n    p = d / "results.json"\n    return read_json(p, ValueError)\n',
    "load_results": "def f(d):\n    return load_results(d)\n",
    "subscript of a loaded result": 'def f(d):\n    r = Result.from_json(d)\n    return r.to_json()["metrics"]\n',
    "dict section of a typed parameter": 'def f(r: Result):\n    return r.metrics.ci["hit@5"]\n',
    "get on a result attribute": 'def f(run):\n    return run.results.get("metrics")\n',
    "f-string key in a loop": ('def f(r: "Result | None", ks):\n    for name, s in r.baselines.items():\n'
                               '        yield s.extra[f"hit@{ks[0]}"]\n'),
    "returned record": 'def f(r):\n    g = gate_verdict(r, "hit@5", 0.5, "value")\n    return g.check["verified"]\n',
    "a record's constructor": 'def f(d):\n    h = History.load(d)\n    return h.distributed["world_size"]\n',
}
ALLOWED = {
    "typed access": 'def f(r: Result):\n    return r.metrics.value("hit@5"), r.lift.wtl, r.baselines[name]\n',
    "plain dicts": 'def f(summary):\n    row = {"hit@5": 1}\n    return row["hit@5"], summary.get("ks")\n',
    "other files": 'def f(d):\n    return read_json(d / "suite.json", ValueError)["rows"]\n',
}


def test_the_check_finds_planted_reads_and_passes_typed_ones():
    """Not vacuous: each planted way of walking the raw dict is caught; typed access and other JSON are not."""
    classes, returning = _context()
    for what, source in PLANTED.items():
        assert violations(source, classes, returning), what
    for what, source in ALLOWED.items():
        assert violations(source, classes, returning) == [], what
