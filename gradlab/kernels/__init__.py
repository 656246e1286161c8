"""Numba kernels on plain arrays.

No validation happens here: callers (gradlab.engine) check every index and
shape first. Kernels take and return contiguous float64 / int64 arrays.
"""
