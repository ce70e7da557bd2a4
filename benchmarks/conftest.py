"""Options and fixtures of the benchmark suites.

* ``--bench-full`` adds the large sizes (D=768, 100k and 1M pools); without it
  they are deselected, so the default suite stays under 10 minutes on 2 cores.
* ``--bench-threads N`` fixes torch and FAISS threads (default: every core this
  process may use); the count is recorded in each benchmark's ``extra_info``
  and in the saved file's ``machine_info``.
* ``--benchmark-compare-fail`` with nothing saved to compare against fails at
  the start of the session instead of after the whole suite has run.
"""

from __future__ import annotations

import pytest

from benchmarks._common import available_cores, environment, set_threads


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench_full: a large size, run only with --bench-full")
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
    if bs is not None and bs.compare_fail and not bs.compared_mapping and not bs.disabled:
        raise pytest.UsageError(
            "--benchmark-compare-fail needs a saved run to compare against, and none was found in "
            f"{bs.storage}. Save one first (python -m pytest benchmarks --benchmark-autosave) or name a "
            "file with --benchmark-compare=PATH."
        )


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
