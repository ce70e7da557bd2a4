"""The benchmark suites still run: each benchmark once, untimed (``--benchmark-disable``).

Speed is judged in ``benchmarks/`` with ``--benchmark-compare``, never here; this only keeps the
suites from rotting (a benchmark reading a field that was renamed, a fixture pytest-benchmark
refuses) between the occasions someone times them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_default_benchmark_suite_runs_once_untimed(tmp_path):
    env = {**os.environ, "LVMBENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-disable", "-q", "-x", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'bt'}"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout.splitlines()[-1]
