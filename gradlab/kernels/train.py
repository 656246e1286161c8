"""Fused SGD: forward, backward and update of many minibatches in one compiled call.

The trainer (gradlab.train.trainer) used to make one engine call per minibatch (or
per block), with Python gathering batches, allocating gradients and applying the
update in between. ``sgd_minibatches`` does the same work for a whole range of
minibatches without returning to Python, reusing the engine's kernels
(``forward_states``, ``output_tiles``, ``injected_errors``, ``accumulate_deltas``)
and the same BLAS products in the same order, so it follows the step-by-step
trajectory to rounding: bitwise for minibatches of at most ``OUTPUT_TILE`` losses and
fewer than 2 x ``LOCKSTEP_MIN_SENTENCES`` sentences (the engine runs larger ones as
several lockstep chunks, this kernel as one) without clipping ... and in practice with
it, see ``pairwise_sum``.

Every scheme is one loop: a minibatch's sentences go through blocks of ``k1``
steps in lockstep; block [b0, b1) is one update with the gradient of its losses
carried back to w0 = max(0, b0 - back), each loss at most ``tau`` steps (a
non-block scheme is one block of unlimited length with w0 = 0: ``Full()`` has
tau unlimited, ``Sliding(tau)`` its tau; block schemes have tau unlimited). The
lag limit is an argument of every call, so a scheme that changes tau between
updates (chosen between calls) needs nothing else.
"""
import numpy as np
from numba import njit

from .._config import JIT
from .backward import accumulate_deltas, injected_errors
from .forward import forward_states
from .output import output_tiles

#: status codes written to ``fail[0]``
OK, LOSS_NOT_FINITE, PARAMS_NOT_FINITE = 0, 1, 2

_PW_BLOCK = 128


@njit(**JIT)
def _block_sum(a, lo, n):
    """NumPy's pairwise sum of at most ``_PW_BLOCK`` elements: eight running sums, then the rest."""
    if n < 8:
        res = a.dtype.type(0.0)  # accumulate in a's type, as NumPy does
        for i in range(n):
            res += a[lo + i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(**JIT)
def pairwise_sum(a, lo, n):
    """sum(a[lo:lo + n]) in NumPy's pairwise order (``np.sum`` of a contiguous float64 array).

    Used for the quantities the step-by-step trainer sums with ``np.sum`` (a
    minibatch's loss, the squared norm that decides clipping), so both paths make
    the same decisions from the same numbers. NumPy halves a range longer than
    ``_PW_BLOCK`` (the first half a multiple of 8) and adds the halves; the halving
    runs on an explicit stack here, because Numba's on-disk cache cannot reload
    recursive functions.
    """
    if n <= _PW_BLOCK:
        return _block_sum(a, lo, n)
    s_lo = np.empty(64, dtype=np.int64)
    s_n = np.empty(64, dtype=np.int64)
    s_stage = np.empty(64, dtype=np.int64)  # 0: not split yet, 1: left half pending, 2: right half pending
    s_left = np.empty(64, dtype=a.dtype)
    sp = 0
    s_lo[0] = lo
    s_n[0] = n
    s_stage[0] = 0
    while True:
        if s_n[sp] > _PW_BLOCK:
            n2 = s_n[sp] // 2
            n2 -= n2 % 8
            s_stage[sp] = 1
            sp += 1
            s_lo[sp] = s_lo[sp - 1]
            s_n[sp] = n2
            s_stage[sp] = 0
            continue
        v = _block_sum(a, s_lo[sp], s_n[sp])
        sp -= 1
        while True:
            if sp < 0:
                return v
            if s_stage[sp] == 1:
                s_left[sp] = v
                s_stage[sp] = 2
                n2 = s_n[sp] // 2
                n2 -= n2 % 8
                sp += 1
                s_lo[sp] = s_lo[sp - 1] + n2
                s_n[sp] = s_n[sp - 1] - n2
                s_stage[sp] = 0
                break
            v = s_left[sp] + v
            sp -= 1


@njit(**JIT)
def _sum_squares(a, buf):
    """np.sum(a * a) for a C-contiguous 2-d array ``a`` (``buf``: scratch of at least a.size)."""
    k = 0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            buf[k] = a[i, j] * a[i, j]
            k += 1
    return pairwise_sum(buf, 0, k)


@njit(**JIT)
def _add_into(a, b):
    """a += b (2-d)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] += b[i, j]


@njit(**JIT)
def _divide(a, B):
    """a /= B (2-d)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] /= B


@njit(**JIT)
def _sorted_columns(cols, n, mark, out):
    """out[:n] = sorted(cols[:n]) (distinct word ids, each marked in ``mark``).

    Insertion sort for a few words; a scan of the marks (ids in order) when that is cheaper.
    (Numba's np.sort would add seconds to the cold compile.)
    """
    if n * n <= mark.size:
        for i in range(n):
            x = cols[i]
            j = i
            while j > 0 and out[j - 1] > x:
                out[j] = out[j - 1]
                j -= 1
            out[j] = x
        return
    k = 0
    for x in range(mark.size):
        if mark[x] >= 0:
            out[k] = x
            k += 1


@njit(**JIT)
def _split(n, n_chunks, c):
    """Bounds of chunk c of ``gradlab._config.ranges(n, n_chunks)`` (no empty chunks)."""
    k = max(1, min(n_chunks, n))
    return (c * n) // k, ((c + 1) * n) // k, k


@njit(**JIT)
def sgd_minibatches(U, VT, W, ids, targets, offsets, order, mb_start, m0, m1, k1, back, tau, lr, clip,
                    carry_after, code, update_limit, tile, n_groups, n_du_chunks,
                    mb_loss, mb_n_loss, mb_n_upd, mb_n_clip, fail):
    """Run minibatches m0..m1-1 of SGD in place on U, VT, W; return how many were done.

    Parameters
    ----------
    U : float64 (H, H); VT : float64 (n_vocab, H) (V transposed); W : float64 (n_out, H)
        Parameters, updated in place. Only the rows of VT of words in an update's
        window change. All three may be float32 instead: every workspace and product
        then is float32 too.
    ids, targets, offsets : int64
        The training data (targets -1: no loss).
    order : int64 (n,)
        This epoch's order of sentences; minibatch m is order[mb_start[m]:mb_start[m + 1]].
    mb_start : int64 (n_mb + 1,)
    m0, m1 : int
        Minibatches to run.
    k1 : int
        Block length (a huge value for non-block schemes: one block per sentence).
    back : int
        k2 - k1: how far before its block a block's losses are carried back.
    tau : int
        Lag limit of every loss inside its window (huge for full BPTT and block schemes).
    lr : float (a scalar of the parameters' type)
        Learning rate; the update is theta -= lr * g / B, g the window's summed gradient.
    clip : float
        Rescale g / B to this global norm when it is larger; <= 0: no clipping.
    carry_after : bool
        Block schemes: store a block's states computed after (True) or before its update.
    code : int
        Activation code.
    update_limit : int
        Stop after the first minibatch at which this call has made at least this many updates.
    tile, n_groups, n_du_chunks : int
        The engine's output tile, output groups and dU chunks (the same products in the same order).
    mb_loss, mb_n_loss, mb_n_upd, mb_n_clip : (n_mb,) float64 / int64
        Outputs per minibatch: summed loss (at the parameters before each update),
        number of losses, updates, clipped updates.
    fail : int64 (4,)
        Output: status (OK, LOSS_NOT_FINITE, PARAMS_NOT_FINITE), failing minibatch,
        block start, updates done in that minibatch before the failing one.

    Notes
    -----
    Per block: states of the window [w0, b1) from s(w0 - 1) (carried), losses and
    delta_out on tiles (logits = S W^T, softmax, dS = delta_out W, dW += delta_out^T S),
    delta(t, t) = dS o f', the signals accumulated back under the lag limit, dU =
    sum_j D[j] (x) s(j - 1), dV[:, x(j)] += D[j]; then g / B, clipping, and the update.
    """
    H = U.shape[0]
    n_out = W.shape[0]
    n_vocab = VT.shape[0]
    big = 0
    for m in range(m0, m1):
        tok = 0
        for r in range(mb_start[m], mb_start[m + 1]):
            i = order[r]
            tok += offsets[i + 1] - offsets[i]
        big = max(big, tok)
    B_max = 0
    for m in range(m0, m1):
        B_max = max(B_max, mb_start[m + 1] - mb_start[m])
    # workspaces, sized for the largest minibatch of the call, in the parameters' type
    dt = U.dtype
    Sw = np.empty((max(big, 1), H), dtype=dt)
    Sp = np.empty((max(big, 1), H), dtype=dt)
    E = np.empty((max(big, 1), H), dtype=dt)
    D = np.empty((max(big, 1), H), dtype=dt)
    stored = np.empty((max(big, 1), H), dtype=dt)
    Sblock = np.empty((max(big, 1), H), dtype=dt)
    ids_w = np.empty(max(big, 1), dtype=np.int64)
    ids_b = np.empty(max(big, 1), dtype=np.int64)
    lo_w = np.empty(max(big, 1), dtype=np.int64)
    t_w = np.empty(max(big, 1), dtype=np.int64)
    loss_pos = np.empty(max(big, 1), dtype=np.int64)
    d_loss = np.empty(max(big, 1), dtype=np.int64)
    losses = np.empty(max(big, 1), dtype=dt)
    dS = np.empty((max(big, 1), H), dtype=dt)
    off_w = np.empty(B_max + 1, dtype=np.int64)
    off_b = np.empty(B_max + 1, dtype=np.int64)
    S0w = np.zeros((B_max, H), dtype=dt)
    S0b = np.zeros((B_max, H), dtype=dt)
    first = np.empty(B_max, dtype=np.int64)  # row of each minibatch sentence in ``stored``
    active = np.empty(B_max, dtype=np.int64)
    St = np.empty((tile, H), dtype=dt)
    L = np.empty((tile, n_out), dtype=dt)
    dW = np.empty((n_out, H), dtype=dt)
    dWg = np.empty((n_out, H), dtype=dt)
    tmpW = np.empty((n_out, H), dtype=dt)
    dU = np.empty((H, H), dtype=dt)
    tmpU = np.empty((H, H), dtype=dt)
    UT = np.empty((H, H), dtype=dt)
    for h in range(H):
        for c in range(H):
            UT[c, h] = U[h, c]
    dVT = np.zeros((n_vocab, H), dtype=dt)
    mark = np.empty(n_vocab, dtype=np.int64)
    for x in range(n_vocab):
        mark[x] = -1
    cols = np.empty(max(big, 1), dtype=np.int64)
    cs = np.empty(max(big, 1), dtype=np.int64)
    sq = np.empty(max(n_out * H, H * max(big, 1), H * H), dtype=dt)
    updates = 0
    fail[0] = OK
    for m in range(m0, m1):
        r0 = mb_start[m]
        B = mb_start[m + 1] - r0
        maxlen = 0
        row = 0
        for j in range(B):
            i = order[r0 + j]
            T = offsets[i + 1] - offsets[i]
            first[j] = row
            row += T
            maxlen = max(maxlen, T)
        loss_sum = 0.0
        n_loss_mb = 0
        n_upd = 0
        n_clip = 0
        b0 = 0
        while b0 < maxlen:
            w0 = max(0, b0 - back)
            keep = b0 + k1 < maxlen  # a later block reads this block's states
            # ---- the window [w0, b1) and the block [b0, b1) of every active sentence
            na = 0
            nw = 0
            nb = 0
            nl = 0
            for j in range(B):
                i = order[r0 + j]
                a = offsets[i]
                T = offsets[i + 1] - a
                if T <= b0:
                    continue
                e = min(b0 + k1, T)
                active[na] = j
                off_w[na] = nw
                off_b[na] = nb
                for t in range(w0, e):
                    p = a + t
                    ids_w[nw] = ids[p]
                    t_w[nw] = t - w0
                    if t >= b0 and targets[p] >= 0:
                        loss_pos[nl] = nw
                        d_loss[nl] = targets[p]
                        nl += 1
                    nw += 1
                for t in range(b0, e):
                    ids_b[nb] = ids[a + t]
                    nb += 1
                for h in range(H):
                    S0w[na, h] = stored[first[j] + w0 - 1, h] if w0 > 0 else 0.0
                    S0b[na, h] = stored[first[j] + b0 - 1, h] if b0 > 0 else 0.0
                na += 1
            off_w[na] = nw
            off_b[na] = nb
            same = back == 0 or w0 == b0  # the window is the block
            if keep and (nl == 0 or not carry_after):
                if same and nl > 0:
                    forward_states(UT, VT, ids_w, off_w, code, S0w, Sw, 0, na)
                    _store(Sw, off_w, active, first, b0, na, stored)
                else:
                    forward_states(UT, VT, ids_b, off_b, code, S0b, Sblock, 0, na)
                    _store(Sblock, off_b, active, first, b0, na, stored)
            if nl > 0:
                if not (same and keep and not carry_after):
                    forward_states(UT, VT, ids_w, off_w, code, S0w, Sw, 0, na)
                # ---- output layer on tiles, grouped as the engine groups them
                n_g = max(1, min(n_groups, -(-nl // tile), nl))
                for g in range(n_g):
                    g_lo, g_hi, _ = _split(nl, n_g, g)
                    acc = dW if g == 0 else dWg  # the first group's sum is dW itself (0 + x = x)
                    output_tiles(Sw, loss_pos, W, d_loss, losses, dS, acc, tmpW, L, St, g_lo, g_hi, True)
                    if g > 0:
                        _add_into(dW, dWg)
                loss = pairwise_sum(losses, 0, nl)
                if not np.isfinite(loss):
                    mb_loss[m] = loss
                    fail[0] = LOSS_NOT_FINITE
                    fail[1] = m
                    fail[2] = b0
                    fail[3] = n_upd
                    return m - m0
                # ---- backward: delta(t, t), accumulated signals, dU, dV
                for r in range(nw):
                    lo_w[r] = -1
                for r in range(nl):
                    p = loss_pos[r]
                    lo_w[p] = p - min(tau, t_w[p])
                injected_errors(dS[:nl], Sw, loss_pos[:nl], code, E)
                for r in range(nw):
                    for h in range(H):
                        D[r, h] = 0.0
                accumulate_deltas(U, Sw, E, lo_w, off_w, code, D, 0, na)
                for r in range(nw):
                    for h in range(H):
                        Sp[r, h] = Sw[r - 1, h]
                for s in range(na):
                    for h in range(H):
                        Sp[off_w[s], h] = S0w[s, h]
                for c in range(n_du_chunks):
                    if c >= min(n_du_chunks, nw):
                        break
                    c_lo, c_hi, _ = _split(nw, n_du_chunks, c)
                    if c == 0:
                        np.dot(D[c_lo:c_hi].T, Sp[c_lo:c_hi], dU)
                    else:
                        np.dot(D[c_lo:c_hi].T, Sp[c_lo:c_hi], tmpU)
                        _add_into(dU, tmpU)
                n_cols = 0
                for r in range(nw):
                    x = ids_w[r]
                    if mark[x] < 0:
                        mark[x] = n_cols
                        cols[n_cols] = x
                        n_cols += 1
                        for h in range(H):
                            dVT[x, h] = 0.0
                    for h in range(H):
                        dVT[x, h] += D[r, h]
                if clip > 0.0:  # the clipping norm sums V's columns in sorted order, as NumPy's V[:, unique ids]
                    _sorted_columns(cols, n_cols, mark, cs)
                else:  # the update itself is elementwise: any order
                    for c in range(n_cols):
                        cs[c] = cols[c]
                for c in range(n_cols):
                    mark[cols[c]] = -1
                # ---- theta -= lr * g / B, clipped; the same operations as the step-by-step trainer
                if B != 1:
                    _divide(dU, B)
                    _divide(dW, B)
                    for c in range(n_cols):
                        for h in range(H):
                            dVT[cs[c], h] /= B
                factor = 1.0
                clipped = False
                if clip > 0.0:
                    k = 0
                    for h in range(H):  # V[:, cols] row by row, as np.sum reads it
                        for c in range(n_cols):
                            v = dVT[cs[c], h]
                            sq[k] = v * v
                            k += 1
                    v2 = pairwise_sum(sq, 0, k)
                    norm = np.sqrt(_sum_squares(dU, sq) + v2 + _sum_squares(dW, sq))
                    if norm > clip:
                        factor = clip / norm
                        clipped = True
                f = dt.type(factor)  # rounded to the parameters' type, as NumPy rounds a Python float
                n_bad = _apply(U.reshape(H * H), dU.reshape(H * H), clipped, f, lr)
                for c in range(n_cols):
                    n_bad += _apply(VT[cs[c]], dVT[cs[c]], clipped, f, lr)
                n_bad += _apply(W.reshape(n_out * H), dW.reshape(n_out * H), clipped, f, lr)
                bad = n_bad > 0
                for h in range(H):
                    for c in range(H):
                        UT[c, h] = U[h, c]
                if bad:
                    fail[0] = PARAMS_NOT_FINITE
                    fail[1] = m
                    fail[2] = b0
                    fail[3] = n_upd
                    return m - m0
                loss_sum += loss
                n_loss_mb += nl
                n_upd += 1
                if clipped:
                    n_clip += 1
            if keep and nl > 0 and carry_after:
                forward_states(UT, VT, ids_b, off_b, code, S0b, Sblock, 0, na)
                _store(Sblock, off_b, active, first, b0, na, stored)
            b0 += k1
        mb_loss[m] = loss_sum
        mb_n_loss[m] = n_loss_mb
        mb_n_upd[m] = n_upd
        mb_n_clip[m] = n_clip
        updates += n_upd
        if updates >= update_limit:
            return m + 1 - m0
    return m1 - m0


@njit(**JIT)
def _apply(theta, g, clipped, factor, lr):
    """theta -= lr * (factor * g) (clipped) or theta -= lr * g; return how many entries became inf or NaN.

    The step-by-step trainer's operations, in the same order. ``x - x`` is 0 for a
    finite x and NaN otherwise: the check rides along in the same (vectorised) pass.
    """
    n_bad = 0
    if clipped:
        for i in range(theta.size):
            x = theta[i] - (g[i] * factor) * lr
            theta[i] = x
            n_bad += (x - x) != 0.0
    else:
        for i in range(theta.size):
            x = theta[i] - g[i] * lr
            theta[i] = x
            n_bad += (x - x) != 0.0
    return n_bad


@njit(**JIT)
def _store(S, off, active, first, t0, na, stored):
    """stored[first[j] + t0 + r] = S[off[s] + r] for the rows of every active sentence s (= minibatch j)."""
    H = S.shape[1]
    for s in range(na):
        base = first[active[s]] + t0
        for r in range(off[s + 1] - off[s]):
            for h in range(H):
                stored[base + r, h] = S[off[s] + r, h]
