"""Numba settings, defined once.

``fastmath`` stays off: tests assert that truncated sums equal full ones to
rounding, and NaN/inf must stay visible. ``cache=True`` keeps compiled kernels
on disk (next to the sources, or in ``NUMBA_CACHE_DIR``) so the compile cost is
paid once per machine, not once per process.
"""
JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
PARALLEL_JIT = dict(JIT, parallel=True)

#: Output-layer tile: this many losses have their logits (tile x |O| floats) in
#: cache at once.  64 x 2000 float64 is 1 MiB, the size of L2 on small machines.
OUTPUT_TILE = 32

#: Work is split into this many fixed groups (not one per thread), each reduced
#: into its own buffer and merged in a fixed order, so results are identical
#: with any number of threads.
N_GROUPS = 16
