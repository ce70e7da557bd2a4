"""Options and fixtures of the benchmark suites.

* ``--bench-full`` adds the large sizes (D=768, 100k and 1M pools); without it
  they are deselected, so the default suite stays under 10 minutes on 2 cores.
* ``--bench-threads N`` fixes torch and FAISS threads (default: every core this
  process may use); the count is recorded in each benchmark's ``extra_info``
  and in the saved file's ``machine_info``.
* ``--benchmark-compare-fail`` with nothing saved to compare against fails at
  the start of the session instead of after the whole suite has run, and so
  does one whose saved run was taken on a busy machine (its 1-minute load
  average above the cores it had, recorded in the file's ``lvmbench``
  section): inflated saved times would hide a slowdown.
* The table defaults fit a terminal and pair each benchmark with its saved
  run: grouped by test name (each group is the saved row and NOW, so the
  ratio column compares the two), short names, columns min / median / max /
  rounds; any ``--benchmark-*`` display flag given overrides them.
* ``--bench-plant-slowdown NAME`` runs the benchmarks whose name contains NAME
  twice per round: a self-test showing that the documented regression rule
  (``--benchmark-compare-fail=min:30%``) exits 1 on a 2x slowdown.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from benchmarks._common import available_cores, environment, load_average, set_threads


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lvmbench benchmarks")
    group.addoption(
        "--bench-full", action="store_true", default=False,
        help="also run the large sizes (D=768, 100k and 1M pools; needs ~12 GB RAM and well over 10 minutes)",
    )
    group.addoption(
        "--bench-threads", type=int, default=None, metavar="N",
        help="torch and FAISS threads for every benchmark (default: all cores available to this process)",
    )
    group.addoption(
        "--bench-plant-slowdown", default=None, metavar="NAME",
        help="a self-test of the regression rule: benchmarks whose name contains NAME do their work twice",
    )


DISPLAY = {"benchmark_group_by": ("group", "name"), "benchmark_sort": ("min", "name"),
           "benchmark_columns": (None, ["min", "median", "max", "rounds"]), "benchmark_name": ("normal", "short")}
"""pytest-benchmark's display defaults -> ours: one small table per benchmark, its saved row beside NOW."""
LOAD_AT_START: list[float] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench_full: a large size, run only with --bench-full")
    for option, (theirs, ours) in DISPLAY.items():  # before pytest-benchmark reads them (its configure runs last)
        if getattr(config.option, option, theirs) == theirs:
            setattr(config.option, option, ours)
    LOAD_AT_START[:] = load_average()
    # before pytest-benchmark reads machine_info (its pytest_configure runs last)
    set_threads(config.getoption("--bench-threads") or available_cores())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--bench-full"):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("bench_full") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_sessionstart(session: pytest.Session) -> None:
    bs = getattr(session.config, "_benchmarksession", None)
    if bs is None or not bs.compare_fail or bs.disabled:
        return
    if not bs.compared_mapping:
        raise pytest.UsageError(
            "--benchmark-compare-fail needs a saved run to compare against, and none was found in "
            f"{bs.storage}. Save one first (python -m pytest benchmarks --benchmark-autosave) or name a "
            "file with --benchmark-compare=PATH."
        )
    for path, saved in bs.compared_mapping.items():
        info = saved.get("lvmbench") or {}
        loads, cores = info.get("loadavg_start") or [], info.get("cores_available") or available_cores()
        if loads and loads[0] > cores + 0.5:
            raise pytest.UsageError(
                f"{path}: saved on a busy machine (1-minute load average {loads[0]:.1f} on {cores} cores): its "
                "times are inflated and would hide a slowdown; save again on a quiet machine "
                "(python -m pytest benchmarks --benchmark-autosave)")


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict) -> None:
    """The load around the run, so a comparison can refuse a saved run that a busy machine inflated."""
    output_json["lvmbench"] = {"loadavg_start": LOAD_AT_START, "loadavg_end": load_average(),
                               "cores_available": available_cores()}


def pytest_report_header(config: pytest.Config) -> str:
    threads = config.getoption("--bench-threads") or available_cores()
    full = "on" if config.getoption("--bench-full") else "off (pass --bench-full for D=768, 100k and 1M pools)"
    return f"lvmbench benchmarks: threads {threads}, full sizes {full}"


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info["lvmbench"] = environment(load=False)


@pytest.fixture(autouse=True)
def bench_threads(pytestconfig: pytest.Config) -> int:
    """Threads fixed for every benchmark (torch intra-op and FAISS OpenMP)."""
    n = pytestconfig.getoption("--bench-threads") or available_cores()
    set_threads(n)  # again per test: one that changes them cannot leak into the next
    return n


@pytest.fixture(scope="session")
def bench_full(pytestconfig: pytest.Config) -> bool:
    return bool(pytestconfig.getoption("--bench-full"))


def _twice(fn: Callable[..., Any]) -> Callable[..., Any]:
    def doubled(*args: Any, **kwargs: Any) -> Any:
        fn(*args, **kwargs)
        return fn(*args, **kwargs)

    return doubled


def _doubled(real: Any) -> Any:
    """The same fixture object with every timed function run twice: a planted 2x slowdown.

    pytest-benchmark insists that the ``benchmark`` value is its own fixture
    class, so the fixture's class is swapped for a subclass instead of wrapping it.
    """

    class Doubled(type(real)):  # type: ignore[misc]
        def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return super().__call__(_twice(fn), *args, **kwargs)

        def pedantic(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return super().pedantic(_twice(target), *args, **kwargs)

    real.__class__ = Doubled
    return real


@pytest.fixture
def benchmark(benchmark: Any, request: pytest.FixtureRequest) -> Any:  # noqa: F811 - wraps pytest-benchmark's own
    """pytest-benchmark's fixture, doubled for the benchmarks ``--bench-plant-slowdown NAME`` names."""
    name = request.config.getoption("--bench-plant-slowdown")
    return _doubled(benchmark) if name and name in request.node.name else benchmark
