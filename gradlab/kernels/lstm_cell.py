"""The LSTM (nn.LSTM) as a cell kind: the lockstep kernels of ``gated`` and the dense layer of ``stacked``;
its state is (h, c)."""
from . import gated, stacked
from .kinds import LockstepKind, register


class LSTMKind(LockstepKind):
    name = "lstm"
    gates = 4
    cache = 5           # i, f, g, o and tanh c(t) of every step
    stacked_code = 1

    def forward_kernel(self, w, code, ids, offsets, h0, c0, Hs, Cs, G):
        gated.lstm_forward(*w, ids, offsets, h0, c0, Hs, Cs, G)

    def forward_dense(self, w, code, X, offsets, h0, c0, Hs, Cs, G):
        stacked.lstm_forward_dense(*w, X, offsets, h0, c0, Hs, Cs, G)

    def sweep_kernel(self, Whh, code, sw, part, Hs, Cs, G, h0, c0, g, row0, hnorm, cnorm):
        last, first, stop, loss_at = part
        gated.lstm_sweep(Whh, sw.ids, sw.starts, sw.sent, last, first, stop, loss_at, sw.dH, Hs, Cs, h0, c0, G,
                         sw.per_lag, *g, row0, hnorm, cnorm)


LSTM = register(LSTMKind())
