"""Parameter updates of the trainer: one minibatch step, block steps, the fused compiled call, clipping.

The loop (``gradlab.train.trainer``) decides which sentences come next and with
which lag limit; the functions here make the updates and report
``(loss, n_losses, n_updates, n_clipped)`` per minibatch. The update rule is

    theta <- theta - lr * g / B      (g / B rescaled to norm ``clip`` when its global norm exceeds it)

for every parameter of the model's cell (``model.parameters()``); for the Elman
:class:`~gradlab.RNN` the input parameter V only in the columns of the words the
update saw (:func:`touched_columns`), for a :class:`~gradlab.CellModel` every array
whole. See the trainer's module docstring for block schemes and the fused path
(Elman only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _config
from ..batch import NO_LOSS, Batch
from ..cellmodel import CellModel
from ..engine import forward as _forward, gradient as _gradient
from ..model import RNN, activation_code
from ..schemes import Block, Full

__all__ = ["DivergenceError", "UpdateContext", "minibatch_step", "block_step", "apply_gradient", "fused_minibatches",
           "gather", "without_losses", "touched_columns"]


class DivergenceError(FloatingPointError):
    """The loss or a parameter became non-finite during training.

    Attributes
    ----------
    epoch : int
        Epoch (from 0) of the failing update.
    update : int
        Number of the failing update (from 1, counted over the whole run).
    sentences : tuple of int
        Indices (in the training data) of the sentences of the failing update.
    """

    def __init__(self, message: str, *, epoch: int, update: int, sentences: tuple):
        super().__init__(message)
        self.epoch = epoch
        self.update = update
        self.sentences = sentences


@dataclass(frozen=True)
class UpdateContext:
    """What the updates of one chunk share: the rate, clipping, and where the run is (for errors).

    Attributes
    ----------
    lr : float
        This epoch's learning rate.
    clip : float or None
    epoch : int
    updates : int
        Updates made before this chunk.
    """

    lr: float
    clip: float | None
    epoch: int
    updates: int

    def diverged(self, what: str, sentences, where, done: int) -> DivergenceError:
        """The error for update ``updates + done + 1`` of ``sentences`` (``where``: a block's first step)."""
        sents = tuple(int(s) for s in np.atleast_1d(sentences))
        shown = ", ".join(str(s) for s in sents[:8]) + (", ..." if len(sents) > 8 else "")
        label = "sentence" if len(sents) == 1 else "sentences"
        steps = "" if where is None else f", the block starting at step {where}"
        update = self.updates + done + 1
        return DivergenceError(
            f"training diverged in epoch {self.epoch}, update {update} ({label} {shown} of the training data"
            f"{steps}): {what}. Lower learning_rate (now {self.lr:g} in this epoch) or set clip "
            f"(now {self.clip}).", epoch=self.epoch, update=update, sentences=sents)

    def check_loss(self, loss: float, sentences, where, done: int = 0) -> None:
        if not np.isfinite(loss):
            raise self.diverged(f"the loss is {loss} at the parameters before this update", sentences, where, done)


# ---------------------------------------------------------------------- batches
def gather(batch: Batch, sentences: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None,
           loss_from: np.ndarray | None = None) -> Batch:
    """Steps [lo, hi) of the given sentences (whole sentences by default) as a new batch.

    With ``loss_from``, steps before ``loss_from`` (same coordinates as lo/hi) lose
    their targets (NO_LOSS).
    """
    starts = batch.offsets[sentences]
    if lo is None:
        lo = np.zeros(sentences.size, dtype=np.int64)
        hi = batch.offsets[sentences + 1] - starts
    lens = hi - lo
    off = np.zeros(sentences.size + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    local = np.arange(int(off[-1]), dtype=np.int64) - np.repeat(off[:-1], lens)
    flat = local + np.repeat(starts + lo, lens)
    targets = batch.targets[flat]
    if loss_from is not None:
        targets = np.where(local + np.repeat(lo, lens) < np.repeat(loss_from, lens), NO_LOSS, targets)
    return Batch(batch.ids[flat], targets, off, batch.objective)


def without_losses(b: Batch) -> Batch:
    """The same steps with every target NO_LOSS."""
    return Batch(b.ids, np.full(b.n_tokens, NO_LOSS, dtype=np.int64), b.offsets, b.objective)


def _store(stored: np.ndarray, first: np.ndarray, S: np.ndarray, block: Batch) -> None:
    lens = block.lengths
    rows = np.repeat(first - block.offsets[:-1], lens) + np.arange(block.n_tokens, dtype=np.int64)
    stored[rows] = S


# ---------------------------------------------------------------------- step by step
def touched_columns(model: RNN | CellModel, ids: np.ndarray) -> np.ndarray | None:
    """The columns of the input parameters that an update with these input ids changes.

    The Elman RNN reads column x(t) of V, so only the words seen change (an
    optimisation that gives the same result as the whole update). None for a
    CellModel: its input parameters are updated whole (biases are 1-D, an embedding
    is indexed by rows, a stacked layer reads the dense states of the layer below).
    """
    return np.unique(ids) if isinstance(model, RNN) else None


def _non_finite(model: RNN | CellModel, cols: np.ndarray | None = None) -> list[str]:
    """Names of the parameters with a non-finite entry (input parameters: only in ``cols``)."""
    inputs = model.cell.with_role("input")
    return [name for name, a in model.parameters().items()
            if not np.isfinite(a[:, cols] if cols is not None and name in inputs else a).all()]


def apply_gradient(model: RNN | CellModel, g, B: int, cols: np.ndarray | None, ctx: UpdateContext, sentences,
                   where, done: int = 0) -> bool:
    """theta -= lr * g / B (clipped to norm ``clip``); input parameters only in the columns ``cols``
    (:func:`touched_columns`; None: every array whole).

    The engine's arrays in ``g`` are fresh for this update and are scaled in place
    (the same floating-point operations as lr * (g / B), without temporaries).
    Returns whether the gradient was clipped.
    """
    inputs = () if cols is None else model.cell.with_role("input")
    parts = {name: (a[:, cols] if name in inputs else a) for name, a in g.as_dict().items()}
    if B != 1:
        for a in parts.values():
            a /= B
    clipped = False
    if ctx.clip is not None:
        norm = float(np.sqrt(sum(np.sum(a * a) for a in parts.values())))
        if norm > ctx.clip:
            f = ctx.clip / norm
            for a in parts.values():
                a *= f
            clipped = True
    params = model.parameters()
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging update is reported below, not warned
        for a in parts.values():
            a *= ctx.lr
        for name, a in parts.items():
            if name in inputs:
                params[name][:, cols] -= a
            else:
                params[name] -= a
    bad = _non_finite(model, cols)
    if bad:
        raise ctx.diverged(f"parameter(s) {', '.join(bad)} became non-finite after the update", sentences, where,
                           done)
    return clipped


def minibatch_step(model: RNN | CellModel, batch: Batch, idx: np.ndarray, scheme, ctx: UpdateContext, *,
                   gradient=_gradient) -> tuple[float, int, int, int]:
    """One update with the scheme's gradient of the whole minibatch ``idx`` (sentences of ``batch``)."""
    mb = gather(batch, idx)
    g = gradient(model, mb, scheme)
    if g.n_losses == 0:
        return 0.0, 0, 0, 0
    ctx.check_loss(g.loss, idx, None)
    clipped = apply_gradient(model, g, idx.size, touched_columns(model, mb.ids), ctx, idx, None)
    return g.loss, g.n_losses, 1, int(clipped)


def _carried_states(model: RNN | CellModel, forward_result) -> np.ndarray:
    """The state every token carries to the next step, (N, S): s(t) of the Elman RNN; a CellModel's full state
    (``CellForward.state``: h and c of every layer, the layout of the cell engine's ``initial_states``)."""
    return forward_result.s if isinstance(model, RNN) else forward_result.state


def block_step(model: RNN | CellModel, batch: Batch, idx: np.ndarray, scheme: Block, carry: str, ctx: UpdateContext,
               *, gradient=_gradient, forward=_forward) -> tuple[float, int, int, int]:
    """The minibatch's sentences block by block in lockstep, one update per block."""
    k1, back = scheme.k1, scheme.k2 - scheme.k1
    S = model.hidden_size if isinstance(model, RNN) else model.state_size
    lengths = batch.lengths[idx]
    starts = np.zeros(idx.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    stored = np.empty((int(starts[-1]), S), dtype=model.dtype)  # the state of every step so far, per sentence
    B = idx.size
    loss_sum, n_loss, n_upd, n_clip = 0.0, 0, 0, 0
    for b0 in range(0, int(lengths.max()), k1):
        active = np.flatnonzero(lengths > b0)
        sent = idx[active]
        b1 = np.minimum(b0 + k1, lengths[active])
        w0 = max(0, b0 - back)
        lo = np.full(active.size, w0, dtype=np.int64)
        b0s = np.full(active.size, b0, dtype=np.int64)
        window = gather(batch, sent, lo, b1, loss_from=b0s)
        init_w = stored[starts[active] + w0 - 1] if w0 > 0 else None
        block = without_losses(gather(batch, sent, b0s, b1))
        init_b = stored[starts[active] + b0 - 1] if b0 > 0 else None
        has_loss = bool(np.any(window.targets != NO_LOSS))
        if has_loss and carry == "before_update":
            _store(stored, starts[active] + b0, _carried_states(model, forward(model, block, initial_states=init_b)),
                   block)
        if has_loss:
            g = gradient(model, window, Full(), initial_states=init_w)
            where = b0
            ctx.check_loss(g.loss, sent, where, n_upd)
            n_clip += apply_gradient(model, g, B, touched_columns(model, window.ids), ctx, sent, where, n_upd)
            loss_sum += g.loss
            n_loss += g.n_losses
            n_upd += 1
        if not has_loss or carry == "after_update":
            _store(stored, starts[active] + b0, _carried_states(model, forward(model, block, initial_states=init_b)),
                   block)
    return loss_sum, n_loss, n_upd, n_clip


# ---------------------------------------------------------------------- fused
def fused_minibatches(model: RNN, batch: Batch, order: np.ndarray, batch_size: int, ctx: UpdateContext, limit: int,
                      k1: int, back: int, tau: int, carry: str, blocks: bool) -> list:
    """Minibatches of ``order`` (consecutive slices of ``batch_size``) by ``sgd_minibatches``, in place on ``model``.

    ``k1``, ``back``, ``tau``: block length, carry-back and lag limit of the compiled
    loop; ``limit``: the most updates to make; ``blocks``: name the failing block in
    errors. Returns [(indices, loss, n_losses, n_updates, n_clipped)] of the
    minibatches done.
    """
    from ..engine import _N_DU_CHUNKS
    from ..kernels.train import LOSS_NOT_FINITE, sgd_minibatches
    bs = batch_size
    mb_start = np.append(np.arange(0, order.size, bs, dtype=np.int64), np.int64(order.size))
    n_mb = mb_start.size - 1
    loss, n_loss = np.zeros(n_mb), np.zeros(n_mb, dtype=np.int64)
    n_upd, n_clip = np.zeros(n_mb, dtype=np.int64), np.zeros(n_mb, dtype=np.int64)
    fail = np.zeros(4, dtype=np.int64)
    VT = np.ascontiguousarray(model.V.T)
    with _config.single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
        done = sgd_minibatches(model.U, VT, model.W, batch.ids, batch.targets, batch.offsets, order, mb_start,
                               0, n_mb, k1, back, tau, model.dtype.type(ctx.lr), -1.0 if ctx.clip is None else ctx.clip,
                               carry == "after_update", activation_code(model.activation), limit,
                               _config.OUTPUT_TILE, _config.N_GROUPS, _N_DU_CHUNKS, loss, n_loss, n_upd,
                               n_clip, fail)
    model.V[...] = VT.T
    if fail[0]:
        m, b0, upd = int(fail[1]), int(fail[2]), int(fail[3])
        idx = order[mb_start[m]:mb_start[m + 1]]
        before = int(n_upd[:m].sum())  # the minibatches before count as done in the error's update number
        where = b0 if blocks else None
        sents = idx[batch.lengths[idx] > b0] if where is not None else idx
        if fail[0] == LOSS_NOT_FINITE:
            raise ctx.diverged(f"the loss is {loss[m]} at the parameters before this update", sents, where,
                               before + upd)
        bad = _non_finite(model)
        raise ctx.diverged(f"parameter(s) {', '.join(bad)} became non-finite after the update", sents, where,
                           before + upd)
    return [(order[mb_start[m]:mb_start[m + 1]], float(loss[m]), int(n_loss[m]), int(n_upd[m]),
             int(n_clip[m])) for m in range(done)]
