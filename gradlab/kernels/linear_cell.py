"""The diagonal linear recurrence h(t) = lambda * h(t-1) + B x(t) as a cell kind (weights lambda, B): every
loss swept back alone (elementwise, no matrix product), full BPTT in one sweep per sentence."""
import numpy as np

from . import gated, stacked
from .kinds import Kind, register


class LinearKind(Kind):
    name = "linear"

    def forward(self, w, code, ids, offsets, h0, c0, Hs, Cs, G, chunks):
        gated.linear_forward(*w, ids, offsets, h0, Hs)

    def forward_dense(self, w, code, X, offsets, h0, c0, Hs, Cs, G):
        stacked.linear_forward_dense(*w, X, offsets, h0, Hs)

    def sweep(self, w, code, sw, Hs, Cs, G, h0, c0, hnorm, cnorm):
        glam, gB = (np.zeros((sw.n_slots,) + a.shape) for a in w)
        gated.linear_backward(w[0], sw.ids, sw.starts, sw.sent, sw.loss_pos, sw.lo, sw.dH, Hs, h0, sw.per_lag,
                              glam, gB, sw.row0, hnorm)
        return glam, gB

    def full_sweep(self, w, code, sw, Hs, Cs, G, h0, c0):
        glam, gB = (np.zeros((1,) + a.shape) for a in w)
        dHall = np.zeros_like(Hs)
        dHall[sw.loss_pos] = sw.dH
        gated.linear_backward_full(w[0], sw.ids, sw.offsets, dHall, Hs, h0, glam, gB)
        return glam, gB

    def stacked_sweep(self, ws, code, sw, full, Hs, Cs, G, H0, C0, hnorm, cnorm):
        L, H, S = len(ws), Hs.shape[2], sw.n_slots
        V = ws[0][1].shape[1]
        glam, gB0, gB = np.zeros((L, S, H)), np.zeros((S, H, V)), np.zeros((L, S, H, H))
        lam, B = np.zeros((L, H)), np.zeros((L, H, H))      # layer 0's B is one-hot: left zero
        for layer, w in enumerate(ws):
            lam[layer] = w[0]
            if layer:
                B[layer] = w[1]
        stacked.linear_backward(lam, B, sw.ids, sw.starts, sw.sent, sw.offsets, sw.loss_pos, sw.lo, sw.dH, full, Hs,
                                H0, sw.per_lag, glam, gB0, gB, sw.row0, hnorm)
        return [(glam[layer], gB0 if layer == 0 else gB[layer]) for layer in range(L)]


LINEAR = register(LinearKind())
