"""Public engine: forward pass, gradients under any truncation scheme, contributions.

Each function validates its inputs once, converts them to the contiguous arrays
the kernels expect, calls the kernels and wraps the result. The maths is in
docs/maths.md; the gradients are dJ/dU, dJ/dV, dJ/dW of the batch's total loss
J = sum of J(t) (not averaged, and with the gradient's sign — the coursework's
update directions are their negatives, see ``gradlab.compat.coursework``).

The front functions :func:`forward`, :func:`gradient`, :func:`contributions` and
:func:`sentence_gaps` also take a :class:`gradlab.CellModel` (GRU, LSTM, linear
recurrence) and hand it to ``gradlab.cell_engine`` (``sentence_gaps``:
``gradlab.analysis.gap.cell_sentence_gaps``), with the options that apply to cells;
their results are then the cell engine's (``CellForward``, ``CellContributions``).

Arrays are documented as float64, the default; a float32 model (``RNN(..., dtype="float32")``)
is computed in float32 and every returned array is float32 (totals such as ``loss`` are
Python floats either way).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from . import _config
from ._validate import as_float_matrix, as_id_array, check_ids_in_range, check_int
from .batch import NO_LOSS, Batch, offsets_from_lengths
from .cellmodel import CellModel
from .cells import ELMAN, Cell, activation as _activation
from .model import RNN, activation_code
from .schemes import Full, Scheme, Sliding, parse_scheme

__all__ = ["ForwardResult", "Gradient", "Contributions", "SentenceGaps", "forward", "gradient", "backpropagate",
           "contributions", "sentence_gaps", "dependency_deltas", "state_derivative", "warmup"]

_N_DU_CHUNKS = 4  # dU is summed over this many fixed token ranges
_N_ROW_CHUNKS = 4  # contributions' products run on this many fixed row ranges

_single_threaded_blas = _config.single_threaded_blas


# ---------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class ForwardResult:
    """Hidden states and losses of a batch.

    Attributes
    ----------
    s : float64 (N, H)
        s(t) of every token, flat in batch order.
    losses : float64 (n_losses,)
        J(t) = -log y(t)[d(t)] of every step with a target, flat order.
    loss_positions : int64 (n_losses,)
        Flat position of each loss.
    probs : float64 (N, n_out) or None
        y(t) for every token, when asked for.
    """

    s: np.ndarray
    losses: np.ndarray
    loss_positions: np.ndarray
    probs: np.ndarray | None = None

    @property
    def loss(self) -> float:
        return float(self.losses.sum())

    @property
    def n_losses(self) -> int:
        return int(self.losses.size)


class Gradient:
    """dJ/dtheta of the batch's total loss under a truncation scheme, one array per parameter.

    ``Gradient(arrays, loss, n_losses, scheme)`` with ``arrays`` a dict {name: array}
    in the cell's order; for the Elman cell also ``Gradient(U, V, W, loss, n_losses, scheme)``.

    Attributes
    ----------
    arrays : dict of str to float64 array
        The gradient of each parameter by name (``as_dict()``); each is also an
        attribute: U : (H, H); V : (H, n_vocab); W : (n_out, H) for the Elman cell.
    loss : float
        Total loss J of the batch (the same for every scheme).
    n_losses : int
        Number of J(t) terms in it.
    scheme : str
        Label of the scheme that produced it ("full", "tbptt:3", ...).
    cell : gradlab.cells.Cell
        Names and order of the parameters.
    """

    __slots__ = ("arrays", "loss", "n_losses", "scheme", "cell")

    PARAMETERS = ELMAN.names

    def __init__(self, *args, cell: Cell = ELMAN, **kwargs):
        names = cell.names
        if args and isinstance(args[0], Mapping):
            arrays, rest = dict(args[0]), list(args[1:])
        else:
            arrays = dict(zip(names, args))
            rest = list(args[len(names):])
            arrays.update({n: kwargs.pop(n) for n in names if n in kwargs})
        if "arrays" in kwargs:
            arrays = dict(kwargs.pop("arrays"))
        if list(arrays) != list(names):
            raise ValueError(f"a Gradient holds the arrays {names} in that order; received {tuple(arrays)}")
        fields = dict(zip(("loss", "n_losses", "scheme"), rest))
        for key in ("loss", "n_losses", "scheme"):
            if key in kwargs:
                if key in fields:
                    raise TypeError(f"Gradient got two values for {key!r}")
                fields[key] = kwargs.pop(key)
        if kwargs or len(rest) > 3 or "loss" not in fields or "n_losses" not in fields:
            raise TypeError(f"Gradient(arrays, loss, n_losses, scheme='full'); received unexpected or missing "
                            f"arguments {sorted(kwargs) or rest[3:]}")
        set_ = object.__setattr__
        set_(self, "arrays", arrays)
        set_(self, "loss", fields["loss"])
        set_(self, "n_losses", fields["n_losses"])
        set_(self, "scheme", fields.get("scheme", "full"))
        set_(self, "cell", cell)

    def __setattr__(self, name, value):
        raise AttributeError(f"a Gradient is read-only; cannot set {name!r}")

    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "arrays")[name]
        except (KeyError, AttributeError):
            raise AttributeError(f"Gradient has no attribute {name!r}") from None

    def __reduce__(self):
        return (_gradient_from, (self.arrays, self.loss, self.n_losses, self.scheme, self.cell))

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}={a.shape}" for n, a in self.arrays.items())
        return f"Gradient({shapes}, loss={self.loss!r}, n_losses={self.n_losses!r}, scheme={self.scheme!r})"

    def as_dict(self, torch_names: bool = False) -> dict[str, np.ndarray]:
        """{name: array}; with ``torch_names`` keyed as the PyTorch modules' ``named_parameters()``,
        prefixed "rnn." and "linear." (``gradlab.cells.Cell.torch_names``; a ValueError for a cell
        without a PyTorch counterpart)."""
        if torch_names:
            names = self.cell.torch_names()
            return {names[n]: a for n, a in self.arrays.items()}
        return dict(self.arrays)

    def flat(self) -> np.ndarray:
        """All parameters' gradients as one vector (in the cell's order: U, V, W)."""
        return np.concatenate([a.ravel() for a in self.arrays.values()])

    def norm(self, parameter: str = "all") -> float:
        """Frobenius norm of one parameter's gradient, or of all of them together ("all")."""
        if parameter == "all":
            return float(np.sqrt(sum(np.sum(a * a) for a in self.arrays.values())))
        if parameter not in self.arrays:
            raise ValueError(f"parameter must be one of {tuple(self.arrays) + ('all',)}; received {parameter!r}")
        return float(np.linalg.norm(self.arrays[parameter]))


def _gradient_from(arrays, loss, n_losses, scheme, cell):
    return Gradient(arrays, loss, n_losses, scheme, cell=cell)


@dataclass(frozen=True, eq=False)
class Contributions:
    """What every loss sends back at every lag, and the per-lag sums.

    One row per (sentence, loss step t, lag k) with k = 0..min(t, K), ordered by
    sentence, then t, then k.

    Attributes
    ----------
    max_lag : int
        K.
    sentence, t, lag : int64 (n_pairs,)
    delta_norm : float64 (n_pairs,)
        ||delta(t, t-k)||.
    U_norm : float64 (n_pairs,)
        ||delta(t, t-k) (x) s(t-k-1)||_F = ||delta|| ||s(t-k-1)||.
    V_norm : float64 (n_pairs,) or None
        Norm of the contribution to V, which is delta itself placed in column x(t-k)
        (None when not asked for).
    G_U : float64 (K+1, H, H)
        G_U[k] = sum over losses t of delta(t, t-k) (x) s(t-k-1).
    G_VT : float64 (K_V+1, n_vocab, H) or None
        G_V[k] transposed (row x is column x of G_V[k]) for lags 0..K_V (K_V = K unless
        fewer were asked for); None when not asked for. See :attr:`G_V`.
    G_W : float64 (n_out, H)
        dJ/dW (lag 0 only, the same for every scheme).
    loss : float; n_losses : int
    """

    max_lag: int
    sentence: np.ndarray
    t: np.ndarray
    lag: np.ndarray
    delta_norm: np.ndarray
    U_norm: np.ndarray
    V_norm: np.ndarray
    G_U: np.ndarray
    G_VT: np.ndarray
    G_W: np.ndarray
    loss: float
    n_losses: int

    @property
    def G_V(self) -> np.ndarray | None:
        """G_V[k] = sum over losses t of delta(t, t-k) in column x(t-k); shape (K_V+1, H, n_vocab) (a view)."""
        return None if self.G_VT is None else np.swapaxes(self.G_VT, 1, 2)

    @property
    def v_max_lag(self) -> int:
        """The largest lag with a G_V[k] (-1 when G_V was not computed)."""
        return -1 if self.G_VT is None else self.G_VT.shape[0] - 1

    @property
    def n_pairs(self) -> int:
        return int(self.lag.size)

    def lag_sums(self) -> dict[str, np.ndarray]:
        """The per-lag sums by parameter name, for the parameters truncation acts on:
        {"U": G_U, "V": G_V} (V left out when it was not computed)."""
        sums = {"U": self.G_U, "V": self.G_V}
        return {name: sums[name] for name in ELMAN.truncated if sums[name] is not None}

    def truncated(self, tau: int) -> Gradient:
        """The sliding TBPTT(tau) gradient, sum over k <= tau of G[k] (tau <= K)."""
        tau = check_int(tau, "tau", 0)
        if tau > self.max_lag:
            raise ValueError(f"tau must be <= max_lag = {self.max_lag} of these contributions; received {tau}. "
                             "Compute contributions with a larger max_lag, or use gradient(model, batch, Sliding(tau))")
        if tau > self.v_max_lag:
            raise ValueError(f"tau = {tau} needs G_V up to lag {tau} but these contributions have it only up to "
                             f"lag {self.v_max_lag}; compute them with G_V=True (or G_V >= {tau})")
        arrays = {"U": self.G_U[: tau + 1].sum(axis=0), "V": self.G_VT[: tau + 1].sum(axis=0).T.copy(),
                  "W": self.G_W.copy()}
        return Gradient(arrays, self.loss, self.n_losses, f"tbptt:{tau}")

    def to_frame(self):
        """Tidy rows: sentence, t, lag, delta_norm, U_norm, V_norm (when computed)."""
        import pandas as pd
        cols = {"sentence": self.sentence, "t": self.t, "lag": self.lag, "delta_norm": self.delta_norm,
                "U_norm": self.U_norm}
        if self.V_norm is not None:
            cols["V_norm"] = self.V_norm
        return pd.DataFrame(cols)


# ---------------------------------------------------------------------- validation
@dataclass(frozen=True)
class _Prepared:
    U: np.ndarray
    W: np.ndarray
    UT: np.ndarray
    VT: np.ndarray
    WT: np.ndarray
    code: int
    batch: Batch
    loss_pos: np.ndarray = field(repr=False)
    S0: np.ndarray = field(repr=False, default=None)


def _prepare(model, batch, initial_states=None) -> _Prepared:
    if not isinstance(model, RNN):
        raise TypeError(f"model must be a gradlab.RNN; received {type(model).__name__}")
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a gradlab.Batch (Batch.for_language_model or Batch.for_classification); "
                        f"received {type(batch).__name__}")
    model.validate()
    code = activation_code(model.activation)
    check_ids_in_range(batch.ids, model.vocab_size, "batch ids", batch.where)
    loss_pos = np.flatnonzero(batch.targets != NO_LOSS).astype(np.int64)
    check_ids_in_range(batch.targets[loss_pos], model.output_size, "batch targets",
                       lambda i: batch.where(int(loss_pos[i])))
    dt = model.dtype  # every array of the computation has the model's type (float64 or float32)
    U = np.ascontiguousarray(model.U, dtype=dt)
    W = np.ascontiguousarray(model.W, dtype=dt)
    H = U.shape[0]
    if initial_states is None:
        S0 = np.zeros((batch.n_sentences, H), dtype=dt)
    else:
        S0 = as_float_matrix(initial_states, "initial_states", (batch.n_sentences, H), dtype=dt)
    return _Prepared(U, W, np.ascontiguousarray(U.T), np.ascontiguousarray(model.V.T, dtype=dt),
                     np.ascontiguousarray(W.T), code, batch, loss_pos, S0)


# ---------------------------------------------------------------------- building blocks
def _states(prep: _Prepared) -> np.ndarray:
    from .kernels.forward import forward_states
    b = prep.batch
    S = np.empty((b.n_tokens, prep.U.shape[0]), dtype=prep.U.dtype)
    chunks = _config.lockstep_ranges(b.n_sentences)
    _config.run_parallel(
        lambda i: forward_states(prep.UT, prep.VT, b.ids, b.offsets, prep.code, prep.S0, S, *chunks[i]), len(chunks))
    return S


def _rows(S: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """S[pos] — a view when the positions are consecutive (language modelling), else a copy."""
    if pos.size and pos[-1] - pos[0] == pos.size - 1:
        return S[pos[0]:pos[-1] + 1]
    return S[pos]


def _output(prep: _Prepared, S: np.ndarray, want_grad: bool):
    """Losses, dJ(t)/ds(t) of every loss and dJ/dW, on tiles of OUTPUT_TILE losses.

    Each tile: logits = S_tile W^T (BLAS), softmax, loss and delta_out in place
    (kernel), dS_tile = delta_out W and dW += delta_out^T S_tile (BLAS), while the
    tile's logits are still in cache. The tiles form N_GROUPS fixed groups, run in
    parallel, each with its own dW; the groups are summed in order.
    """
    from .kernels.output import output_tiles
    pos = prep.loss_pos
    n_loss = pos.size
    H = S.shape[1]
    W = prep.W
    n_out = W.shape[0]
    d = np.ascontiguousarray(prep.batch.targets[pos])
    dt = W.dtype
    losses = np.empty(n_loss, dtype=dt)
    dS = np.empty((n_loss, H), dtype=dt) if want_grad else None
    tile = _config.OUTPUT_TILE
    # No more groups than tiles: a one-sentence batch is one group, not 16 dW buffers to zero and add.
    groups = _config.ranges(n_loss, min(_config.N_GROUPS, -(-n_loss // tile)))

    def work(g):
        r0, r1 = groups[g]
        # without the gradient, dS, dW and tmpW are never touched: empty placeholders, nothing to zero
        dW = np.zeros((n_out, H), dtype=dt) if want_grad else S[:0]
        tmpW = np.empty((n_out, H), dtype=dt) if want_grad else dW
        output_tiles(S, pos, W, d, losses, dS if want_grad else dW, dW, tmpW, np.empty((tile, n_out), dtype=dt),
                     np.empty((tile, H), dtype=dt), r0, r1, want_grad)
        return dW if want_grad else None

    parts = _config.run_parallel(work, len(groups))
    dW = np.zeros((n_out, H), dtype=dt)
    if want_grad:
        for part in parts:
            dW += part
    return losses, dS, dW


def _injected(S: np.ndarray, dS: np.ndarray, loss_pos: np.ndarray, code: int) -> np.ndarray:
    """delta(t, t) of every loss at its position, zero rows elsewhere."""
    from .kernels.backward import injected_errors
    E = np.zeros_like(S)
    injected_errors(dS, S, loss_pos, code, E)
    return E


def _accumulated(U, S, E, lo, batch: Batch, code) -> np.ndarray:
    """D[j] = sum of the kept delta(t, j) over losses t (``accumulate_deltas`` on sentence chunks)."""
    from .kernels.backward import accumulate_deltas
    D = np.zeros_like(S)
    chunks = _config.lockstep_ranges(batch.n_sentences)
    _config.run_parallel(lambda i: accumulate_deltas(U, S, E, lo, batch.offsets, code, D, *chunks[i]),
                         len(chunks))
    return D


def forward(model: RNN, batch: Batch, *, return_probs: bool = False, initial_states=None) -> ForwardResult:
    """Hidden states, per-step losses and (optionally) output probabilities.

    Parameters
    ----------
    model : RNN or CellModel
        A CellModel goes to :func:`gradlab.cell_engine.forward` (result: its ``CellForward``).
    batch : Batch
    return_probs : bool
        Also return y(t) for every token, shape (N, n_out). This materialises an
        N x n_out array; leave it off for large batches.
    initial_states : float64 (n_sentences, H), optional
        s(-1) of every sentence instead of zeros (to carry a state across segments); for a
        CellModel (n_sentences, model.state_size), laid out as ``CellForward.state``.

    Returns
    -------
    ForwardResult
    """
    if isinstance(model, CellModel):
        from . import cell_engine
        return cell_engine.forward(model, batch, return_probs=return_probs, initial_states=initial_states)
    prep = _prepare(model, batch, initial_states)
    with _single_threaded_blas():
        S = _states(prep)
        losses, _, _ = _output(prep, S, want_grad=False)
        probs = None
        if return_probs:
            from .kernels.output import softmax_rows
            probs = S @ prep.WT
            softmax_rows(probs, np.full(batch.n_tokens, NO_LOSS, dtype=np.int64),
                         np.empty(batch.n_tokens, dtype=probs.dtype))
    return ForwardResult(S, losses, prep.loss_pos, probs)


def _lag_starts(batch: Batch, loss_pos: np.ndarray, scheme: Scheme) -> np.ndarray:
    """lo[p]: earliest flat position that the loss at p reaches (-1 where no loss)."""
    t = batch.positions()[loss_pos]
    limit = np.asarray(scheme.lag_limit(t), dtype=np.int64)
    lo = np.full(batch.n_tokens, -1, dtype=np.int64)
    lo[loss_pos] = loss_pos - np.minimum(limit, t)
    return lo


def gradient(model: RNN, batch: Batch, scheme: Scheme | str = Full(), *, initial_states=None) -> Gradient:
    """Gradient of the batch's total loss under a truncation scheme.

    Parameters
    ----------
    model : RNN or CellModel
        A CellModel goes to :func:`gradlab.cell_engine.gradient` (a Gradient with the cell's names).
    batch : Batch
    scheme : Scheme or str
        ``Full()`` (default), ``Sliding(tau)``, ``Block(k1, k2)``, ``chunked(h)``,
        ``mikolov(bptt, block)``, or their text forms ("full", "tbptt:3", ...).
    initial_states : float64 (n_sentences, H), optional
        s(-1) of every sentence instead of zeros, treated as a constant (the signal
        stops at the sentence start). Truncated training carries states this way.
        For a CellModel (n_sentences, model.state_size), laid out as ``CellForward.state``.

    Returns
    -------
    Gradient
        Sums over all losses of the batch.

    Notes
    -----
    Loss t keeps lags k = 0..min(L(t), t) of its contributions
    delta(t, t-k) (x) s(t-k-1) to U and delta(t, t-k) to V[:, x(t-k)]; W gets
    delta_out(t) (x) s(t). Consecutive losses that reach back to the same step are
    carried back together, so full BPTT and block schemes take time linear in T
    and the sliding window O(T tau), all with O(T) memory.
    """
    if isinstance(model, CellModel):
        from . import cell_engine
        return cell_engine.gradient(model, batch, scheme, initial_states=initial_states)
    scheme = parse_scheme(scheme)
    prep = _prepare(model, batch, initial_states)
    with _single_threaded_blas():
        S = _states(prep)
        losses, dS, dW = _output(prep, S, want_grad=True)
        dU, dV = _backward(prep.U, S, batch, prep.loss_pos, dS, _lag_starts(batch, prep.loss_pos, scheme),
                           prep.code, model.vocab_size, None if initial_states is None else prep.S0)
    return Gradient({"U": dU, "V": dV, "W": dW}, float(losses.sum()), int(losses.size), scheme.label)


def backpropagate(model: RNN, batch: Batch, states, state_grads, scheme: Scheme | str = "full", *,
                  initial_states=None) -> dict[str, np.ndarray]:
    """Gradients of the recurrent and input parameters from given states and dJ(t)/ds(t).

    The backward half of :func:`gradient`, for states that did not come from
    :func:`forward` (the coursework class back-propagates from a student's own
    ``predict``). Each loss of ``batch`` keeps the lags that ``scheme`` allows.

    Parameters
    ----------
    model : RNN
        Its recurrent weights carry the signal back; its activation gives f'(net) from the states.
    batch : Batch
    states : float64 (N, H)
        s(t) of every token, flat in batch order.
    state_grads : float64 (n_losses, H)
        dJ(t)/ds(t) of every loss in flat order (``delta_out(t) W``).
    scheme : Scheme or str, default "full"
    initial_states : float64 (H,) or (n_sentences, H), optional
        s(-1) in the recurrent weights' outer products (zero by default).

    Returns
    -------
    dict
        {"U": dJ/dU, "V": dJ/dV} (the cell's recurrent and input parameters).
    """
    scheme = parse_scheme(scheme)
    if not isinstance(model, RNN):
        raise TypeError(f"model must be a gradlab.RNN; received {type(model).__name__}")
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a gradlab.Batch; received {type(batch).__name__}")
    model.validate()
    code = activation_code(model.activation)
    check_ids_in_range(batch.ids, model.vocab_size, "batch ids", batch.where)
    H = model.hidden_size
    loss_pos = np.flatnonzero(batch.targets != NO_LOSS).astype(np.int64)
    dt = model.dtype
    S = as_float_matrix(states, "states", (batch.n_tokens, H), dtype=dt)
    dS = as_float_matrix(state_grads, "state_grads", (loss_pos.size, H), dtype=dt)
    if initial_states is not None:
        initial_states = as_float_matrix(np.atleast_2d(initial_states), "initial_states", (None, H), dtype=dt)
        if initial_states.shape[0] not in (1, batch.n_sentences):
            raise ValueError(f"initial_states must hold one row or one per sentence ({batch.n_sentences}); "
                             f"received {initial_states.shape[0]}")
    U = np.ascontiguousarray(model.U)
    with _single_threaded_blas():
        dU, dV = _backward(U, S, batch, loss_pos, dS, _lag_starts(batch, loss_pos, scheme), code,
                           model.vocab_size, initial_states)
    return {"U": dU, "V": dV}


def _backward(U, S, batch: Batch, loss_pos, dS, lo, code, vocab_size, initial_state=None):
    """dJ/dU and dJ/dV from the states and dJ(t)/ds(t) of every loss, under lag starts ``lo``.

    Callers hold the single-threaded-BLAS context and have validated every index.
    ``initial_state`` (one row, or one per sentence) replaces the zero s(-1) in U's
    outer products.
    dU = sum_j D[j] (x) s(j-1) is a product over fixed token chunks summed in order;
    dV[:, x(j)] += D[j] is a scatter.
    """
    from .kernels.backward import scatter_rows
    H = U.shape[0]
    D = _accumulated(U, S, _injected(S, dS, loss_pos, code), lo, batch, code)
    S_prev = np.empty_like(S)
    S_prev[1:] = S[:-1]
    S_prev[batch.offsets[:-1]] = 0.0 if initial_state is None else initial_state
    chunks = _config.ranges(batch.n_tokens, _N_DU_CHUNKS)
    parts = _config.run_parallel(lambda i: D[slice(*chunks[i])].T @ S_prev[slice(*chunks[i])], len(chunks))
    dU = np.zeros((H, H), dtype=S.dtype)
    for part in parts:
        dU += part
    dVT = np.zeros((vocab_size, H), dtype=S.dtype)
    scatter_rows(batch.ids, D, dVT, 0, batch.n_tokens)
    return dU, np.ascontiguousarray(dVT.T)


def state_derivative(S: np.ndarray, activation: str) -> np.ndarray:
    """f'(net_in) of every token, from its state s = f(net_in) (``gradlab.cells.Activation.derivative``)."""
    return _activation(activation).derivative(S)


def _row_chunks(n: int) -> list[tuple[int, int]]:
    return _config.ranges(n, _N_ROW_CHUNKS)


def contributions(model: RNN, batch: Batch, max_lag: int, *, G_V: bool | int = True,
                  V_norm: bool = True) -> Contributions:
    """Every loss's error signal at every lag up to ``max_lag``, and the per-lag sums.

    Parameters
    ----------
    model : RNN or CellModel
        A CellModel goes to :func:`gradlab.cell_engine.contributions` (its
        ``CellContributions``, with G for every parameter and lag; ``G_V`` and ``V_norm``
        are the Elman RNN's and must be left at their defaults).
    batch : Batch
    max_lag : int
        K >= 0: lags k = 0..min(t, K) are computed for loss t. Cost O(N K H^2).
    G_V : bool or int, default True
        The per-lag sums in V, K+1 arrays of H x |V| (memory and time K |V| H):
        True for every lag, an int k (0 <= k <= K) for lags 0..k only (enough for
        ``truncated(tau)`` with tau <= k), False for none.
    V_norm : bool, default True
        The per-pair norms in V (equal to ``delta_norm``: a contribution to V is delta
        itself); False leaves them out (``V_norm`` is None, ``to_frame`` has no column).

    Returns
    -------
    Contributions
        ``truncated(tau)`` gives the TBPTT(tau) gradient for every tau <= K (<= the
        lags of G_V).

    Notes
    -----
    The signals of all losses move back one lag at a time, together: with Delta_k
    the rows delta(t, t-k) of every loss with t >= k,
    Delta_{k+1} = (Delta_k U) o f'(net_in(t-k-1)), G_U[k] = Delta_k^T S_{t-k-1} and
    G_V[k] gets Delta_k's rows in the columns x(t-k): matrix products over all
    losses, run on fixed row chunks (so results do not depend on the thread count).
    Memory is O(n_losses H) besides the outputs.
    """
    if isinstance(model, CellModel):
        from . import cell_engine
        _elman_only({"G_V": G_V, "V_norm": V_norm}, "contributions",
                    "a CellModel's contributions hold G for every parameter and lag")
        return cell_engine.contributions(model, batch, max_lag)
    K = check_int(max_lag, "max_lag", 0)
    if G_V is True or G_V is False:
        v_lags = K if G_V else -1
    else:
        v_lags = check_int(G_V, "G_V", 0)
        if v_lags > K:
            raise ValueError(f"G_V must be True, False or a lag 0..max_lag = {K}; received {v_lags}")
    if not isinstance(V_norm, (bool, np.bool_)):
        raise TypeError(f"V_norm must be True or False; received {V_norm!r}")
    prep = _prepare(model, batch)
    from .kernels.backward import scatter_rows
    from .kernels.contrib import lag_step
    H = prep.U.shape[0]
    loss_pos = prep.loss_pos
    loss_t = batch.positions()[loss_pos]
    n_k = np.minimum(loss_t, K) + 1
    pair_start = offsets_from_lengths(n_k)
    n_pairs = int(pair_start[-1])
    pair_loss = np.repeat(np.arange(loss_pos.size, dtype=np.int64), n_k)
    lag = np.arange(n_pairs, dtype=np.int64) - pair_start[pair_loss]
    sentence_of_loss = batch.sentence_index()[loss_pos]

    dt = prep.U.dtype
    GU = np.zeros((K + 1, H, H), dtype=dt)
    GVT = np.zeros((v_lags + 1, model.vocab_size, H), dtype=dt) if v_lags >= 0 else None
    delta_norm = np.empty(n_pairs, dtype=dt)
    prev_norm = np.empty(n_pairs, dtype=dt)
    # latest losses first: the losses whose signal reaches lag k are a prefix, of length n_reach[k]
    order = np.argsort(-loss_t, kind="stable")
    pos = np.ascontiguousarray(loss_pos[order])
    pair_row = np.ascontiguousarray(pair_start[order])
    t_desc = loss_t[order]
    n_reach = np.searchsorted(-t_desc, -np.arange(K + 2), side="right")  # count of t >= k
    U = prep.U
    n_chunks = _N_ROW_CHUNKS
    rows = -(-pos.size // n_chunks) + 1
    scratch = [(np.empty((rows, H), dtype=dt), np.empty((rows, H), dtype=dt), np.empty((H, H), dtype=dt))
               for _ in range(n_chunks)]
    with _single_threaded_blas():
        S = _states(prep)
        losses, dS, dW = _output(prep, S, want_grad=True)
        s_norm = np.sqrt(np.einsum("ij,ij->i", S, S))
        delta = dS[order] * state_derivative(S[pos], model.activation)  # delta(t, t)
        for k in range(K + 1):
            n_act, n_inner = int(n_reach[k]), int(n_reach[k + 1])
            if n_act == 0:
                break
            if k <= v_lags:
                scatter_rows(np.ascontiguousarray(batch.ids[pos[:n_act] - k]), delta, GVT[k], 0, n_act)
            chunks = _row_chunks(n_act)

            def step(c, k=k, n_inner=n_inner, chunks=chunks):
                Sp, tmp, part = scratch[c]
                lag_step(U, S, s_norm, pos, pair_row, n_inner, k, k < K, prep.code, delta, Sp, tmp, part,
                         delta_norm, prev_norm, *chunks[c])
                return part

            for part in _config.run_parallel(step, len(chunks)):
                GU[k] += part
    return Contributions(K, sentence_of_loss[pair_loss], loss_t[pair_loss], lag, delta_norm,
                         delta_norm * prev_norm, delta_norm.copy() if V_norm else None, GU, GVT, dW,
                         float(losses.sum()), int(losses.size))


def dependency_deltas(model: RNN, batch: Batch, sentence, source, dependent) -> tuple[np.ndarray, np.ndarray]:
    """||delta(t, s)|| and ||delta(t, t)|| for given (loss step t, earlier step s) pairs, at any lag.

    Parameters
    ----------
    model : RNN
    batch : Batch
    sentence, source, dependent : int arrays (n,)
        Sentence index and steps s = source <= t = dependent within that sentence
        (``Dataset.dependencies``: lag = t - s).

    Returns
    -------
    signal, own : float64 (n,)
        ||delta(t, s)|| and ||delta(t, t)||; NaN where step t has no loss.

    Notes
    -----
    Each pair carries one vector back exactly t - s steps,
    delta(t, j-1) = (U^T delta(t, j)) o f'(net_in(j-1)), all pairs that still have steps
    to go moving together. Time O(sum of lags H^2), memory O(N H + n H): it does not
    grow with the longest lag as ``contributions(max_lag=lag)`` would.
    """
    prep = _prepare(model, batch)
    sentence = as_id_array(sentence, "sentence")
    source = as_id_array(source, "source")
    dependent = as_id_array(dependent, "dependent")
    if not sentence.size == source.size == dependent.size:
        raise ValueError(f"sentence, source and dependent must have the same length; received {sentence.size}, "
                         f"{source.size}, {dependent.size}")
    check_ids_in_range(sentence, batch.n_sentences, "sentence")
    lengths = np.diff(batch.offsets)[sentence]
    bad = np.flatnonzero((source < 0) | (source > dependent) | (dependent >= lengths))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"dependency {i}: need 0 <= source <= dependent < sentence length; received "
                         f"source={int(source[i])}, dependent={int(dependent[i])}, length {int(lengths[i])}")
    signal = np.full(sentence.size, np.nan, dtype=prep.U.dtype)
    own = np.full(sentence.size, np.nan, dtype=prep.U.dtype)
    dependent_pos = batch.offsets[sentence] + dependent
    has_loss = batch.targets[dependent_pos] != NO_LOSS
    idx = np.flatnonzero(has_loss)
    if idx.size == 0:
        return signal, own
    pos = dependent_pos[idx]
    with _single_threaded_blas():
        S = _states(prep)
        # dJ(t)/ds(t) of the dependent losses only (each dependent step once)
        uniq, inverse = np.unique(pos, return_inverse=True)
        _, dS, _ = _output(replace(prep, loss_pos=uniq), S, want_grad=True)
        delta = dS[inverse] * state_derivative(S[pos], model.activation)
        own[idx] = np.sqrt(np.einsum("ij,ij->i", delta, delta))
        steps = (dependent - source)[idx]
        order = np.argsort(-steps, kind="stable")        # longest first: the active pairs are a prefix
        delta, pos, steps, idx = delta[order], pos[order], steps[order], idx[order]
        n_active = idx.size
        for k in range(1, int(steps[0]) + 1):
            while n_active and steps[n_active - 1] < k:
                n_active -= 1
            d = delta[:n_active] @ prep.U
            d *= state_derivative(S[pos[:n_active] - k], model.activation)
            delta[:n_active] = d
        signal[idx] = np.sqrt(np.einsum("ij,ij->i", delta, delta))
    return signal, own


@dataclass(frozen=True, eq=False)
class SentenceGaps:
    """Per sentence: the TBPTT(tau) gradient of its own losses against its full gradient.

    Attributes
    ----------
    max_lag : int
        K; tau runs over 0..K.
    rel_error : float64 (n, K+1, 3)
        ||g_tau - g_full|| / ||g_full|| for U, V and all parameters (U, V, W) together.
    cosine : float64 (n, K+1, 3)
        cos(g_tau, g_full) for the same three.
    """

    max_lag: int
    rel_error: np.ndarray
    cosine: np.ndarray
    #: The third axis: the parameters truncation acts on, then "all" (another cell: its own names).
    parameters: tuple = ELMAN.truncated + ("all",)

    PARAMETERS = ELMAN.truncated + ("all",)

    def to_frame(self):
        """Tidy rows: sentence, tau, parameter, rel_error, cosine."""
        import pandas as pd
        n, k1, n_par = self.rel_error.shape
        idx = np.indices((n, k1, n_par)).reshape(3, -1)
        return pd.DataFrame({"sentence": idx[0], "tau": idx[1],
                             "parameter": np.asarray(self.parameters)[idx[2]],
                             "rel_error": self.rel_error.ravel(), "cosine": self.cosine.ravel()})


def _sentence_w_norms(prep: _Prepared, S: np.ndarray, loss_offsets: np.ndarray) -> np.ndarray:
    """||dJ_i/dW||^2 of every sentence i's own losses (delta_out recomputed sentence by sentence)."""
    from .kernels.output import softmax_rows
    pos = prep.loss_pos
    d = prep.batch.targets[pos]
    n = loss_offsets.size - 1
    out = np.zeros(n)
    chunks = _config.ranges(n, _config.N_CHUNKS)

    def work(c):
        for i in range(*chunks[c]):
            l0, l1 = loss_offsets[i], loss_offsets[i + 1]
            if l1 > l0:
                St = S[pos[l0:l1]]
                L = St @ prep.WT
                softmax_rows(L, np.ascontiguousarray(d[l0:l1]), np.empty(l1 - l0, dtype=L.dtype))
                G = L.T @ St
                out[i] = np.sum(G * G)

    _config.run_parallel(work, len(chunks))
    return out


def sentence_gaps(model: RNN, batch: Batch, max_lag: int) -> SentenceGaps:
    """For every sentence, how far TBPTT(tau) is from full BPTT, tau = 0..max_lag.

    The gradients are those of the sentence's own losses. The full gradient is the
    exact one (all lags), so for tau < T - 1 the error is what truncation loses
    and for tau >= T - 1 it is zero up to rounding. W is the same under every
    scheme; it enters "all" through ||g_full||. Cost O(T K H^2) per sentence.

    A CellModel goes to :func:`gradlab.analysis.gap.cell_sentence_gaps` (the third
    axis: the cell's recurrent and input parameters, then "all").
    """
    if isinstance(model, CellModel):
        from .analysis.gap import cell_sentence_gaps
        return cell_sentence_gaps(model, batch, max_lag)
    K = check_int(max_lag, "max_lag", 0)
    prep = _prepare(model, batch)
    from .kernels.contrib import sentence_gaps as gaps_kernel
    n = batch.n_sentences
    loss_pos = prep.loss_pos
    loss_t = batch.positions()[loss_pos]
    loss_offsets = np.searchsorted(batch.sentence_index()[loss_pos], np.arange(n + 1)).astype(np.int64)
    err2 = np.empty((n, K + 1, 2))
    dot = np.empty((n, K + 1, 2))
    prefix2 = np.empty((n, K + 1, 2))
    full2 = np.empty((n, 2))
    with _single_threaded_blas():
        S = _states(prep)
        _, dS, _ = _output(prep, S, want_grad=True)
        E = _injected(S, dS, loss_pos, prep.code)
        D = _accumulated(prep.U, S, E, _lag_starts(batch, loss_pos, Full()), batch, prep.code)
        chunks = _config.ranges(n, _config.N_CHUNKS)
        _config.run_parallel(
            lambda i: gaps_kernel(prep.U, S, E, D, batch.ids, batch.offsets, loss_pos, loss_t, loss_offsets, K,
                                  prep.code, err2, dot, prefix2, full2, *chunks[i]), len(chunks))
        w2 = _sentence_w_norms(prep, S, loss_offsets)
    # "all": W is exact under truncation, so it adds ||W||^2 to norms and dots but nothing to errors.
    err2 = np.concatenate([err2, err2.sum(axis=2, keepdims=True)], axis=2)
    dot = np.concatenate([dot, (dot.sum(axis=2) + w2[:, None])[:, :, None]], axis=2)
    prefix2 = np.concatenate([prefix2, (prefix2.sum(axis=2) + w2[:, None])[:, :, None]], axis=2)
    full2 = np.concatenate([full2, (full2.sum(axis=1) + w2)[:, None]], axis=1)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.sqrt(np.maximum(err2, 0.0) / full2)
        # two square roots, not one of the product: prefix2 * full2 underflows to 0 for the
        # tiny gradients of a saturated softmax (a well-predicted loss sends back ~1e-300)
        cos = dot / (np.sqrt(prefix2) * np.sqrt(full2))
    # the kernel sums in float64 whatever the model's type; the result has the model's type
    return SentenceGaps(K, rel.astype(prep.U.dtype, copy=False), cos.astype(prep.U.dtype, copy=False))


def _elman_only(options: dict, function: str, instead: str) -> None:
    """Raise for an Elman-only option (default True) given another value with a CellModel."""
    given = [f"{name}={value!r}" for name, value in options.items() if value is not True]
    if given:
        raise ValueError(f"{', '.join(given)}: {'these options apply' if len(given) > 1 else 'this option applies'} "
                         f"to the Elman RNN's {function} only; {instead} (gradlab.cell_engine.{function}): leave "
                         f"{' and '.join(options)} out for a CellModel")


def warmup() -> float:
    """Compile (or load from the cache) every kernel on a tiny input; return the seconds it took."""
    import time
    start = time.perf_counter()
    for activation in ("sigmoid",):
        model = RNN.init(5, 3, rng=0, activation=activation)
        batch = Batch.for_language_model([[0, 1, 2], [3]], [[1, 2, 3], [4]])
        forward(model, batch, return_probs=True)
        gradient(model, batch, Sliding(1))
        contributions(model, batch, 2)
        sentence_gaps(model, batch, 2)
        _warm_training(model, batch)
    return time.perf_counter() - start


def _warm_training(model: RNN, batch: Batch) -> None:
    """One fused SGD step (``gradlab.kernels.train``) on copies of a tiny model, with clipping."""
    from .kernels.train import sgd_minibatches
    from .schemes import UNLIMITED
    order = np.arange(batch.n_sentences, dtype=np.int64)
    mb_start = np.array([0, batch.n_sentences], dtype=np.int64)
    stats = (np.zeros(1), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    with _single_threaded_blas():
        sgd_minibatches(model.U.copy(), np.ascontiguousarray(model.V.T), model.W.copy(), batch.ids, batch.targets,
                        batch.offsets, order, mb_start, 0, 1, 2, 1, UNLIMITED, 0.1, 1.0, False,
                        activation_code(model.activation), UNLIMITED, _config.OUTPUT_TILE, _config.N_GROUPS,
                        _N_DU_CHUNKS, *stats, np.zeros(4, dtype=np.int64))
