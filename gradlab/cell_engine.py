"""Engine for the cells of gradlab.CellModel (nn.RNN with biases, GRU, LSTM, diagonal linear recurrence).

The same three questions as ``gradlab.engine`` asks of the Elman RNN, for a
:class:`gradlab.cellmodel.CellModel` and a :class:`gradlab.Batch`:

- :func:`forward`: states h(t) (and c(t) for the LSTM) and the losses J(t);
- :func:`gradient`: dJ/dtheta of the total loss J = sum of J(t) under any deterministic
  truncation scheme (``scheme.lag_limit(t)``: loss t backpropagates through lags
  0 .. min(L(t), t), i.e. to steps t - L(t) .. t of its sentence, exactly what detaching
  the states before step t - L(t) gives in PyTorch);
- :func:`contributions`: per (loss t, lag k <= K) the norms ||dJ(t)/dh(t-k)|| (and
  ||dJ(t)/dc(t-k)|| for the LSTM) and the per-lag parameter sums G_theta[k], with
  sum over k <= tau of G_theta[k] = the TBPTT(tau) gradient.

Every sentence starts from zero states, or from ``initial_states`` (:func:`forward`, :func:`gradient`): the
state before its first step, a constant the gradient does not flow into (PyTorch's detached h0, c0).

Each recurrence runs through its kind (``gradlab.kernels.kinds``: one module per cell with its forward,
sweep and stacked hooks); the engine validates, maps an embedding layer and computes the output layer.

The losses' signals are swept back through their lag windows in lockstep (``kernels.gated``,
``kernels.stacked``: groups of losses move back one step at a time, one matrix product per step over
all of them; O(sum of windows x H^2)); see docs/maths.md, "Other cells". Gradients come back as :class:`gradlab.engine.Gradient`
with the cell's parameter names (``as_dict(torch_names=True)`` for PyTorch's).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import _config
from ._validate import as_float_matrix, check_ids_in_range, check_int
from .batch import NO_LOSS, Batch
from .cellmodel import CellModel
from .cells import activation
from .engine import Gradient
from .schemes import Full, Scheme, parse_scheme

__all__ = ["CellForward", "CellContributions", "forward", "gradient", "contributions"]


@dataclass(frozen=True, eq=False)
class CellForward:
    """States and losses of a batch.

    Attributes
    ----------
    h : float64 (N, H)
        h(t) of every token, flat in batch order.
    c : float64 (N, H) or None
        The LSTM's cell state c(t) (None for the other cells).
    losses : float64 (n_losses,)
        J(t) = -log softmax(W h(t) + b)[d(t)] of every step with a target.
    loss_positions : int64 (n_losses,)
    probs : float64 (N, n_out) or None
        y(t) of every token, when asked for.
    h_layers, c_layers : float64 (num_layers, N, H) or None
        The states of every layer of a stacked model (h is h_layers[-1]); None for one layer.
    state : float64 (N, S)
        The full recurrent state after every token (S = ``model.state_size``): per layer, layer 0
        first, h_l then c_l (LSTM), concatenated; the layout of ``initial_states``.
    """

    h: np.ndarray
    c: np.ndarray | None
    losses: np.ndarray
    loss_positions: np.ndarray
    probs: np.ndarray | None = None
    h_layers: np.ndarray | None = None
    c_layers: np.ndarray | None = None

    @property
    def loss(self) -> float:
        return float(self.losses.sum())

    @property
    def n_losses(self) -> int:
        return int(self.losses.size)

    @property
    def state(self) -> np.ndarray:
        hs = self.h[None] if self.h_layers is None else self.h_layers
        cs = (None if self.c is None else self.c[None]) if self.c_layers is None else self.c_layers
        parts = []
        for layer in range(hs.shape[0]):
            parts.append(hs[layer])
            if cs is not None:
                parts.append(cs[layer])
        return np.concatenate(parts, axis=1)


@dataclass(frozen=True, eq=False)
class CellContributions:
    """What every loss sends back at every lag, and the per-lag parameter sums.

    One row per (sentence, loss step t, lag k), k = 0..min(t, K), ordered by sentence,
    then t, then k.

    Attributes
    ----------
    max_lag : int
    sentence, t, lag : int64 (n_pairs,)
    h_norm : float64 (n_pairs,)
        ||dJ(t)/dh(t-k)|| (of the top layer, which the output reads, when stacked).
    c_norm : float64 (n_pairs,) or None
        ||dJ(t)/dc(t-k)|| (LSTM; the total derivative, through h(t-k) = o tanh(c(t-k)) too).
    layer_h_norm, layer_c_norm : float64 (num_layers, n_pairs) or None
        The same for every layer of a stacked model (layer 0 first); None for one layer.
    G : dict of str to float64 (K+1, *shape)
        G[name][k] = sum over losses t of the gradient of J(t) through the use of the
        parameter at step t-k, for the recurrent and input parameters.
    G_out : dict of str to float64 array
        dJ/dW and dJ/db (lag 0 only, the same under every scheme).
    loss : float; n_losses : int
    cell : gradlab.cells.Cell
    """

    max_lag: int
    sentence: np.ndarray
    t: np.ndarray
    lag: np.ndarray
    h_norm: np.ndarray
    c_norm: np.ndarray | None
    G: dict
    G_out: dict
    loss: float
    n_losses: int
    cell: object
    layer_h_norm: np.ndarray | None = None
    layer_c_norm: np.ndarray | None = None

    @property
    def n_pairs(self) -> int:
        return int(self.lag.size)

    def lag_sums(self) -> dict[str, np.ndarray]:
        return dict(self.G)

    def truncated(self, tau: int) -> Gradient:
        """The sliding TBPTT(tau) gradient, sum over k <= tau of G[k] (tau <= max_lag)."""
        tau = check_int(tau, "tau", 0)
        if tau > self.max_lag:
            raise ValueError(f"tau must be <= max_lag = {self.max_lag} of these contributions; received {tau}")
        arrays = {}
        for n in self.cell.names:
            arrays[n] = self.G[n][: tau + 1].sum(axis=0) if n in self.G else self.G_out[n].copy()
        return Gradient(arrays, self.loss, self.n_losses, f"tbptt:{tau}", cell=self.cell)

    def to_frame(self):
        import pandas as pd
        cols = {"sentence": self.sentence, "t": self.t, "lag": self.lag, "h_norm": self.h_norm}
        if self.c_norm is not None:
            cols["c_norm"] = self.c_norm
        if self.layer_h_norm is not None:
            for layer, row in enumerate(self.layer_h_norm):
                cols[f"h_norm_l{layer}"] = row
            for layer, row in enumerate(() if self.layer_c_norm is None else self.layer_c_norm):
                cols[f"c_norm_l{layer}"] = row
        return pd.DataFrame(cols)


# ---------------------------------------------------------------------- internals
def _check(model, batch) -> np.ndarray:
    if not isinstance(model, CellModel):
        raise TypeError(f"model must be a gradlab.CellModel (for gradlab.RNN use gradlab.engine); "
                        f"received {type(model).__name__}")
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a gradlab.Batch; received {type(batch).__name__}")
    model.validate()
    check_ids_in_range(batch.ids, model.vocab_size, "batch ids", batch.where)
    loss_pos = np.flatnonzero(batch.targets != NO_LOSS).astype(np.int64)
    check_ids_in_range(batch.targets[loss_pos], model.output_size, "batch targets",
                       lambda i: batch.where(int(loss_pos[i])))
    return loss_pos


def _initial(model: CellModel, batch: Batch, initial_states):
    """(H0, C0), each (num_layers, n_sentences, H), from ``initial_states`` (n_sentences, S) laid out per
    layer as [h_l, c_l (LSTM)]; arrays without rows (zero states) when it is None."""
    L, H = model.num_layers, model.hidden_size
    if initial_states is None:
        empty = np.zeros((L, 0, H))
        return empty, empty
    a = as_float_matrix(initial_states, "initial_states", (batch.n_sentences, model.state_size))
    per = len(model.cell.states)
    blocks = a.reshape(batch.n_sentences, L, per, H).transpose(1, 2, 0, 3)   # (L, per, n, H)
    H0 = np.ascontiguousarray(blocks[:, 0])
    C0 = np.ascontiguousarray(blocks[:, 1]) if per == 2 else np.zeros((L, 0, H))
    return H0, C0


class _OneHot:
    """The arrays the kernels read, and the cell's kind (``kernels.kinds``). With an embedding layer the
    input product of step t is A e(x(t)) = (A Eᵀ)[:, x(t)], so the kernels run on the one-hot weights
    M = A Eᵀ (|V| columns) and the gradients map back exactly: dJ/dA = G_M E and dJ/dE = G_Mᵀ A (for
    every lag slot alike)."""

    def __init__(self, model: CellModel):
        from .kernels.kinds import kind
        self.model = model
        self.kind = kind(model.base)
        self.arrays = dict(model.params)
        if model.embedding_size is not None:
            name = model.input_weights
            self.arrays[name] = model.params[name] @ model.params["embedding"].T
        self.truncated = tuple(n for n in model.cell.truncated if n != "embedding")
        #: the rnn cells' activation as the kernels' code (0 for the cells without one)
        self.code = 0 if model.activation is None else activation(model.activation).code

    def __getitem__(self, name):
        return np.ascontiguousarray(self.arrays[name])

    def layer(self, layer: int) -> tuple:
        """One layer's arrays in ``layer_names`` order."""
        return tuple(self[n] for n in self.model.layer_names(layer))

    def back(self, grads: dict) -> dict:
        """Kernel gradients (slots first) to the model's parameters."""
        m = self.model
        if m.embedding_size is None:
            return {n: grads[n] for n in self.truncated}
        name = m.input_weights
        GM = grads.pop(name)                     # (slots, rows, |V|)
        A, E = m.params[name], m.params["embedding"]
        out = {"embedding": np.einsum("sav,ae->sve", GM, A), name: GM @ E}
        out.update(grads)
        return {n: out[n] for n in m.cell.truncated}


def _allocate(P: _OneHot, L: int, N: int):
    """Zero states Hs, Cs (when the cell has c) and the kind's per-step cache G, each with ``L`` layers first."""
    H = P.model.hidden_size
    Cs = np.zeros((L, N, H)) if len(P.model.cell.states) == 2 else None
    G = np.zeros((L, N, P.kind.cache * H)) if P.kind.cache else None
    return np.zeros((L, N, H)), Cs, G


def _states(P: _OneHot, batch: Batch, H0, C0):
    """(Hs, Cs or None, G or None) of a one-layer model from initial states H0, C0 (``_initial``). Lockstep
    kernels run on fixed chunks of sentences in parallel."""
    Hs, Cs, G = _allocate(P, 1, batch.n_tokens)
    P.kind.forward(P.layer(0), P.code, batch.ids, batch.offsets, H0[0], C0[0], Hs[0], _layer(Cs, 0), _layer(G, 0),
                   _config.lockstep_ranges(batch.n_sentences))
    return Hs[0], _layer(Cs, 0), _layer(G, 0)


def _layer(a, layer):
    return None if a is None else a[layer]


def _states_stacked(P: _OneHot, batch: Batch, H0, C0):
    """(Hs, Cs or None, G or None), each (num_layers, N, ...): layer 0 reads the word, layer l the layer below;
    layer l starts from H0[l], C0[l] (``_initial``)."""
    L = P.model.num_layers
    Hs, Cs, G = _allocate(P, L, batch.n_tokens)
    everything = [(0, batch.n_sentences)]
    for layer in range(L):
        args = (P.layer(layer), P.code)
        state = (H0[layer], C0[layer], Hs[layer], _layer(Cs, layer), _layer(G, layer))
        if layer == 0:
            P.kind.forward(*args, batch.ids, batch.offsets, *state, everything)
        else:
            P.kind.forward_dense(*args, Hs[layer - 1], batch.offsets, *state)
    return Hs, Cs, G


def _sweep_args(batch: Batch, loss_pos, lo, dH, per_lag: bool, n_slots: int, row0):
    """What a kind's sweep reads (``kernels.kinds.Sweep``)."""
    from .kernels.kinds import Sweep
    return Sweep(batch.ids, batch.offsets, np.repeat(batch.offsets[:-1], batch.lengths), batch.sentence_index(),
                 loss_pos, lo, dH, per_lag, n_slots, row0)


def _n_rows(loss_pos, lo, row0) -> int:
    return int(row0[-1] + (loss_pos[-1] - lo[-1] + 1)) if (row0.size and loss_pos.size) else 0


def _sweep_stacked(P: _OneHot, batch, Hs, Cs, G, loss_pos, dH, lo, per_lag: bool, n_slots: int, row0, full: bool,
                   H0, C0):
    """The kind's stacked sweep; returns ({name: (n_slots, *shape)}, layer h norms, layer c norms)."""
    m = P.model
    L = m.num_layers
    n_rows = _n_rows(loss_pos, lo, row0)
    hnorm, cnorm = np.zeros((L, n_rows)), np.zeros((L, n_rows))
    sw = _sweep_args(batch, loss_pos, lo, dH, per_lag, n_slots, row0)
    layers = P.kind.stacked_sweep([P.layer(layer) for layer in range(L)], P.code, sw, full, Hs, Cs, G, H0, C0,
                                  hnorm, cnorm)
    grads = {}
    for layer, arrays in enumerate(layers):
        grads.update(zip(m.layer_names(layer), arrays))
    return P.back(grads), hnorm, (cnorm if Cs is not None else None)


#: The output layer's losses run in this many fixed parts in parallel (each part's products on one BLAS
#: thread; the parts' dJ/dW, dJ/db summed in order, so the results do not depend on the thread count),
#: each of at least OUTPUT_PART_LOSSES losses (fewer: one part; a thread costs more than it saves).
OUTPUT_PARTS = 2
OUTPUT_PART_LOSSES = 128


def _output(model: CellModel, Hs, batch: Batch, loss_pos, probs=False):
    """(losses, dJ(t)/dh(t) per loss, {W: dJ/dW, b: dJ/db}, probs or None). The softmax, losses and
    y - onehot(d) in one compiled pass over the logits (the Elman engine's ``softmax_rows``)."""
    from .kernels.output import softmax_rows
    W, b = model.params["W"], model.params["b"]
    n_loss = loss_pos.size
    d = np.ascontiguousarray(batch.targets[loss_pos], dtype=np.int64)
    losses = np.empty(n_loss)
    dH = np.empty((n_loss, Hs.shape[1]))
    parts = _config.ranges(n_loss, min(OUTPUT_PARTS, max(1, n_loss // OUTPUT_PART_LOSSES)))

    def work(i):
        r0, r1 = parts[i]
        rows = Hs[loss_pos[r0:r1]]
        dlogits = rows @ W.T
        dlogits += b
        softmax_rows(dlogits, d[r0:r1], losses[r0:r1])
        np.matmul(dlogits, W, out=dH[r0:r1])
        return dlogits.T @ rows, dlogits.sum(axis=0)

    gW, gb = np.zeros_like(W), np.zeros_like(b)
    for pW, pb in _config.run_parallel(work, len(parts)):
        gW += pW
        gb += pb
    P = None
    if probs:
        P = Hs @ W.T
        P += b
        softmax_rows(P, np.full(Hs.shape[0], NO_LOSS, dtype=np.int64), np.empty(Hs.shape[0]))
    return losses, dH, {"W": gW, "b": gb}, P


def _sweep(P: _OneHot, batch, Hs, Cs, G, loss_pos, dH, lo, per_lag: bool, n_slots: int, row0, H0, C0):
    """The kind's one-layer sweep (initial states H0, C0 of ``_initial``); returns
    ({name: (n_slots, *shape)}, h_norm, c_norm)."""
    n_rows = _n_rows(loss_pos, lo, row0)
    hnorm, cnorm = np.zeros(n_rows), np.zeros(n_rows)
    sw = _sweep_args(batch, loss_pos, lo, dH, per_lag, n_slots, row0)
    arrays = P.kind.sweep(P.layer(0), P.code, sw, Hs, Cs, G, H0[0], C0[0], hnorm, cnorm)
    grads = dict(zip(P.model.layer_names(0), arrays))
    return P.back(grads), hnorm, (cnorm if Cs is not None else None)


def _full_sweep(P: _OneHot, batch, Hs, Cs, G, loss_pos, dH, H0, C0):
    """Gradients when every loss reaches its sentence's first step (the kind's full BPTT sweep)."""
    sw = _sweep_args(batch, loss_pos, None, dH, False, 1, np.zeros(0, dtype=np.int64))
    arrays = P.kind.full_sweep(P.layer(0), P.code, sw, Hs, Cs, G, H0[0], C0[0])
    return P.back(dict(zip(P.model.layer_names(0), arrays)))


def _lag_starts(batch: Batch, loss_pos: np.ndarray, limit) -> np.ndarray:
    """Earliest flat position each loss reaches: t - min(L(t), t) within its sentence."""
    t = batch.positions()[loss_pos]
    return (loss_pos - np.minimum(np.asarray(limit, dtype=np.int64), t)).astype(np.int64)


# ---------------------------------------------------------------------- public
def _one_blas_thread(fn):
    """Run ``fn`` with BLAS on one thread: the kernels make one small product per step, for which
    BLAS threads that wait on each other cost more than they bring (and stall on a busy machine)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _config.single_threaded_blas():
            return fn(*args, **kwargs)
    return wrapper


@_one_blas_thread
def forward(model: CellModel, batch: Batch, *, return_probs: bool = False, initial_states=None) -> CellForward:
    """States and losses of every sentence. ``initial_states``: None (zero states) or float64
    (n_sentences, model.state_size), every sentence's state before its first step, laid out as
    :attr:`CellForward.state` (per layer h_l, then c_l for an LSTM, layer 0 first)."""
    loss_pos = _check(model, batch)
    H0, C0 = _initial(model, batch, initial_states)
    if model.num_layers > 1:
        Hl, Cl, _ = _states_stacked(_OneHot(model), batch, H0, C0)
        losses, _, _, probs = _output(model, Hl[-1], batch, loss_pos, probs=return_probs)
        return CellForward(Hl[-1], None if Cl is None else Cl[-1], losses, loss_pos, probs, Hl, Cl)
    Hs, Cs, _ = _states(_OneHot(model), batch, H0, C0)
    losses, _, _, probs = _output(model, Hs, batch, loss_pos, probs=return_probs)
    return CellForward(Hs, Cs, losses, loss_pos, probs)


@_one_blas_thread
def gradient(model: CellModel, batch: Batch, scheme: Scheme | str = Full(), *, initial_states=None) -> Gradient:
    """dJ/dtheta of the batch's total loss under ``scheme`` (any scheme with a lag limit). ``initial_states``
    as in :func:`forward`: constants (the gradient does not flow into them, as PyTorch with a detached h0);
    they change the first steps' states and every gradient term that reads h(-1) (or c(-1))."""
    scheme = parse_scheme(scheme)
    loss_pos = _check(model, batch)
    H0, C0 = _initial(model, batch, initial_states)
    P = _OneHot(model)
    lo = _lag_starts(batch, loss_pos, scheme.lag_limit(batch.positions()[loss_pos]))
    full = bool(np.array_equal(lo, batch.offsets[batch.sentence_index()[loss_pos]]))
    if model.num_layers > 1:
        Hl, Cl, Gl = _states_stacked(P, batch, H0, C0)
        losses, dH, out, _ = _output(model, Hl[-1], batch, loss_pos)
        if full:
            dH_all = np.zeros_like(Hl[-1])
            dH_all[loss_pos] = dH
            dH = dH_all
        grads, _, _ = _sweep_stacked(P, batch, Hl, Cl, Gl, loss_pos, dH, lo, False, 1, np.zeros(0, dtype=np.int64),
                                     full, H0, C0)
        arrays = {n: (grads[n][0] if n in grads else out[n]) for n in model.cell.names}
        return Gradient(arrays, float(losses.sum()), int(losses.size), scheme.label, cell=model.cell)
    Hs, Cs, G = _states(P, batch, H0, C0)
    losses, dH, out, _ = _output(model, Hs, batch, loss_pos)
    if full:
        grads = _full_sweep(P, batch, Hs, Cs, G, loss_pos, dH, H0, C0)     # every loss reaches its sentence start
    else:
        grads, _, _ = _sweep(P, batch, Hs, Cs, G, loss_pos, dH, lo, False, 1, np.zeros(0, dtype=np.int64), H0, C0)
    arrays = {n: (grads[n][0] if n in grads else out[n]) for n in model.cell.names}
    return Gradient(arrays, float(losses.sum()), int(losses.size), scheme.label, cell=model.cell)


@_one_blas_thread
def contributions(model: CellModel, batch: Batch, max_lag: int) -> CellContributions:
    """Per (loss t, lag k <= max_lag) norms of dJ(t)/dh(t-k) (and dJ(t)/dc(t-k)), and G_theta[k]."""
    max_lag = check_int(max_lag, "max_lag", 0)
    loss_pos = _check(model, batch)
    P = _OneHot(model)
    stacked = model.num_layers > 1
    H0, C0 = _initial(model, batch, None)
    Hs, Cs, G = (_states_stacked if stacked else _states)(P, batch, H0, C0)
    losses, dH, out, _ = _output(model, Hs[-1] if stacked else Hs, batch, loss_pos)
    t = batch.positions()[loss_pos]
    lo = _lag_starts(batch, loss_pos, np.full(loss_pos.size, max_lag))
    counts = loss_pos - lo + 1
    row0 = np.zeros(loss_pos.size, dtype=np.int64)
    if loss_pos.size:
        np.cumsum(counts[:-1], out=row0[1:])
    layer_h = layer_c = None
    if stacked:
        grads, layer_h, layer_c = _sweep_stacked(P, batch, Hs, Cs, G, loss_pos, dH, lo, True, max_lag + 1, row0, False,
                                                 H0, C0)
        hnorm, cnorm = layer_h[-1], None if layer_c is None else layer_c[-1]
    else:
        grads, hnorm, cnorm = _sweep(P, batch, Hs, Cs, G, loss_pos, dH, lo, True, max_lag + 1, row0, H0, C0)
    sentence = np.repeat(batch.sentence_index()[loss_pos], counts)
    tt = np.repeat(t, counts)
    lag = (np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(row0, counts)).astype(np.int64)
    return CellContributions(max_lag, sentence, tt, lag, hnorm, cnorm, grads, out, float(losses.sum()),
                             int(losses.size), model.cell, layer_h, layer_c)
