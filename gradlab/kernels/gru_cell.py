"""The GRU (nn.GRU) as a cell kind: the lockstep kernels of ``gated`` and the dense layer of ``stacked``."""
from . import gated, stacked
from .kinds import LockstepKind, register


class GRUKind(LockstepKind):
    name = "gru"
    gates = 3
    cache = 4           # r, z, n and W_hn h(t-1) + b_hn of every step
    stacked_code = 0

    def forward_kernel(self, w, code, ids, offsets, h0, c0, Hs, Cs, G):
        gated.gru_forward(*w, ids, offsets, h0, Hs, G)

    def forward_dense(self, w, code, X, offsets, h0, c0, Hs, Cs, G):
        stacked.gru_forward_dense(*w, X, offsets, h0, Hs, G)

    def sweep_kernel(self, Whh, code, sw, part, Hs, Cs, G, h0, c0, g, row0, hnorm, cnorm):
        last, first, stop, loss_at = part
        gated.gru_sweep(Whh, sw.ids, sw.starts, sw.sent, last, first, stop, loss_at, sw.dH, Hs, h0, G, sw.per_lag,
                        *g, row0, hnorm)


GRU = register(GRUKind())
