"""Checks at the public boundary.

Every public function converts its inputs once, through these helpers, into the
contiguous arrays that the kernels expect. Messages name the parameter, what was
expected, what was received and, where it helps, what to do.
"""
from __future__ import annotations

import numbers

import numpy as np


#: The floating-point types a model computes in (``RNN(..., dtype=)``); float64 is the default.
DTYPES = ("float64", "float32")


def check_dtype(value, name: str = "dtype") -> np.dtype:
    """Return ``value`` ("float32", np.float32, "float64", ...) as a numpy dtype, float32 or float64 only."""
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if value is None or dt is None or dt.name not in DTYPES:
        raise TypeError(f"{name} must be one of {DTYPES} (or np.float32 / np.float64); received {value!r}")
    return dt


def as_float_matrix(value, name: str, shape: tuple[int | None, int | None] | None = None,
                    dtype=np.float64) -> np.ndarray:
    """Return ``value`` as a C-contiguous ``dtype`` matrix (float64 by default), checking shape and finiteness."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise TypeError(f"{name} must be a real-valued array; received dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix; received an array with shape {arr.shape}")
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise ValueError(f"{name} must have shape {_fmt_shape(shape)}; received {arr.shape} "
                                 f"(axis {axis} is {got}, expected {want})")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains a non-finite value ({float(arr[tuple(bad)])!r} at index {tuple(int(i) for i in bad)}); "
                         "the model has diverged or was loaded from a corrupt file")
    return arr


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"


def as_id_array(value, name: str) -> np.ndarray:
    """Return a 1-D int64 array of ids; floats that are not whole numbers are rejected."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of integer ids; received shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "iu":
        return np.ascontiguousarray(arr, dtype=np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return np.ascontiguousarray(arr, dtype=np.int64)
    raise TypeError(f"{name} must hold integer ids; received dtype {arr.dtype}")


def check_ids_in_range(ids: np.ndarray, upper: int, name: str, where=None) -> None:
    """Raise if any id is outside ``[0, upper)``; ``where(i)`` describes position i."""
    if ids.size == 0:
        return
    bad = np.flatnonzero((ids < 0) | (ids >= upper))
    if bad.size:
        i = int(bad[0])
        loc = where(i) if where is not None else f"position {i}"
        raise IndexError(f"{name} holds id {int(ids[i])} at {loc}, outside the valid range 0..{upper - 1} "
                         f"({bad.size} such id(s) in all); check the vocabulary or the model size")


def check_int(value, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an int, rejecting bools, floats and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; received {value!r} of type {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; received {value}")
    return value
