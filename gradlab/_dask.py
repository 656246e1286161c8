"""The Dask worker plugin (imported only where a Dask executor is used: importing distributed is slow)."""
from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin


class WorkerSetup(WorkerPlugin):
    """Before a worker's first task: limit Numba and BLAS to ``threads`` threads, then compile
    (or load from Numba's on-disk cache) every kernel."""

    idempotent = False      # registering again (another --threads-per-worker) sets the workers up again
    name = "gradlab-setup"

    def __init__(self, threads: int = 1):
        self.threads = int(threads)

    def setup(self, worker=None):
        from .engine import warmup
        from .executor import limit_threads
        limit_threads(self.threads)
        warmup()
