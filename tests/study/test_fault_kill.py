"""Fault injection: ``kill -9`` a report and a training study at random points, several times, then let
them finish; every output file must be byte-identical to an uninterrupted run's.

The one exception is the seconds (``timings.csv``, and each training run's ``timing.csv``
that it is built from). The runs go through the command line in fresh processes, as a
user's would; the kill times are drawn from a seeded generator over the length of an
uninterrupted run, so they land in start-up, in units, in combining and in rendering.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Files allowed to differ between an interrupted and an uninterrupted run: seconds only.
SECONDS_FILES = {"timings.csv", "timing.csv"}
#: Interruptions per spec.
N_KILLS = 3

REPORT = """\
title = "Fault test"
datasets = ["agreement:distance=4,n=40", "recall:distance=6,n=40"]
states = ["init:scale=1.0", "train:scheme=tbptt:2,epochs=2,lr=0.5,batch_size=4,label=trained"]
hidden_size = 6
max_lag = 5
block_schemes = ["chunked:3"]
"""

STUDY = """\
title = "Fault test study"
train = "agreement:distance=4,min_distance=1,n=80"
dev = "agreement:distance=4,min_distance=1,n=20,seed=1"
hidden_sizes = [5]
schemes = ["tbptt:1", "full"]
seeds = [0, 1]
epochs = 2
batch_size = 2
eval_tasks = ["lm", "agreement"]
snapshots = true
max_lag = 3
snapshot_sentences = 10
"""


def _command(spec: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "from gradlab.cli import app; app()", "run", str(spec), "--out", str(out),
            "--wait"]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in SECONDS_FILES | {".lock", ".lock.pid"}}


def _run_to_the_end(spec: Path, out: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(_command(spec, out), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize("kind, text", [("report", REPORT), ("study", STUDY)], ids=["report", "study"])
def test_kill_9_at_random_points_then_resume_gives_the_same_bytes(tmp_path, kind, text):
    spec = tmp_path / f"fault-{kind}.toml"
    spec.write_text(text)
    _run_to_the_end(spec, tmp_path / "warm-up")   # compiles the kernels (a fresh clone's cache is empty)
    reference = tmp_path / "reference"
    duration = _run_to_the_end(spec, reference)
    rng = np.random.default_rng(10)
    out = tmp_path / "interrupted"
    killed = 0
    # each try resumes the last one's work, so two tries of at most half the run cannot finish it
    for delay in rng.uniform(0.15, 0.5, N_KILLS) * duration:
        proc = subprocess.Popen(_command(spec, out), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL: no cleanup runs
            proc.wait()
            killed += 1
    assert killed >= 2, "the runs finished before they could be killed; the kill times are too late"
    _run_to_the_end(spec, out)
    want, got = _files(reference / f"fault-{kind}"), _files(out / f"fault-{kind}")
    assert sorted(got) == sorted(want)
    differing = [name for name in want if want[name] != got[name]]
    assert differing == []
