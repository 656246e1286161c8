"""Scalar and row helpers shared by the kernels (inlined into them)."""
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .._config import JIT, JIT_CONTRACT

SIGMOID, TANH, RELU, IDENTITY = 0, 1, 2, 3

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# Taylor coefficients 1/k!, k = 2..13: on |r| <= ln2/2 the truncation error is below 1e-17.
_C = [1.0 / math.factorial(k) for k in range(14)]
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = _C[2:]

# float32 exp (Cephes expf): ln 2 split so that n * _LN2_HI32 is exact for |n| <= 127, and a degree-5
# minimax polynomial of (exp(r) - 1 - r) / r^2 on |r| <= ln2/2, about 1 ulp. np.float32 constants keep
# every operation in float32 (a Python float would promote it to float64).
_F32 = np.float32
_LOG2E32 = _F32(1.44269504088896341)
_LN2_HI32 = _F32(0.693359375)
_LN2_LO32 = _F32(-2.12194440e-4)
_X_MIN32 = _F32(-87.0)          # exp(-87) ~ 1.6e-38, the smallest power 2^-125 stays a normal float32
_HALF32 = _F32(0.5)
_ONE32 = _F32(1.0)
_P0, _P1, _P2, _P3, _P4, _P5 = (_F32(1.9875691500e-4), _F32(1.3981999507e-3), _F32(8.3334519073e-3),
                                _F32(4.1665795894e-2), _F32(1.6666665459e-1), _F32(5.0000001201e-1))


@njit(inline="always", **JIT)
def activate(net, code):
    """f(net) for the activation ``code``."""
    if code == SIGMOID:
        return 1.0 / (1.0 + math.exp(-net))
    if code == TANH:
        return math.tanh(net)
    if code == RELU:
        return net if net > 0.0 else 0.0
    return net


@njit(inline="always", **JIT)
def derivative_from_state(s, code):
    """f'(net) written in terms of s = f(net): s(1-s), 1-s^2, [s > 0] (relu: f'(0) = 0), or 1 (identity)."""
    if code == SIGMOID:
        return s * (1.0 - s)
    if code == TANH:
        return 1.0 - s * s
    if code == RELU:
        return 1.0 if s > 0.0 else 0.0
    return 1.0


@njit(**JIT)
def lockstep_order(offsets):
    """Sentences longest first (``order``), their first flat positions and all lengths: the lockstep
    kernels' layout, where the sentences still running at step t are a prefix (``running``)."""
    n = offsets.size - 1
    lengths = offsets[1:] - offsets[:-1]
    order = np.argsort(-lengths, kind="mergesort")
    start = np.empty(n, dtype=np.int64)
    for r in range(n):
        start[r] = offsets[order[r]]
    return order, start, lengths


@njit(inline="always", **JIT)
def running(active, span, order, t):
    """Lockstep rows are sorted longest first (``order``); of the first ``active``, how many have
    ``span`` > t: the rows still running at step (or lag) t are always a prefix."""
    while active > 0 and span[order[active - 1]] <= t:
        active -= 1
    return active


#: Below this many rows ``rows_times`` multiplies in its own loops: a BLAS call costs more
#: than a few matrix-vector products (per-sentence training runs one row at a time).
BLAS_MIN_ROWS = 4


@njit(inline="always", **JIT)
def rows_times(A, n, M, out):
    """out[:n] = A[:n] @ M for C-contiguous A, M, out of one dtype.

    One BLAS product for n >= ``BLAS_MIN_ROWS`` rows (the lockstep recurrences), else
    row by row: out[r] = sum over j of A[r, j] M[j] (a row of M at a time, vectorised).
    """
    if n >= BLAS_MIN_ROWS:
        np.dot(A[:n], M, out[:n])
        return
    m = M.shape[1]
    for r in range(n):
        for c in range(m):
            out[r, c] = 0.0
        for j in range(M.shape[0]):
            a = A[r, j]
            for c in range(m):
                out[r, c] += a * M[j, c]


def _softmax_row(row, nbuf, pbuf, normalise):
    """:func:`_softmax32` for a float32 row, else :func:`_softmax64`: chosen when compiled code is typed
    (the overload below), or here when the kernels run as plain Python (``NUMBA_DISABLE_JIT=1``)."""
    if row.dtype == np.float32:
        return _softmax32(row, nbuf, pbuf, normalise)
    return _softmax64(row, nbuf, pbuf, normalise)


@overload(_softmax_row)
def _softmax_row_typed(row, nbuf, pbuf, normalise):
    if isinstance(row, types.Array) and row.dtype == types.float32:
        return lambda row, nbuf, pbuf, normalise: _softmax32(row, nbuf, pbuf, normalise)
    return lambda row, nbuf, pbuf, normalise: _softmax64(row, nbuf, pbuf, normalise)


@njit(**JIT)
def softmax_inplace(row, nbuf, pbuf, normalise=True):
    """Replace ``row`` (logits) by softmax(row); return log of the normaliser, max subtracted.

    With ``normalise=False`` ``row`` is left unnormalised (exp(logit - max)) and only the
    normaliser, the same bits, is returned: all a loss without its gradient needs.

    exp is evaluated as 2^n * p(r) with a polynomial and the power of two built from
    its bits, so that every loop vectorises (Numba's scalar exp does not); the result
    is within a few ulp of ``numpy.exp`` in the row's type. float64 rows use a degree-13
    polynomial (:func:`_softmax64`), float32 rows a float32 one (:func:`_softmax32`),
    chosen when the kernel is compiled. NaN logits propagate.

    Parameters
    ----------
    row : float64 or float32 (n_out,)
    nbuf : int64 (n_out,), pbuf : float64 (n_out,)
        Scratch (a float32 row uses them as int32 / float32 buffers).

    Returns
    -------
    log_z : float
        log(sum(exp(row - max))) + max, so that -log y[d] = log_z - logit[d].
    """
    return _softmax_row(row, nbuf, pbuf, normalise)


@njit(inline="always", **JIT)
def _row_max(row):
    """max(row) with four running maxima (NaN-safe as Python's max; a NaN logit shows up downstream)."""
    n_out = row.size
    m0 = row[0]
    m1 = m0
    m2 = m0
    m3 = m0
    o = 0
    while o + 4 <= n_out:
        m0 = max(m0, row[o])
        m1 = max(m1, row[o + 1])
        m2 = max(m2, row[o + 2])
        m3 = max(m3, row[o + 3])
        o += 4
    while o < n_out:
        m0 = max(m0, row[o])
        o += 1
    return max(max(m0, m1), max(m2, m3))


@njit(inline="always", **JIT)
def _plain_softmax(row, mx):
    """A non-finite maximum: softmax with plain exp, so that NaN/inf show up as they are."""
    for o in range(row.size):
        row[o] = math.exp(row[o] - mx)
    total = row.sum()
    for o in range(row.size):
        row[o] /= total
    return math.log(total) + mx


@njit(inline="always", **JIT)
def _scale_and_normalise(row, pb, scale, normalise, mx):
    """row = p * 2^n, summed in float64 in eight partial sums in a fixed order (vectorisable,
    deterministic); normalised when asked. Returns log of the sum plus ``mx``."""
    n_out = row.size
    t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0.0
    o = 0
    while o + 8 <= n_out:
        v0 = pb[o] * scale[o]
        v1 = pb[o + 1] * scale[o + 1]
        v2 = pb[o + 2] * scale[o + 2]
        v3 = pb[o + 3] * scale[o + 3]
        v4 = pb[o + 4] * scale[o + 4]
        v5 = pb[o + 5] * scale[o + 5]
        v6 = pb[o + 6] * scale[o + 6]
        v7 = pb[o + 7] * scale[o + 7]
        row[o] = v0
        row[o + 1] = v1
        row[o + 2] = v2
        row[o + 3] = v3
        row[o + 4] = v4
        row[o + 5] = v5
        row[o + 6] = v6
        row[o + 7] = v7
        t0 += v0
        t1 += v1
        t2 += v2
        t3 += v3
        t4 += v4
        t5 += v5
        t6 += v6
        t7 += v7
        o += 8
    while o < n_out:
        v0 = pb[o] * scale[o]
        row[o] = v0
        t0 += v0
        o += 1
    total = ((t0 + t1) + (t2 + t3)) + ((t4 + t5) + (t6 + t7))
    if normalise:
        inv = row.dtype.type(1.0 / total)
        for o in range(n_out):
            row[o] *= inv
    return math.log(total) + mx


@njit(**JIT_CONTRACT)
def _softmax64(row, nbuf, pbuf, normalise):
    """:func:`softmax_inplace` of a float64 row: exp with a degree-13 polynomial, within a few ulp.
    Compiled with FMA contraction only (``JIT_CONTRACT``), helpers inlined."""
    mx = _row_max(row)
    if not np.isfinite(mx):
        return _plain_softmax(row, mx)
    for o in range(row.size):
        x = max(row[o] - mx, -708.0)
        n = math.floor(x * _LOG2E + 0.5)
        r = (x - n * _LN2_HI) - n * _LN2_LO
        p = _C13
        p = p * r + _C12
        p = p * r + _C11
        p = p * r + _C10
        p = p * r + _C9
        p = p * r + _C8
        p = p * r + _C7
        p = p * r + _C6
        p = p * r + _C5
        p = p * r + _C4
        p = p * r + _C3
        p = p * r + _C2
        p = p * r + 1.0
        p = p * r + 1.0
        pbuf[o] = p
        nbuf[o] = (np.int64(n) + 1023) << 52
    return _scale_and_normalise(row, pbuf, nbuf.view(np.float64), normalise, mx)


@njit(**JIT_CONTRACT)
def _softmax32(row, nbuf, pbuf, normalise):
    """:func:`softmax_inplace` of a float32 row, in float32 (twice the lanes of float64).

    exp(x) = 2^n * p(r), x = n ln2 + r (Cephes ``expf``: within about 1 ulp of the exact
    value, 2 of ``numpy.exp`` in float32; x clamped at -87 as float64's is at -708). The
    exponentials are summed in float64, so the normaliser and the loss carry no float32
    summation error. Compiled with FMA contraction only, helpers inlined.
    """
    nb = nbuf.view(np.int32)
    pb = pbuf.view(np.float32)
    mx = _row_max(row)
    if not np.isfinite(mx):
        return _plain_softmax(row, mx)
    for o in range(row.size):
        x = max(row[o] - mx, _X_MIN32)
        n = np.floor(x * _LOG2E32 + _HALF32)
        r = (x - n * _LN2_HI32) - n * _LN2_LO32
        p = _P0
        p = p * r + _P1
        p = p * r + _P2
        p = p * r + _P3
        p = p * r + _P4
        p = p * r + _P5
        pb[o] = (p * (r * r) + r) + _ONE32
        nb[o] = (np.int32(n) + 127) << 23
    return _scale_and_normalise(row, pb, nb.view(np.float32), normalise, mx)
