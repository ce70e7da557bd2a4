"""pytest-benchmark suites and the speed-target script (``python -m benchmarks.targets``).

Not part of the unit-test run: ``pyproject.toml`` sets ``testpaths = ["tests"]``,
so these run only when named, e.g. ``python -m pytest benchmarks``.
"""
