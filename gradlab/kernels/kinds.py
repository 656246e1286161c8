"""The recurrences of gradlab.CellModel as kinds: one module per kind holds its hooks for
``gradlab.cell_engine`` (``gru_cell``, ``lstm_cell``, ``linear_cell``, ``rnn_cell``), registered here.

A :class:`Kind` runs one recurrence on plain arrays: the forward pass of the one-hot layer and of a
layer reading the layer below, the backward sweep of one layer (gradient or per-lag contributions),
full BPTT, and the sweep of stacked layers. The engine validates, maps an embedding layer to one-hot
weights and back, and computes the output layer; it never asks which cell it runs. Adding a cell is
adding its ``gradlab.cells`` declaration and one module here with a :class:`Kind`, registered with
:func:`register` (the built-in modules are listed in ``_BUILTIN``).

Weights reach the hooks as one layer's arrays in ``CellModel.layer_names`` order (the one-hot
layer's input weights with |V| columns: step t reads column x(t)); gradients come back in the same
order, each with a leading slot axis (one slot for a gradient, K + 1 for per-lag sums).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace

import numpy as np

from .. import _config

__all__ = ["Sweep", "Kind", "LockstepKind", "register", "kind", "groups"]

#: A lockstep backward sweep runs on this many fixed chunks of its loss groups in parallel, each with
#: gradient arrays of its own, when those take at most SWEEP_CHUNK_BYTES (else one chunk). Per-lag sums
#: use fewer: their arrays are n_slots times larger, and zeroing and summing them costs more than the
#: finer balance brings (GRU, H = 200, K = 20: 12 % less CPU time with 2 chunks than with 4).
SWEEP_CHUNKS = 4
SWEEP_CHUNKS_PER_LAG = 2
SWEEP_CHUNK_BYTES = 64 << 20


@dataclass(frozen=True, eq=False)
class Sweep:
    """What a backward sweep reads of the batch and the losses (plain arrays).

    Attributes
    ----------
    ids, offsets : int64 (N,), (n_sentences + 1,)
    starts, sent : int64 (N,)
        First flat position and index of every token's sentence.
    loss_pos, lo : int64 (n_losses,)
        Each loss's position and the earliest position its window reaches.
    dH : float64 (n_losses, H)
        dJ(t)/dh(t) of every loss (of the top layer when stacked).
    per_lag : bool
        Per-lag sums (slot k = lag k, one group per loss) instead of one gradient.
    n_slots : int
    row0 : int64 (n_losses,) or empty
        Each loss's first row of the norms (lag k at row0 + k); empty: no norms.
    """

    ids: np.ndarray
    offsets: np.ndarray
    starts: np.ndarray
    sent: np.ndarray
    loss_pos: np.ndarray
    lo: np.ndarray
    dH: np.ndarray
    per_lag: bool
    n_slots: int
    row0: np.ndarray


def groups(sw: Sweep):
    """(last, first, stop) of the lockstep sweep's groups. Contributions: one group per loss. A gradient:
    the signals of consecutive losses of a sentence that reach back to the same step are summed as the
    sweep passes them (full BPTT: one group per sentence)."""
    loss_pos, lo = sw.loss_pos, sw.lo
    if sw.per_lag or loss_pos.size == 0:
        return loss_pos, loss_pos, lo
    sent = sw.sent[loss_pos]
    new = np.r_[True, (sent[1:] != sent[:-1]) | (lo[1:] != lo[:-1])]
    begin = np.flatnonzero(new)
    end = np.r_[begin[1:], loss_pos.size] - 1
    return (np.ascontiguousarray(loss_pos[end]), np.ascontiguousarray(loss_pos[begin]),
            np.ascontiguousarray(lo[begin]))


def _loss_at(sw: Sweep) -> np.ndarray:
    """For every flat position, the index of its loss in ``sw.loss_pos`` (-1: no loss there)."""
    loss_at = np.full(sw.ids.size, -1, dtype=np.int64)
    loss_at[sw.loss_pos] = np.arange(sw.loss_pos.size)
    return loss_at


def _rows(a, s0, s1):
    """Rows s0..s1-1 of initial states, or ``a`` itself when it has none (zero states)."""
    return a[s0:s1] if a.shape[0] else a


class Kind:
    """A recurrence's hooks. ``code`` is the activation's kernel code (the rnn cell's; 0 for the others);
    h0, c0 are a layer's initial states (n_sentences, H), or arrays without rows for zero states."""

    #: the name of the recurrence ("gru"), as ``CellModel.base``
    name = ""
    #: columns per hidden unit of the per-step cache G the forward pass keeps for the sweeps (0: none)
    cache = 0

    def forward(self, w, code, ids, offsets, h0, c0, Hs, Cs, G, chunks) -> None:
        """States of the one-hot layer into Hs (and Cs, G) for every sentence; ``chunks``: the sentence
        ranges a lockstep kernel may run in parallel."""
        raise NotImplementedError

    def forward_dense(self, w, code, X, offsets, h0, c0, Hs, Cs, G) -> None:
        """States of a layer that reads X (N, H_below), the states of the layer below."""
        raise NotImplementedError

    def sweep(self, w, code, sw: Sweep, Hs, Cs, G, h0, c0, hnorm, cnorm) -> tuple:
        """One layer's backward sweep: gradients (n_slots, *shape) in ``w``'s order; the norms
        ||dJ(t)/dh(t-k)|| (and ||dJ(t)/dc(t-k)||) into hnorm (cnorm) when ``sw.row0`` is not empty."""
        raise NotImplementedError

    def full_sweep(self, w, code, sw: Sweep, Hs, Cs, G, h0, c0) -> tuple:
        """Full BPTT (every window starts at its sentence's start), one slot; by default ``sweep``."""
        sw = replace(sw, lo=sw.offsets[sw.sent[sw.loss_pos]], per_lag=False, n_slots=1,
                     row0=np.zeros(0, dtype=np.int64))
        return self.sweep(w, code, sw, Hs, Cs, G, h0, c0, np.zeros(0), np.zeros(0))

    def stacked_sweep(self, ws, code, sw: Sweep, full: bool, Hs, Cs, G, H0, C0, hnorm, cnorm) -> list:
        """Stacked layers' sweep (arrays with the layer first; ``ws``: every layer's weights). ``full``: one
        accumulated sweep per sentence with sw.dH (N, H) the signal injected at every position. Returns
        every layer's gradients in ``ws[layer]``'s order; hnorm, cnorm (num_layers, n_rows)."""
        raise NotImplementedError


class LockstepKind(Kind):
    """A recurrence with PyTorch's weights W_ih, W_hh, b_ih, b_hh (``gates`` blocks of H rows each) whose
    kernels run sentences and groups of losses in lockstep, and whose stacked layers run in
    ``stacked.lockstep_backward`` (as kind ``stacked_code``)."""

    gates = 1
    stacked_code = -1

    def forward_kernel(self, w, code, ids, offsets, h0, c0, Hs, Cs, G) -> None:
        """The one-hot lockstep forward kernel on the sentences of ``offsets`` (absolute positions)."""
        raise NotImplementedError

    def sweep_kernel(self, Whh, code, sw: Sweep, part, Hs, Cs, G, h0, c0, g, row0, hnorm, cnorm) -> None:
        """The lockstep sweep kernel on groups ``part`` = (last, first, stop, loss_at); g = [W_ih^T, W_hh,
        b_ih, b_hh] gradients, the input weights' transposed (slots, |V|, rows)."""
        raise NotImplementedError

    def forward(self, w, code, ids, offsets, h0, c0, Hs, Cs, G, chunks) -> None:
        def run(c):
            s0, s1 = chunks[c]
            self.forward_kernel(w, code, ids, offsets[s0:s1 + 1], _rows(h0, s0, s1), _rows(c0, s0, s1), Hs, Cs, G)

        _config.run_parallel(run, len(chunks))

    def sweep(self, w, code, sw: Sweep, Hs, Cs, G, h0, c0, hnorm, cnorm) -> tuple:
        last, first, stop = groups(sw)
        loss_at = _loss_at(sw)
        rows, V = w[0].shape
        H = w[1].shape[1]
        n_slots = sw.n_slots
        # fixed chunks of groups in parallel, each with its own gradients (summed in order), when they fit
        per_chunk = n_slots * (V * rows + rows * H + 2 * rows) * 8
        n_chunks = SWEEP_CHUNKS_PER_LAG if sw.per_lag else SWEEP_CHUNKS
        chunks = _config.ranges(last.size, n_chunks if per_chunk <= SWEEP_CHUNK_BYTES else 1)

        def run(c):
            c0_, c1 = chunks[c]
            gWihT = np.zeros((n_slots, V, rows))
            g = [gWihT] + [np.zeros((n_slots,) + a.shape) for a in w[1:]]
            part = (last[c0_:c1], first[c0_:c1], stop[c0_:c1], loss_at)
            r0 = sw.row0[c0_:c1] if sw.row0.size else sw.row0
            self.sweep_kernel(w[1], code, sw, part, Hs, Cs, G, h0, c0, g, r0, hnorm, cnorm)
            return g

        parts = _config.run_parallel(run, len(chunks))
        if not parts:                # no losses
            return tuple(np.zeros((n_slots,) + a.shape) for a in w)
        out = []
        for i in range(len(w)):      # summed in chunk order into the first chunk's arrays
            total = parts[0][i]
            for part in parts[1:]:
                total += part[i]
            out.append(total)
        out[0] = np.ascontiguousarray(out[0].transpose(0, 2, 1))
        return tuple(out)

    def stacked_sweep(self, ws, code, sw: Sweep, full: bool, Hs, Cs, G, H0, C0, hnorm, cnorm) -> list:
        from .stacked import lockstep_backward
        L, H, S = len(ws), Hs.shape[2], sw.n_slots
        rows, V = self.gates * H, ws[0][0].shape[1]
        e3 = np.zeros((0, 0, 0))
        gWih0T = np.zeros((S, V, rows))
        gWih, gWhh = np.zeros((L, S, rows, H)), np.zeros((L, S, rows, H))
        gbih, gbhh = np.zeros((L, S, rows)), np.zeros((L, S, rows))
        Whh, Wih = np.zeros((L, rows, H)), np.zeros((L, rows, H))      # layer 0's Wih is one-hot: left zero
        for layer, w in enumerate(ws):
            Whh[layer] = w[1]
            if layer:
                Wih[layer] = w[0]
        if full:          # one group per sentence from its last step, sw.dH (N, H) injected at every position
            ends = sw.offsets[1:] - 1
            keep = ends >= sw.offsets[:-1]
            last = np.ascontiguousarray(ends[keep])
            first = stop = np.ascontiguousarray(sw.offsets[:-1][keep])
            loss_at = np.arange(sw.ids.size, dtype=np.int64)
        else:
            last, first, stop = groups(sw)
            loss_at = _loss_at(sw)
        lockstep_backward(self.stacked_code, code, Whh, Wih, sw.ids, sw.starts, sw.sent, last, first, stop, loss_at,
                          sw.dH, Hs, Cs if Cs is not None else e3, H0, C0, G if G is not None else e3, sw.per_lag,
                          gWih0T, gWih, gWhh, gbih, gbhh, sw.row0, hnorm, cnorm)
        gWih0 = np.ascontiguousarray(gWih0T.transpose(0, 2, 1))
        return [(gWih0 if layer == 0 else gWih[layer], gWhh[layer], gbih[layer], gbhh[layer]) for layer in range(L)]


_KINDS: dict[str, Kind] = {}
_BUILTIN = ("gru_cell", "lstm_cell", "linear_cell", "rnn_cell")


def register(new: Kind) -> Kind:
    """Add a kind (its ``name`` is the ``CellModel.base`` it runs); a name can be registered once."""
    if new.name in _KINDS and _KINDS[new.name] is not new:
        raise ValueError(f"a cell kind named {new.name!r} is already registered")
    _KINDS[new.name] = new
    return new


def kind(name: str) -> Kind:
    """The registered kind that runs the recurrence ``name`` ("gru", ...)."""
    for module in _BUILTIN:       # imported once (the modules register their kinds)
        importlib.import_module(f"{__package__}.{module}")
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"no cell kind runs {name!r}; registered: {sorted(_KINDS)}") from None
