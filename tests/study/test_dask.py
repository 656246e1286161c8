"""Reports and training studies on a local Dask cluster of 2 worker processes.

The same spec gives the same bytes in-process and on the cluster; a worker killed
mid-run, a failing unit and an interrupted client lose nothing that was finished.
"""
from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradlab.executor import UnitsFailed
from gradlab.study.report import run_spec
from gradlab.study.spec import Spec
from gradlab.study.training import TrainSpec, run_study, runs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

REPORT = Spec(name="r", datasets=["agreement:distance=4,n=40", "markov:n=40"],
              states=["init", "init:scale=1.0"], hidden_size=6, max_lag=5, block_schemes=["chunked:3"])
STUDY = TrainSpec(name="s", train="agreement:distance=4,n=60", schemes=["tbptt:1", "full"], hidden_sizes=[6],
                  learning_rates=[0.5], seeds=[0, 1], epochs=2, batch_size=5, snapshots=True, max_lag=4,
                  snapshot_sentences=10)


def _same_files(a: Path, b: Path, skip=("timings.csv", "failures.log")):
    names = sorted(p.name for p in a.iterdir() if p.is_file() and p.name not in skip)
    assert names == sorted(p.name for p in b.iterdir() if p.is_file() and p.name not in skip)
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40, env=env) as lc, Client(lc) as c:
        yield c


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    return run_spec(REPORT, out, progress=False), run_study(STUDY, out, progress=False)


def test_report_on_the_cluster_gives_the_same_bytes(client, reference, tmp_path):
    root = run_spec(REPORT, tmp_path, progress=False, client=client)
    _same_files(reference[0], root)
    for unit in (reference[0] / "units").iterdir():
        _same_files(unit, root / "units" / unit.name)


def test_partitioned_report_on_the_cluster_equals_in_process(client, tmp_path):
    from dataclasses import replace
    spec = replace(REPORT, name="p", per_sentence=False, partition_size=7)
    a = run_spec(spec, tmp_path / "a", progress=False, render=False)
    b = run_spec(spec, tmp_path / "b", progress=False, render=False, client=client)
    _same_files(a, b)


def test_study_on_the_cluster_gives_the_same_bytes(client, reference, tmp_path):
    root = run_study(STUDY, tmp_path, progress=False, client=client)
    _same_files(reference[1], root)
    for run in runs(STUDY):
        ref = reference[1] / "runs" / run["slug"]
        for name in ("model.npz", "mid.npz", "history.csv", "evaluation.csv", "summary.csv",
                     "snapshots_profile.csv", "done.json"):
            assert (root / "runs" / run["slug"] / name).read_bytes() == (ref / name).read_bytes(), name


def test_a_killed_worker_loses_nothing(client, reference, tmp_path):
    from gradlab.study import training as study
    seen = []
    real = study.write_run

    def kill_after_first(folder, run, result):   # the first result back: kill a worker still training
        real(folder, run, result)
        if not seen:
            pids = client.run(os.getpid)
            os.kill(next(iter(pids.values())), signal.SIGKILL)
        seen.append(run["run"])

    study.write_run = kill_after_first
    try:
        root = run_study(STUDY, tmp_path, progress=False, client=client)
    finally:
        study.write_run = real
    assert sorted(seen) == sorted(r["run"] for r in runs(STUDY))
    _same_files(reference[1], root)


class Injected(RuntimeError):
    pass


def _failing_trainer(**options):
    """Trainers of runs with learning rate 0.25 raise (installed on the workers by client.run)."""
    from gradlab.train.trainer import Trainer
    if options["learning_rate"] == 0.25:
        raise Injected(f"injected failure (seed {options['seed']})")
    return Trainer(**options)


def _patch_trainer(on: bool):
    from gradlab.study import training as study
    if on:
        study._real_make_trainer = getattr(study, "_real_make_trainer", study._make_trainer)
        study._make_trainer = _failing_trainer
    else:
        study._make_trainer = getattr(study, "_real_make_trainer", study._make_trainer)


def test_a_failing_run_is_reported_and_the_others_written(client, tmp_path):
    import cloudpickle
    from dataclasses import replace
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spec = replace(STUDY, name="f", learning_rates=[0.5, 0.25], seeds=[0], snapshots=False)
    client.run(_patch_trainer, True)
    try:
        with pytest.raises(UnitsFailed) as info:
            run_study(spec, tmp_path, progress=False, client=client)
    finally:
        client.run(_patch_trainer, False)
    failed = [f.name for f in info.value.failures]
    assert sorted(failed) == sorted(r["run"] for r in runs(spec) if r["learning_rate"] == 0.25)
    assert all("Injected: injected failure" in f.error and "_failing_trainer" in f.traceback
               for f in info.value.failures)
    for r in runs(spec):
        done = (tmp_path / "f" / "runs" / r["slug"] / "done.json").exists()
        assert done == (r["learning_rate"] == 0.5)
    assert not (tmp_path / "f" / "summary.csv").exists()     # no combined report from a partial study


def test_cli_names_failed_runs_in_one_error_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner
    from gradlab.cli import app
    from gradlab.study import training as study
    monkeypatch.setattr(study, "_make_trainer", _failing_trainer)
    path = tmp_path / "f.toml"
    path.write_text('train = "agreement:distance=4,n=30"\nschemes = ["full"]\nhidden_sizes = [4]\nepochs = 1\n'
                    'learning_rates = [0.5, 0.25]\nbatch_size = 5\n')
    result = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "1 of 2 runs failed" in errors[0] and "Injected: injected failure" in errors[0]
    assert "Traceback" not in result.output
    assert "_failing_trainer" in (tmp_path / "out" / "f" / "failures.log").read_text()


def test_an_interrupted_client_resumes_without_recomputing(tmp_path, reference):
    spec_file = tmp_path / "s.toml"
    spec_file.write_text(STUDY.to_toml())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", "from gradlab.cli import app; app()", "train", str(spec_file), "--out",
           str(tmp_path / "out"), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    runs_dir = tmp_path / "out" / "s" / "runs"
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs_dir.glob("*/done.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)          # the client and its local cluster
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in runs_dir.glob("*/done.json")}
    assert 1 <= len(finished) < len(runs(STUDY)) + 1
    from gradlab.study import training as study
    trained = []
    real = study._make_trainer

    def counting(**options):
        trained.append(options["epochs"])
        return real(**options)

    study._make_trainer = counting
    try:
        root = run_study(STUDY, tmp_path / "out", progress=False)
    finally:
        study._make_trainer = real
    for slug, mtime in finished.items():
        assert (runs_dir / slug / "done.json").stat().st_mtime_ns == mtime
    expected_runs = len(runs(STUDY)) - len(finished)
    assert trained.count(STUDY.epochs) == expected_runs     # only the unfinished runs train again
    _same_files(reference[1], root)


def test_suite_on_the_cluster_gives_the_same_bytes(client, tmp_path):
    """Every study of a suite (curriculum and adaptive truncation included) on one cluster."""
    from gradlab.study.suite import run_suite, suite_from_dict
    s = suite_from_dict({"title": "s", "hidden_sizes": [4], "schemes": ["tbptt:1", "adaptive:delta=0.2,every=3"],
                         "learning_rates": [0.3], "seeds": [0], "epochs": 2, "batch_size": 5, "activation": "tanh",
                         "recurrent_init": "orthogonal", "clip": 1.0, "curriculum_stages": 2,
                         "distributions": ["longest", "curriculum"],
                         "tasks": [{"name": "recall", "train": "recall:distance=6,n=20", "task": "recall",
                                    "dev": "recall:distance=6,min_distance=2,n=15,seed=1", "min_distance": 2}]})
    a = run_suite(s, tmp_path / "a", progress=False)
    b = run_suite(s, tmp_path / "b", progress=False, client=client)
    _same_files(a, b)
    for study in s.studies:
        _same_files(a / study.name, b / study.name)
