"""Numba settings and parallel execution, defined once.

Kernels are serial ``@njit(nogil=True)`` functions over a range of sentences (or
tiles, or lags). Parallelism comes from running fixed ranges on a thread pool:
the split never depends on the number of threads and every reduction is merged
in a fixed order, so results are bitwise identical with 1 or N threads. Serial
kernels also compile several times faster than ``parallel=True`` ones.

``fastmath`` stays off: tests assert that truncated sums equal full ones to
rounding, and NaN/inf must stay visible. ``cache=True`` keeps compiled kernels on
disk (beside the sources, or in ``NUMBA_CACHE_DIR``) so compile cost is paid once
per machine, not once per process.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

#: The softmax's exp polynomial only: lets LLVM fuse a * b + c into one FMA (one rounding
#: instead of two: as accurate, and about twice as fast). No reassociation, no
#: finite-math assumptions; nothing that sums contributions is compiled with it.
JIT_CONTRACT = dict(JIT, fastmath={"contract"})

#: Losses per output-layer tile: the tile's logits (tile x |O| floats) stay in cache
#: while they become probabilities and delta_out.
OUTPUT_TILE = 64

#: The output layer's losses are split into this many fixed groups, each reduced
#: into its own dW buffer and merged in order.
N_GROUPS = 16

#: Sentences are split into this many fixed chunks for the per-sentence kernels.
N_CHUNKS = 32

#: The lockstep recurrences (forward states, accumulated signals) run on at most this many
#: fixed chunks of sentences, of at least LOCKSTEP_MIN_SENTENCES each: few enough that each
#: step's matrix product has many rows, enough for the threads to share.
N_LOCKSTEP_CHUNKS = 8
LOCKSTEP_MIN_SENTENCES = 32


def lockstep_ranges(n_sentences: int) -> list[tuple[int, int]]:
    """The fixed sentence chunks of the lockstep recurrences (they depend on the batch only)."""
    return ranges(n_sentences, min(N_LOCKSTEP_CHUNKS, max(1, n_sentences // LOCKSTEP_MIN_SENTENCES)))

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


_threads: int | None = None


def set_threads(n: int | None) -> None:
    """Run gradlab's kernels on ``n`` threads in this whole process (None: Numba's setting again).

    ``numba.set_num_threads`` holds only for the thread that calls it; a Dask worker sets
    its processes' thread count here, once, for the threads that will run its tasks.
    """
    global _threads
    _threads = None if n is None else max(1, int(n))


def n_threads() -> int:
    """Worker threads: :func:`set_threads`, else Numba's thread setting (``NUMBA_NUM_THREADS``,
    ``numba.set_num_threads``)."""
    if _threads is not None:
        return _threads
    import numba
    return max(1, int(numba.get_num_threads()))


def run_parallel(fn, n_tasks: int) -> list:
    """``[fn(0), ..., fn(n_tasks - 1)]``, run on ``n_threads()`` threads; results in task order."""
    workers = min(n_threads(), n_tasks)
    if workers <= 1:
        return [fn(i) for i in range(n_tasks)]
    global _pool, _pool_size
    if _pool is None or _pool_size < workers:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gradlab")
        _pool_size = workers
    return list(_pool.map(fn, range(n_tasks)))


def ranges(n: int, n_chunks: int) -> list[tuple[int, int]]:
    """Split 0..n into at most ``n_chunks`` contiguous, non-empty ranges (fixed for given n)."""
    n_chunks = max(1, min(n_chunks, n))
    bounds = [(i * n) // n_chunks for i in range(n_chunks + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(n_chunks) if bounds[i + 1] > bounds[i]]


_controller = None


@contextlib.contextmanager
def single_threaded_blas():
    """Our threads call BLAS at once: keep BLAS itself to one thread meanwhile."""
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  the BLAS that kernels call through Numba: limit it too
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        yield
