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

Every loss is swept back alone through its lag window (O(sum of windows x H^2)); see
docs/maths.md, "Other cells". Gradients come back as :class:`gradlab.engine.Gradient`
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
    per = 2 if model.base == "lstm" else 1
    blocks = a.reshape(batch.n_sentences, L, per, H).transpose(1, 2, 0, 3)   # (L, per, n, H)
    H0 = np.ascontiguousarray(blocks[:, 0])
    C0 = np.ascontiguousarray(blocks[:, 1]) if per == 2 else np.zeros((L, 0, H))
    return H0, C0


class _OneHot:
    """The arrays the one-hot kernels read. With an embedding layer the input product of step t is
    A e(x(t)) = (A Eᵀ)[:, x(t)], so the kernels run on the one-hot weights M = A Eᵀ (|V| columns) and the
    gradients map back exactly: dJ/dA = G_M E and dJ/dE = G_Mᵀ A (for every lag slot alike)."""

    def __init__(self, model: CellModel):
        self.model = model
        self.base = model.base
        self.arrays = dict(model.params)
        if model.embedding_size is not None:
            name = model.input_weights
            self.arrays[name] = model.params[name] @ model.params["embedding"].T
        self.shapes = {n: a.shape for n, a in self.arrays.items()}
        self.truncated = tuple(n for n in model.cell.truncated if n != "embedding")
        #: the rnn cells' activation as the kernels' code (0 for the cells without one)
        self.code = 0 if model.activation is None else activation(model.activation).code

    def __getitem__(self, name):
        return np.ascontiguousarray(self.arrays[name])

    def back(self, grads: dict) -> dict:
        """Kernel gradients (slots first) to the model's parameters."""
        m = self.model
        if m.embedding_size is None:
            return grads
        name = m.input_weights
        GM = grads.pop(name)                     # (slots, rows, |V|)
        A, E = m.params[name], m.params["embedding"]
        out = {"embedding": np.einsum("sav,ae->sve", GM, A), name: GM @ E}
        out.update(grads)
        return {n: out[n] for n in m.cell.truncated}


def _states(P: _OneHot, batch: Batch, H0, C0):
    """(Hs, Cs or None, gate cache or None) from initial states H0, C0 (``_initial``, layer 0 used). The
    gated cells run on fixed chunks of sentences in parallel."""
    from .kernels import gated as K
    from .kernels.rnn_cell import rnn_forward
    N, H = batch.n_tokens, P.model.hidden_size
    Hs = np.zeros((N, H))
    name = P.base
    h0, c0 = H0[0], C0[0]
    if name == "linear":
        K.linear_forward(P["lambda"], P["B"], batch.ids, batch.offsets, h0, Hs)
        return Hs, None, None
    G = np.zeros((N, 4 * H)) if name != "rnn" else None
    Cs = np.zeros((N, H)) if name == "lstm" else None
    w = [P[n] for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    chunks = _config.lockstep_ranges(batch.n_sentences)

    def run(c):
        s0, s1 = chunks[c]
        offsets = batch.offsets[s0:s1 + 1]  # absolute positions: the chunk writes its own rows
        h0c = h0[s0:s1] if h0.shape[0] else h0
        if name == "gru":
            K.gru_forward(*w, batch.ids, offsets, h0c, Hs, G)
        elif name == "rnn":
            rnn_forward(*w, P.code, batch.ids, offsets, h0c, Hs)
        else:
            K.lstm_forward(*w, batch.ids, offsets, h0c, c0[s0:s1] if c0.shape[0] else c0, Hs, Cs, G)

    _config.run_parallel(run, len(chunks))
    return Hs, Cs, G


_KIND = {"gru": 0, "lstm": 1, "linear": 2, "rnn": 3}

#: A gated cell's backward sweep runs on this many fixed chunks of its loss groups in parallel,
#: each with gradient arrays of its own, when those take at most _SWEEP_CHUNK_BYTES (else one chunk).
_SWEEP_CHUNKS = 4
_SWEEP_CHUNK_BYTES = 64 << 20


def _states_stacked(P: _OneHot, batch: Batch, H0, C0):
    """(Hs, Cs or None, G or None), each (num_layers, N, ...): layer 0 reads the word, layer l the layer below;
    layer l starts from H0[l], C0[l] (``_initial``)."""
    from .kernels import gated as K
    from .kernels import stacked as KS
    from .kernels.rnn_cell import rnn_forward
    m = P.model
    L, N, H = m.num_layers, batch.n_tokens, m.hidden_size
    Hs = np.zeros((L, N, H))
    Cs = np.zeros((L, N, H)) if P.base == "lstm" else None
    G = np.zeros((L, N, 4 * H)) if P.base in ("gru", "lstm") else None
    for layer in range(L):
        w = [P[n] for n in m.layer_names(layer)]
        inp = batch.ids if layer == 0 else Hs[layer - 1]
        if P.base == "gru":
            (K.gru_forward if layer == 0 else KS.gru_forward_dense)(
                *w, inp, batch.offsets, H0[layer], Hs[layer], G[layer])
        elif P.base == "lstm":
            (K.lstm_forward if layer == 0 else KS.lstm_forward_dense)(
                *w, inp, batch.offsets, H0[layer], C0[layer], Hs[layer], Cs[layer], G[layer])
        elif P.base == "rnn":
            (rnn_forward if layer == 0 else KS.rnn_forward_dense)(*w, P.code, inp, batch.offsets, H0[layer], Hs[layer])
        else:
            (K.linear_forward if layer == 0 else KS.linear_forward_dense)(*w, inp, batch.offsets, H0[layer], Hs[layer])
    return Hs, Cs, G


def _sweep_stacked(P: _OneHot, batch, Hs, Cs, G, loss_pos, dH, lo, per_lag: bool, n_slots: int, row0, full: bool,
                   H0, C0):
    """The stacked backward kernel; returns ({name: (n_slots, *shape)}, layer h norms, layer c norms)."""
    from .kernels import stacked as KS
    m = P.model
    L, H = m.num_layers, m.hidden_size
    rows = {"gru": 3 * H, "lstm": 4 * H, "linear": H, "rnn": H}[P.base]
    e3, e4 = np.zeros((0, 0, 0)), np.zeros((0, 0, 0, 0))
    V = P.shapes[m.input_weights][1]
    gated = P.base != "linear"
    gWih0 = np.zeros((n_slots, rows, V)) if gated else e3
    gWih = np.zeros((L, n_slots, rows, H)) if gated else e4
    gWhh = np.zeros((L, n_slots, rows, H)) if gated else e4
    gbih = np.zeros((L, n_slots, rows)) if gated else e3
    gbhh = np.zeros((L, n_slots, rows)) if gated else e3
    glam = np.zeros((L, n_slots, H)) if not gated else e3
    gB0 = np.zeros((n_slots, H, V)) if not gated else e3
    gB = np.zeros((L, n_slots, H, H)) if not gated else e4

    def stack(index, first, shape):
        """Layers' arrays layer_names(l)[index] as one (L, *shape) array (layers before ``first`` zero)."""
        out = np.zeros((L,) + shape)
        for layer in range(first, L):
            out[layer] = P[m.layer_names(layer)[index]]
        return out

    if gated:
        Whh, Wih = stack(1, 0, (rows, H)), stack(0, 1, (rows, H))     # layer 0's Wih is one-hot
        lam, B = np.zeros((0, 0)), e3
    else:
        Whh = Wih = e3
        lam = stack(0, 0, (H,))
        B = stack(1, 1, (H, H))
    n_rows = int(row0[-1] + (loss_pos[-1] - lo[-1] + 1)) if (row0.size and loss_pos.size) else 0
    hnorm = np.zeros((L, n_rows))
    cnorm = np.zeros((L, n_rows))
    starts = np.repeat(batch.offsets[:-1], batch.lengths)
    KS.stacked_backward(_KIND[P.base], P.code, Whh, Wih, lam, B, batch.ids, starts, batch.sentence_index(), batch.offsets,
                        loss_pos, lo, dH, full, Hs, Cs if Cs is not None else e3, H0, C0,
                        G if G is not None else e3, per_lag, gWih0,
                        gWih, gWhh, gbih, gbhh, glam, gB0, gB, row0, hnorm, cnorm)
    grads = {}
    for layer in range(L):
        names = m.layer_names(layer)
        if gated:
            arrays = (gWih0 if layer == 0 else gWih[layer], gWhh[layer], gbih[layer], gbhh[layer])
        else:
            arrays = (glam[layer], gB0 if layer == 0 else gB[layer])
        grads.update(zip(names, arrays))
    return P.back(grads), hnorm, (cnorm if P.base == "lstm" else None)


def _output(model: CellModel, Hs, batch: Batch, loss_pos, probs=False):
    """(losses, dJ(t)/dh(t) per loss, {W: dJ/dW, b: dJ/db}, probs or None)."""
    W, b = model.params["W"], model.params["b"]
    rows = Hs[loss_pos]
    logits = rows @ W.T + b
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    z = e.sum(axis=1, keepdims=True)
    d = batch.targets[loss_pos]
    idx = np.arange(loss_pos.size)
    losses = (np.log(z[:, 0]) + m[:, 0]) - logits[idx, d]
    dlogits = e / z
    dlogits[idx, d] -= 1.0
    dH = np.ascontiguousarray(dlogits @ W)
    out = {"W": dlogits.T @ rows, "b": dlogits.sum(axis=0)}
    P = None
    if probs:
        all_logits = Hs @ W.T + b
        all_logits -= all_logits.max(axis=1, keepdims=True)
        P = np.exp(all_logits)
        P /= P.sum(axis=1, keepdims=True)
    return losses, dH, out, P


def _groups(batch: Batch, loss_pos, lo, per_lag: bool):
    """(last, first, stop) of the backward sweep's groups. Contributions: one group per loss. A
    gradient: the signals of consecutive losses of a sentence that reach back to the same step are
    summed as the sweep passes them (full BPTT: one group per sentence)."""
    if per_lag or loss_pos.size == 0:
        return loss_pos, loss_pos, lo
    sent = batch.sentence_index()[loss_pos]
    new = np.r_[True, (sent[1:] != sent[:-1]) | (lo[1:] != lo[:-1])]
    begin = np.flatnonzero(new)
    end = np.r_[begin[1:], loss_pos.size] - 1
    return (np.ascontiguousarray(loss_pos[end]), np.ascontiguousarray(loss_pos[begin]),
            np.ascontiguousarray(lo[begin]))


def _sweep(P: _OneHot, batch, Hs, Cs, G, loss_pos, dH, lo, per_lag: bool, n_slots: int, row0, H0, C0):
    """Run the cell's backward kernel (initial states H0, C0 of ``_initial``); returns
    ({name: (n_slots, *shape)}, h_norm, c_norm)."""
    from .kernels import gated as K
    from .kernels.rnn_cell import rnn_sweep
    shapes = P.shapes
    names = P.truncated
    name = P.base
    gated = name in ("gru", "lstm", "rnn")  # their kernels write weight_ih_l0's gradient transposed
    grads = {} if gated else {n: np.zeros((n_slots,) + shapes[n]) for n in names}
    n_rows = int(row0[-1] + (loss_pos[-1] - lo[-1] + 1)) if (row0.size and loss_pos.size) else 0
    hnorm = np.zeros(n_rows)
    cnorm = np.zeros(n_rows)
    starts = np.repeat(batch.offsets[:-1], batch.lengths)
    sent = batch.sentence_index()
    if gated:
        last, first, stop = _groups(batch, loss_pos, lo, per_lag)
        loss_at = np.full(batch.n_tokens, -1, dtype=np.int64)
        loss_at[loss_pos] = np.arange(loss_pos.size)
        V, rows = shapes["weight_ih_l0"][1], shapes["weight_ih_l0"][0]
        # fixed chunks of groups in parallel, each with its own gradients (summed in order), when they fit
        per_chunk = n_slots * (V * rows + rows * P.model.hidden_size + 2 * rows) * 8
        chunks = _config.ranges(last.size, _SWEEP_CHUNKS if per_chunk <= _SWEEP_CHUNK_BYTES else 1)

        def run(c):
            c0, c1 = chunks[c]
            gWihT = np.zeros((n_slots, V, rows))
            g = [gWihT] + [np.zeros((n_slots,) + shapes[n]) for n in ("weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
            part = (last[c0:c1], first[c0:c1], stop[c0:c1], loss_at, dH, Hs)
            r0 = row0[c0:c1] if row0.size else row0
            if name == "gru":
                K.gru_sweep(P["weight_hh_l0"], batch.ids, starts, sent, *part, H0[0], G, per_lag, *g, r0, hnorm)
            elif name == "rnn":
                rnn_sweep(P["weight_hh_l0"], P.code, batch.ids, starts, sent, *part, H0[0], per_lag, *g, r0, hnorm)
            else:
                K.lstm_sweep(P["weight_hh_l0"], batch.ids, starts, sent, *part, Cs, H0[0], C0[0], G, per_lag, *g, r0,
                             hnorm, cnorm)
            g[0] = gWihT.transpose(0, 2, 1)
            return g

        parts = _config.run_parallel(run, len(chunks))
        for i, n in enumerate(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")):
            total = np.zeros((n_slots,) + shapes[n])
            for part in parts:
                total += part[i]
            grads[n] = total
        grads = {n: grads[n] for n in names}
    else:
        K.linear_backward(P["lambda"], batch.ids, starts, sent, loss_pos, lo, dH, Hs, H0[0], per_lag,
                          grads["lambda"], grads["B"], row0, hnorm)
    return P.back(grads), hnorm, (cnorm if name == "lstm" else None)


def _full_sweep(P: _OneHot, batch, Hs, Cs, G, loss_pos, dH, H0, C0):
    """Gradients when every loss reaches its sentence's first step: one accumulated sweep per sentence."""
    if P.base != "linear":
        lo = batch.offsets[batch.sentence_index()[loss_pos]]
        return _sweep(P, batch, Hs, Cs, G, loss_pos, dH, lo, False, 1, np.zeros(0, dtype=np.int64), H0, C0)[0]
    from .kernels import gated as K
    grads = {n: np.zeros((1,) + P.shapes[n]) for n in P.truncated}
    dHall = np.zeros_like(Hs)
    dHall[loss_pos] = dH
    K.linear_backward_full(P["lambda"], batch.ids, batch.offsets, dHall, Hs, H0[0], grads["lambda"], grads["B"])
    return P.back(grads)


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
