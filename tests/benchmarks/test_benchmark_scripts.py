"""Every benchmark script runs (at its smallest size) and cross-checks what it times.

Speed itself is never asserted here: the scripts report it. These smoke runs keep
the scripts working as the package changes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"

RUNS = [
    ("bench_engine.py", ["--quick", "--no-cold"]),
    ("bench_data.py", ["--rows", "2000"]),
    ("bench_train.py", ["--quick"]),
    ("bench_dask.py", ["--quick", "--skip", "report"]),
    # the coursework-size report through the CLI, tiny, with the Numba cache as it is (no cold compile)
    ("bench_report.py", ["--only", "coursework", "--sentences", "10", "--max-lag", "3", "--no-cold"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("script, args", RUNS, ids=[r[0] for r in RUNS])
def test_benchmark_script_runs(script, args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "NOT OK" not in proc.stdout and "MISMATCH" not in proc.stdout.upper()


@pytest.mark.slow
def test_gated_cell_benchmark_runs():
    """bench_cells.py at its smallest size: GRU and LSTM against PyTorch, every workload cross-checked."""
    from conftest import import_torch
    import_torch()                      # skipped without torch, unless GRADLAB_REQUIRE_TORCH=1
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(BENCH / "bench_cells.py"), "--quick"], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "NOT OK" not in proc.stdout and proc.stdout.count(" OK |") == 6
