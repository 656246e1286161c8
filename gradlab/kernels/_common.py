"""Scalar and row helpers shared by the kernels (inlined into them)."""
import math

import numpy as np
from numba import njit

from .._config import JIT, JIT_CONTRACT

SIGMOID, TANH, RELU, IDENTITY = 0, 1, 2, 3

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# Taylor coefficients 1/k!, k = 2..13: on |r| <= ln2/2 the truncation error is below 1e-17.
_C = [1.0 / math.factorial(k) for k in range(14)]
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = _C[2:]


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


@njit(**JIT_CONTRACT)
def softmax_inplace(row, nbuf, pbuf, normalise=True):
    """Replace ``row`` (logits) by softmax(row); return log of the normaliser, max subtracted.

    With ``normalise=False`` ``row`` is left unnormalised (exp(logit - max)) and only the
    normaliser, the same bits, is returned: all a loss without its gradient needs.

    exp is evaluated as 2^n * p(r) with a degree-13 polynomial and the power of two
    built from its bits, so that every loop vectorises (Numba's scalar exp does not);
    the result is within a few ulp of ``numpy.exp``. NaN logits propagate. Compiled with
    FMA contraction only (``JIT_CONTRACT``).

    Returns
    -------
    log_z : float
        log(sum(exp(row - max))) + max, so that -log y[d] = log_z - logit[d].
    """
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
    mx = max(max(m0, m1), max(m2, m3))
    if not np.isfinite(mx):
        # A non-finite logit: fall back to plain exp so NaN/inf show up as they are.
        for o in range(n_out):
            row[o] = math.exp(row[o] - mx)
        total = row.sum()
        for o in range(n_out):
            row[o] /= total
        return math.log(total) + mx
    for o in range(n_out):
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
    scale = nbuf.view(np.float64)
    # y = p * 2^n, summed in eight partial sums in a fixed order (vectorisable, deterministic)
    t0 = t1 = t2 = t3 = t4 = t5 = t6 = t7 = 0.0
    o = 0
    while o + 8 <= n_out:
        v0 = pbuf[o] * scale[o]
        v1 = pbuf[o + 1] * scale[o + 1]
        v2 = pbuf[o + 2] * scale[o + 2]
        v3 = pbuf[o + 3] * scale[o + 3]
        v4 = pbuf[o + 4] * scale[o + 4]
        v5 = pbuf[o + 5] * scale[o + 5]
        v6 = pbuf[o + 6] * scale[o + 6]
        v7 = pbuf[o + 7] * scale[o + 7]
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
        v0 = pbuf[o] * scale[o]
        row[o] = v0
        t0 += v0
        o += 1
    total = ((t0 + t1) + (t2 + t3)) + ((t4 + t5) + (t6 + t7))
    if normalise:
        inv = 1.0 / total
        for o in range(n_out):
            row[o] *= inv
    return math.log(total) + mx
