"""Where independent units of work run: in this process, or as tasks on a Dask cluster.

Report units (dataset x model state), training runs and corpus partitions are independent
of each other. A runner hands this module a picklable function and one argument tuple per
unit; every result comes back to the runner, which writes it (atomically, as it always
does). Workers never write report files, so a cluster needs no shared filesystem, a
killed worker only makes its task run again elsewhere (Dask reschedules it), and a killed
client loses only the units it had not written yet.

Executors
---------
``InProcess()``
    Runs the units one after the other in this process (the default).
``DaskExecutor(client)``
    Submits every unit as a task to a ``dask.distributed.Client`` and yields results as
    they complete. Each worker first compiles (or loads from Numba's cache) gradlab's
    kernels and limits Numba and BLAS to ``threads_per_worker`` threads.

:func:`executor` builds one from the command line's ``--workers``/``--scheduler`` options
(or ``DASK_SCHEDULER_ADDRESS``).

A unit that raises does not stop the others: it comes back as a :class:`TaskFailure`
(its name, the error and the traceback) and the runner raises :class:`UnitsFailed` once
every other unit is written.
"""
from __future__ import annotations

import contextlib
import os
import traceback as _tb
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

__all__ = ["TaskFailure", "UnitsFailed", "InProcess", "DaskExecutor", "executor",
           "limit_threads", "SCHEDULER_ENV"]

#: Environment variable read for the address of an existing scheduler (Dask's own name for it).
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: How long to wait for an existing scheduler to answer.
CONNECT_TIMEOUT = "20s"


@dataclass(frozen=True)
class TaskFailure:
    """A unit whose function raised: its name, ``"Type: message"`` and the formatted traceback."""

    name: str
    error: str
    traceback: str

    @classmethod
    def from_exception(cls, name: str, exc: BaseException, tb=None) -> "TaskFailure":
        lines = _tb.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__)
        return cls(name, f"{type(exc).__name__}: {exc}", "".join(lines))


class UnitsFailed(RuntimeError):
    """Some units raised; the others were computed and written.

    Attributes
    ----------
    failures : list of TaskFailure
    n_units : int
        Units the run had (failed, computed and reused).
    """

    def __init__(self, failures: Sequence[TaskFailure], n_units: int, what: str = "unit"):
        self.failures = list(failures)
        self.n_units = n_units
        self.what = what
        lines = [f"{len(self.failures)} of {n_units} {what}s failed (the others are written; rerun to retry "
                 f"only the failed ones):"]
        lines += [f"  {f.name}: {f.error}" for f in self.failures]
        super().__init__("\n".join(lines))

    def summary(self) -> str:
        """One line: how many failed, and each failed unit with its error."""
        what = "; ".join(f"{f.name}: {' '.join(f.error.split())}" for f in self.failures)
        return f"{len(self.failures)} of {self.n_units} {self.what}s failed ({what})"

    def tracebacks(self) -> str:
        """Every failure's traceback, each under its unit's name."""
        return "\n".join(f"--- {f.name}\n{f.traceback}" for f in self.failures)


def limit_threads(n: int) -> None:
    """Run gradlab's and BLAS's thread pools with ``n`` threads from now on, in this process.

    ``NUMBA_NUM_THREADS`` and the BLAS variables are also set, for code that reads them later.
    """
    import numba
    from threadpoolctl import threadpool_limits

    from . import _config
    n = max(1, int(n))
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    _config.set_threads(n)                 # gradlab's thread pool, for every thread of the process
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    global _blas_limit
    _blas_limit = threadpool_limits(limits=n)   # kept alive: the limit holds until the process ends


_blas_limit = None


class InProcess:
    """Run units one after the other in this process."""

    name = "in-process"
    n_workers = 1

    def map(self, fn: Callable, args: Iterable[tuple], names: Sequence[str]) -> Iterator[tuple[int, object]]:
        """Yield ``(i, fn(*args[i]))`` in order, or ``(i, TaskFailure)`` where it raised."""
        for i, (a, name) in enumerate(zip(args, names)):
            try:
                result = fn(*a)
            except Exception as exc:  # noqa: BLE001 - reported per unit, the others go on
                result = TaskFailure.from_exception(name, exc)
            yield i, result

    def share(self, value):
        """A handle on ``value`` to pass in ``args`` (here: the value itself)."""
        return value


class DaskExecutor:
    """Run units as tasks on a Dask cluster; results come back here as they complete.

    Parameters
    ----------
    client : dask.distributed.Client
    threads_per_worker : int
        Numba and BLAS threads in each worker process (set by the :class:`WorkerSetup`
        plugin, which also compiles the kernels before the worker's first task).
    """

    name = "dask"

    def __init__(self, client, threads_per_worker: int = 1):
        self.client = client
        self.threads_per_worker = int(threads_per_worker)
        from ._dask import WorkerSetup
        client.register_plugin(WorkerSetup(self.threads_per_worker), name=WorkerSetup.name)

    @property
    def n_workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def share(self, value):
        """Send ``value`` to the cluster once; pass the returned future in ``args``."""
        return self.client.scatter(value, broadcast=True, hash=False)

    def map(self, fn: Callable, args: Iterable[tuple], names: Sequence[str]) -> Iterator[tuple[int, object]]:
        """Submit every unit; yield ``(i, result)`` or ``(i, TaskFailure)`` as tasks complete."""
        from distributed import as_completed
        tag = uuid.uuid4().hex[:8]
        futures = [self.client.submit(fn, *a, key=f"gradlab-{tag}-{i}", pure=False, retries=0)
                   for i, a in enumerate(args)]          # keys by position: names need not be unique
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for future in as_completed(futures):
                i = index[future.key]
                if future.status == "finished":
                    result = future.result()
                else:           # "error", or "cancelled"/"lost": reported like a failing unit
                    try:
                        exc, tb = future.exception(), future.traceback()
                    except Exception as other:  # noqa: BLE001 - a cancelled future has no exception of its own
                        exc, tb = other, None
                    result = TaskFailure.from_exception(names[i], exc, tb)
                future.release()
                yield i, result
        finally:
            for f in futures:
                f.cancel()


@contextlib.contextmanager
def executor(workers: int | None = None, scheduler: str | None = None, threads_per_worker: int | None = None,
             client=None):
    """The executor the command line's options ask for, closed on exit.

    Parameters
    ----------
    workers : int, optional
        A local Dask cluster of this many worker processes on this machine.
    scheduler : str, optional
        Address of an existing scheduler (``tcp://host:8786``); default ``$DASK_SCHEDULER_ADDRESS``.
    threads_per_worker : int, optional
        Numba/BLAS threads per worker; default 1, or all cores for a local cluster of one worker.
    client : dask.distributed.Client, InProcess or DaskExecutor, optional
        Use this client (its cluster is left running), or an executor already made (a runner
        called by another runner shares its executor).

    Yields
    ------
    InProcess or DaskExecutor
        ``InProcess`` when none of the above is given.
    """
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"--workers must be an integer >= 1; received {workers!r}")
    if workers is not None and scheduler is not None:
        raise ValueError(f"give either --workers (a local cluster) or --scheduler (an existing one, "
                         f"also ${SCHEDULER_ENV}), not both; received --workers {workers} and {scheduler!r}")
    if threads_per_worker is not None and (not isinstance(threads_per_worker, int) or threads_per_worker < 1):
        raise ValueError(f"--threads-per-worker must be an integer >= 1; received {threads_per_worker!r}")
    if isinstance(client, (InProcess, DaskExecutor)):   # a runner inside another runner: the same executor
        yield client
        return
    if client is not None:
        yield DaskExecutor(client, threads_per_worker or 1)
        return
    if workers is None and scheduler is None:
        if threads_per_worker is not None:
            raise ValueError(f"--threads-per-worker {threads_per_worker} needs a Dask cluster: give --workers N "
                             f"or --scheduler ADDRESS (or ${SCHEDULER_ENV}); in this process gradlab uses "
                             "NUMBA_NUM_THREADS")
        yield InProcess()
        return
    from distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            own = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler: cannot reach the Dask scheduler at {scheduler!r} ({exc}); start one "
                             "(`dask scheduler`) or check the address") from None
        try:
            yield DaskExecutor(own, threads_per_worker or 1)
        finally:
            own.close()
        return
    threads = threads_per_worker or (1 if workers > 1 else (os.cpu_count() or 1))
    env = {var: str(threads) for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                         "MKL_NUM_THREADS")}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           env=env, silence_logs=40)
    own = Client(cluster)
    try:
        yield DaskExecutor(own, threads)
    finally:
        own.close()
        cluster.close()
