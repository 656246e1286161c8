"""Executors: in-process and Dask, results back to the caller, failures per unit, dying workers."""
from __future__ import annotations

import os
import sys
import time

import pytest

from gradlab.executor import DaskExecutor, InProcess, TaskFailure, UnitsFailed, executor


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError(f"unit {x} is bad")
    return x


def slow_pid(x, seconds):
    time.sleep(seconds)
    return x, os.getpid()


def thread_settings(_):
    from threadpoolctl import threadpool_info
    from gradlab import _config
    return _config.n_threads(), sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})


def test_in_process_runs_in_order_and_reports_failures_per_unit():
    out = list(InProcess().map(fail_on_three, [(i,) for i in range(5)], [f"u{i}" for i in range(5)]))
    assert [i for i, _ in out] == [0, 1, 2, 3, 4]
    assert [r for _, r in out if not isinstance(r, TaskFailure)] == [0, 1, 2, 4]
    failure = out[3][1]
    assert isinstance(failure, TaskFailure)
    assert failure.name == "u3" and failure.error == "ValueError: unit 3 is bad"
    assert "fail_on_three" in failure.traceback


def test_units_failed_names_every_failed_unit():
    err = UnitsFailed([TaskFailure("a", "ValueError: x", "tb-a"), TaskFailure("b", "KeyError: y", "tb-b")], 5)
    text = str(err)
    assert "2 of 5 units failed" in text and "a: ValueError: x" in text and "b: KeyError: y" in text
    assert "--- a\ntb-a" in err.tracebacks()


def test_no_options_run_in_process(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with executor() as ex:
        assert isinstance(ex, InProcess)


@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, "--workers"), ({"workers": 2.5}, "--workers"), ({"workers": 2, "scheduler": "tcp://x:1"}, "not both"),
    ({"threads_per_worker": 0}, "--threads-per-worker")])
def test_bad_options_are_rejected(kwargs, match, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with pytest.raises(ValueError, match=match):
        with executor(**kwargs):
            pass


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    monkeypatch.setattr("gradlab.executor.CONNECT_TIMEOUT", "1s")
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler"):
        with executor():
            pass


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed")
    import cloudpickle
    from distributed import Client, LocalCluster
    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers cannot import this test module
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as lc, Client(lc) as client:
        yield client


@pytest.mark.slow
def test_dask_results_failures_and_worker_setup(cluster):
    ex = DaskExecutor(cluster, threads_per_worker=1)
    out = dict(ex.map(fail_on_three, [(i,) for i in range(6)], [f"u{i}" for i in range(6)]))
    assert sorted(out) == list(range(6))
    assert {i: r for i, r in out.items() if not isinstance(r, TaskFailure)} == {0: 0, 1: 1, 2: 2, 4: 4, 5: 5}
    assert out[3].name == "u3" and out[3].error == "ValueError: unit 3 is bad" and "fail_on_three" in out[3].traceback
    settings = dict(ex.map(thread_settings, [(i,) for i in range(4)], [f"t{i}" for i in range(4)]))
    assert all(n == 1 and blas in ([], [1]) for n, blas in settings.values()), settings


@pytest.mark.slow
def test_dask_reruns_the_task_of_a_killed_worker(cluster):
    ex = DaskExecutor(cluster, threads_per_worker=1)
    names = [f"s{i}" for i in range(4)]
    results = {}
    killed = None
    for i, r in ex.map(slow_pid, [(i, 1.5) for i in range(4)], names):
        results[i] = r
        if killed is None:   # the first result: kill the worker that is running another task
            workers = cluster.run(os.getpid)
            killed = next(pid for pid in workers.values() if pid != r[1])
            os.kill(killed, 9)
    assert sorted(results) == [0, 1, 2, 3]
    assert all(not isinstance(r, TaskFailure) for r in results.values())
