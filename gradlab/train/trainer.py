"""SGD training of an Elman RNN under any truncation scheme, with checkpoints and resume.

The update rule
---------------
For a minibatch of B sentences the engine gives g = dJ/dtheta, the gradient of
the *sum* of the minibatch's losses (:func:`gradlab.gradient`). The update is

    theta <- theta - lr_epoch * g / B          lr_epoch = learning_rate / (1 + epoch / anneal)

(anneal = 0: constant rate; epochs count from 0). With B = 1 this is the
coursework's per-sentence update (sum over the sentence's losses, no division).
With ``clip`` set, g / B is rescaled to norm ``clip`` when its global norm over
U, V and W together exceeds it; the history counts how often that happened.

Schemes
-------
- ``Full()`` and ``Sliding(tau)``: one gradient call per minibatch with the scheme.
- ``Adaptive(delta, every, ...)`` (``"adaptive:delta=0.1"``): before the first update and
  then every ``every`` updates, :func:`gradlab.train.adaptive.estimate_truncation` chooses
  tau from the profile of the next ``sentences`` sentences of the epoch's order (at the
  current parameters); the minibatches in between are ``Sliding(tau)`` steps, exactly.
  Each choice is a row of ``TrainResult.truncation``; the history's ``tau`` column is
  the tau in force at the end of each epoch.
- ``Block(k1, k2)`` (``chunked``, ``mikolov``): real truncated training. Each
  sentence is cut into blocks [b0, b1) of k1 steps. At the end of every block the
  parameters are updated with the gradient of that block's losses carried back to
  w0 = max(0, b0 - (k2 - k1)): :func:`gradlab.gradient` with ``Full()`` on the
  window x[w0:b1], targets only in [b0, b1), and s(w0 - 1) from the stored states
  as the initial state (a constant: the signal stops there). The states of the
  block are then computed by :func:`gradlab.forward` from the stored s(b0 - 1) and
  stored for the blocks that follow: with the parameters that made the gradient
  (``carry="before_update"``, the default: what real truncated training does — for
  ``chunked(h)`` exactly the "detach every h steps" loop of PyTorch practice, and
  rnnlm's carried state) or recomputed with the updated parameters
  (``carry="after_update"``). A minibatch's sentences go
  through their blocks in lockstep (block j of every sentence that is long enough
  is one update; sentences that have ended drop out); each update divides by the
  minibatch's B, so at a fixed theta the block updates of one minibatch add up to
  the minibatch's ``Block(k1, k2)`` gradient / B. A block without any loss (number
  prediction before the last step) makes no update.

Fused and step by step
----------------------
Both paths make the updates described above. The fused path (the default) hands
a chunk of the epoch's order to :func:`gradlab.kernels.train.sgd_minibatches`,
which runs every minibatch and block of it in compiled code, calling the
engine's kernels and the same BLAS products in the same order (the lag limit,
block length and carry-back are arguments of each call: ``_lag_parameters``).
``fused=False`` calls :func:`gradlab.gradient` per update and applies it here
(``_step``, ``_block_step``, ``_apply``); it is kept as the reference the tests
compare the fused path with.

Order and determinism
---------------------
One ``numpy.random.Generator`` seeded with ``seed`` draws a permutation of the
sentences at the start of every epoch (``shuffle=False``: the data order).
Minibatches are consecutive slices of it. The engine is deterministic, so the
same options, data and model give bitwise the same result.

Checkpoints
-----------
One ``.npz`` file written through a temporary file and ``os.replace``: U, V, W and
activation (so ``RNN.load`` reads it) plus ``trainer_state``, JSON text with the
epoch, the position in it, the counters, the RNG state, the history so far and the
fingerprint of everything that determines the run (options, data, initial model),
and ``order``, the current epoch's permutation. ``resume=True`` continues from it
(starting afresh when the file does not exist yet); a resumed run equals an
uninterrupted one bitwise (except the ``seconds`` column). Checkpoints are written
at the end of every epoch, every ``checkpoint_every`` minibatches, and when the
run stops early (``max_updates``, a callback); a crash loses at most the work
since the last one.
"""
from __future__ import annotations

import hashlib
import json
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import _config
from .._io import atomic_savez
from ..batch import NO_LOSS, Batch
from ..data.dataset import TASK_DESCRIPTIONS, Dataset
from ..engine import forward, gradient
from ..model import RNN, activation_code
from ..schemes import UNLIMITED, Adaptive, Block, Full, Scheme, Sliding, parse_scheme
from .evaluate import check_model_fits, check_task, evaluate

__all__ = ["Trainer", "TrainResult", "TrainingProgress", "DivergenceError", "CheckpointError", "train",
           "learning_rate_at"]

CARRY_MODES = ("after_update", "before_update")
_CHECKPOINT_FORMAT = "gradlab-train-checkpoint"
_CHECKPOINT_VERSION = 1
_CHECKPOINT_NAME = "checkpoint.npz"
#: Sentences per compiled call of the fused trainer (the progress bar moves once per call).
CHUNK_SENTENCES = 256

#: Columns of the training history (dev_* only with a dev dataset).
HISTORY_COLUMNS = ("epoch", "lr", "update", "n_updates", "clipped", "sentences_seen", "tokens_seen", "n_losses",
                   "train_loss", "seconds")


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


class CheckpointError(ValueError):
    """A checkpoint does not belong to this run (other options, data or model), or cannot be read."""


@dataclass(frozen=True, eq=False)
class TrainingProgress:
    """What a callback sees after every minibatch.

    Attributes
    ----------
    epoch : int
        Current epoch (from 0).
    update : int
        Parameter updates so far (block schemes: one per block).
    position, epoch_size : int
        Sentences done in this epoch, and its number of sentences.
    sentences_seen, tokens_seen : int
        Totals over the run.
    lr : float
        This epoch's learning rate.
    loss : float
        Mean loss per predicted word of this minibatch (at the parameters before its update(s)).
    running_loss : float
        Mean loss per predicted word of the epoch so far.
    clipped : int
        Updates of this minibatch whose gradient was clipped.
    model : RNN
        The model being trained (read it, copy it; do not modify it).
    """

    epoch: int
    update: int
    position: int
    epoch_size: int
    sentences_seen: int
    tokens_seen: int
    lr: float
    loss: float
    running_loss: float
    clipped: int
    model: RNN


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The outcome of :meth:`Trainer.fit`.

    Attributes
    ----------
    model : RNN
        The trained model (a copy; the model passed to ``fit`` is not modified).
    history : DataFrame
        One row per finished epoch: ``epoch``, ``lr``, ``update`` (updates so far),
        ``n_updates`` and ``clipped`` (in this epoch), ``sentences_seen``,
        ``tokens_seen`` (so far), ``n_losses`` and ``train_loss`` (mean per loss over
        the epoch, each at the parameters before its update), ``seconds`` (training
        time of the epoch), and with a dev dataset ``dev_loss``, ``dev_perplexity``,
        ``dev_adjusted_perplexity``, ``dev_accuracy`` (:func:`evaluate` on the
        training task), plus ``dev_agreement_accuracy`` for task "lm" on data with
        an "agreement" task.
    updates : int
        Parameter updates over the whole run (resumed parts included).
    epochs_done : int
    completed : bool
        False when the run stopped early (``max_updates``, a callback).
    stopped_by : str or None
        "max_updates", "callback" or None.
    checkpoint : Path or None
        The checkpoint file, when one was kept.
    resumed_from : int or None
        Updates already done in the checkpoint the run resumed from.
    truncation : DataFrame or None
        Adaptive schemes: one row per choice of tau (``update`` it applies from,
        ``epoch``, ``tau``, ``beta``, ``bias_bound``, ``n_losses`` of the estimate).
    """

    model: RNN
    history: pd.DataFrame
    updates: int
    epochs_done: int
    completed: bool
    stopped_by: str | None = None
    checkpoint: Path | None = None
    resumed_from: int | None = None
    truncation: pd.DataFrame | None = None


def learning_rate_at(learning_rate: float, anneal: float, epoch: int) -> float:
    """lr_epoch = learning_rate / (1 + epoch / anneal); ``learning_rate`` when anneal = 0."""
    if anneal == 0:
        return float(learning_rate)
    return float(learning_rate) / (1.0 + epoch / float(anneal))


# ---------------------------------------------------------------------- option checks
def _real(value, name: str, *, minimum: float, strict: bool, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; received {value!r} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number; received {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}; received {value!r}")
    return value


def _integer(value, name: str, minimum: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; received {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; received {value}")
    return int(value)


def _boolean(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; received {value!r}")
    return bool(value)


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _batch_digest(b: Batch) -> str:
    return _digest(b.ids, b.targets, b.offsets)


# ---------------------------------------------------------------------- run state
@dataclass
class _RunState:
    epoch: int = 0
    position: int = 0
    updates: int = 0
    sentences_seen: int = 0
    tokens_seen: int = 0
    order: np.ndarray | None = None
    rng: np.random.Generator | None = None
    history: list = field(default_factory=list)
    # accumulators of the current epoch
    loss_sum: float = 0.0
    n_losses: int = 0
    n_updates: int = 0
    clipped: int = 0
    seconds: float = 0.0
    # adaptive truncation: tau in force, the update of its estimate, the log of choices
    tau: int | None = None
    tau_at: int = 0
    truncation: list = field(default_factory=list)

    def reset_epoch(self) -> None:
        self.position, self.order = 0, None
        self.loss_sum, self.n_losses, self.n_updates, self.clipped, self.seconds = 0.0, 0, 0, 0, 0.0

    def to_json(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "updates": self.updates,
                "sentences_seen": self.sentences_seen, "tokens_seen": self.tokens_seen,
                "loss_sum": self.loss_sum, "n_losses": self.n_losses, "n_updates": self.n_updates,
                "clipped": self.clipped, "seconds": self.seconds, "has_order": self.order is not None,
                "rng": self.rng.bit_generator.state, "history": self.history,
                "tau": self.tau, "tau_at": self.tau_at, "truncation": self.truncation}

    @classmethod
    def from_json(cls, d: dict, order: np.ndarray) -> "_RunState":
        rng = np.random.default_rng()
        rng.bit_generator.state = d["rng"]
        return cls(epoch=int(d["epoch"]), position=int(d["position"]), updates=int(d["updates"]),
                   sentences_seen=int(d["sentences_seen"]), tokens_seen=int(d["tokens_seen"]),
                   order=order if d["has_order"] else None, rng=rng, history=list(d["history"]),
                   loss_sum=float(d["loss_sum"]), n_losses=int(d["n_losses"]), n_updates=int(d["n_updates"]),
                   clipped=int(d["clipped"]), seconds=float(d["seconds"]), tau=d.get("tau"),
                   tau_at=int(d.get("tau_at", 0)), truncation=list(d.get("truncation", [])))


# ---------------------------------------------------------------------- batches
def _gather(batch: Batch, sentences: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None,
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


def _no_losses(b: Batch) -> Batch:
    return Batch(b.ids, np.full(b.n_tokens, NO_LOSS, dtype=np.int64), b.offsets, b.objective)


# ---------------------------------------------------------------------- the trainer
class Trainer:
    """Stochastic gradient descent for an Elman RNN under any truncation scheme.

    ``__init__`` checks and stores the options; :meth:`fit` trains. See the module
    docstring for the update rule, block schemes, order and checkpoints.

    Parameters
    ----------
    task : str, default "lm"
        Objective, a task of the training Dataset: "lm" (a loss at every step) or
        "number" (one loss at the last step); "agreement", "recall" and "closing"
        (losses only at annotated steps) work too. Ignored when ``fit`` is given a Batch.
    scheme : Scheme or str, default "full"
        ``Full()``, ``Sliding(tau)``, ``Block(k1, k2)``, ``chunked(h)``,
        ``mikolov(bptt, block)``, ``Adaptive(delta, ...)`` or a text form ("tbptt:3",
        "chunked:10", "adaptive:delta=0.1,every=50", ...).
    learning_rate : float > 0, default 0.5
    anneal : float >= 0, default 0
        lr_epoch = learning_rate / (1 + epoch / anneal); 0 keeps it constant.
    epochs : int >= 1, default 10
    batch_size : int >= 1, default 1
        Sentences per update; 1 is the coursework's per-sentence SGD. The update uses
        the minibatch's summed gradient divided by its number of sentences.
    clip : float > 0 or None, default None
        Rescale g / B to this global norm (over U, V, W) when it is larger.
    seed : int >= 0, default 0
        Seed of the generator that draws each epoch's order.
    shuffle : bool, default True
        Draw a new order every epoch; False keeps the data order.
    carry : {"before_update", "after_update"}, default "before_update"
        Block schemes: whether the states carried to the next block are computed
        with the parameters after or before the block's update.
    checkpoint : str or path-like, optional
        A ``.npz`` file, or a folder that gets ``checkpoint.npz``.
    checkpoint_every : int >= 1, optional
        Also write the checkpoint every this many minibatches (default: only at the
        end of every epoch and when stopping early).
    resume : bool, default False
        Continue from ``checkpoint`` when it exists (it must match the run: options,
        data, initial model); start afresh when it does not.
    max_updates : int >= 1, optional
        Stop (and checkpoint) at the first minibatch boundary at or after this many
        updates over the whole run.
    callback : callable, optional
        ``callback(progress: TrainingProgress)`` after every minibatch; a true return
        value stops the run (with a checkpoint).
    progress : bool, default True
        Show a tqdm progress bar with the running mean loss (updated once per chunk of
        about ``CHUNK_SENTENCES`` sentences).
    fused : bool, default True
        Run forward, backward and update of many minibatches in one compiled call
        (:func:`gradlab.kernels.train.sgd_minibatches`). False: the step-by-step path,
        one engine call (:func:`gradlab.gradient`) per update, kept as a reference; both
        follow the same trajectory to rounding, with every option.
    """

    def __init__(self, *, task: str = "lm", scheme: Scheme | str = "full", learning_rate: float = 0.5,
                 anneal: float = 0.0, epochs: int = 10, batch_size: int = 1, clip: float | None = None,
                 seed: int = 0, shuffle: bool = True, carry: str = "before_update",
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                 resume: bool = False, max_updates: int | None = None,
                 callback: Callable[[TrainingProgress], object] | None = None, progress: bool = True,
                 fused: bool = True):
        if not isinstance(task, str) or task not in TASK_DESCRIPTIONS:
            raise ValueError(f"task must be one of {tuple(TASK_DESCRIPTIONS)}; received {task!r}")
        try:
            self.scheme = parse_scheme(scheme)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"scheme={scheme!r} is not a valid scheme: {exc}") from None
        self.task = task
        self.learning_rate = _real(learning_rate, "learning_rate", minimum=0.0, strict=True)
        self.anneal = _real(anneal, "anneal", minimum=0.0, strict=False)
        self.epochs = _integer(epochs, "epochs", 1)
        self.batch_size = _integer(batch_size, "batch_size", 1)
        self.clip = _real(clip, "clip", minimum=0.0, strict=True, allow_none=True)
        self.seed = _integer(seed, "seed", 0)
        self.shuffle = _boolean(shuffle, "shuffle")
        if carry not in CARRY_MODES:
            raise ValueError(f"carry must be one of {CARRY_MODES}; received {carry!r}")
        self.carry = carry
        if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path (a .npz file or a folder) or None; received {checkpoint!r}")
        self.checkpoint = None if checkpoint is None else _checkpoint_file(checkpoint)
        self.checkpoint_every = _integer(checkpoint_every, "checkpoint_every", 1, allow_none=True)
        self.resume = _boolean(resume, "resume")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path (checkpoint='runs/x' or 'runs/x/ckpt.npz')")
        if self.checkpoint_every is not None and self.checkpoint is None:
            raise ValueError("checkpoint_every needs a checkpoint path to write to")
        self.max_updates = _integer(max_updates, "max_updates", 1, allow_none=True)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None; received {callback!r}")
        self.callback = callback
        self.progress = _boolean(progress, "progress")
        self.fused = _boolean(fused, "fused")

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"Trainer({opts})"

    def options(self) -> dict:
        """The options that determine the trajectory (those a checkpoint must match), JSON-ready."""
        return {"task": self.task, "scheme": self.scheme.label, "learning_rate": self.learning_rate,
                "anneal": self.anneal, "batch_size": self.batch_size, "clip": self.clip, "seed": self.seed,
                "shuffle": self.shuffle, "carry": self.carry}

    def learning_rate_at(self, epoch: int) -> float:
        """This trainer's learning rate in ``epoch`` (from 0)."""
        return learning_rate_at(self.learning_rate, self.anneal, epoch)

    # ------------------------------------------------------------------ fit
    def fit(self, model: RNN, data: Dataset | Batch, dev: Dataset | None = None) -> TrainResult:
        """Train a copy of ``model`` on ``data`` and return it with the history.

        Parameters
        ----------
        model : RNN
            Initial model (not modified). With ``resume`` and an existing checkpoint
            the checkpoint's parameters are used; ``model`` must then be the initial
            model of that run.
        data : Dataset or Batch
            Training data: ``data.batch(task)`` of a Dataset, or a Batch as it is.
        dev : Dataset, optional
            Evaluated on the training task after every epoch (columns ``dev_*``).

        Returns
        -------
        TrainResult

        Raises
        ------
        ValueError, TypeError
            Before any training: a model that does not fit the data, an unknown task,
            a checkpoint that does not match (CheckpointError).
        DivergenceError
            When the loss or a parameter becomes non-finite (naming epoch, update and
            sentences).
        """
        if not isinstance(model, RNN):
            raise TypeError(f"model must be a gradlab.RNN; received {type(model).__name__}")
        model.validate()
        if isinstance(data, Dataset):
            task = check_task(data, self.task)
            check_model_fits(model, data, task, "data")
            batch = data.batch(task)
        elif isinstance(data, Batch):
            batch = data
        else:
            raise TypeError(f"data must be a gradlab Dataset or Batch; received {type(data).__name__}")
        _check_batch_fits(model, batch)
        if dev is not None:
            if not isinstance(dev, Dataset):
                raise TypeError(f"dev must be a gradlab Dataset or None; received {type(dev).__name__}")
            check_task(dev, self.task, "task (for the dev dataset)")
            check_model_fits(model, dev, self.task, "dev")
        fingerprint = {"options": self.options(), "data": _batch_digest(batch),
                       "dev": None if dev is None else _batch_digest(dev.batch(self.task)),
                       "initial_model": _digest(model.U, model.V, model.W, np.array(model.activation)),
                       "model_shape": _shape(model)}

        work = model.copy()
        state, resumed_from = None, None
        if self.resume and self.checkpoint.exists():
            work, state = _load_checkpoint(self.checkpoint, fingerprint, model)
            resumed_from = state.updates
        if state is None:
            state = _RunState(rng=np.random.default_rng(self.seed))
        return self._run(work, batch, dev, state, fingerprint, resumed_from)

    # ------------------------------------------------------------------ the loop
    def _run(self, model: RNN, batch: Batch, dev, state: _RunState, fingerprint: dict, resumed_from):
        from tqdm.auto import tqdm

        n = batch.n_sentences
        lengths = batch.lengths
        stopped_by = None
        while state.epoch < self.epochs and stopped_by is None:
            lr = self.learning_rate_at(state.epoch)
            if state.order is None:
                state.order = state.rng.permutation(n) if self.shuffle else np.arange(n, dtype=np.int64)
            with tqdm(total=n, initial=state.position, desc=f"epoch {state.epoch}/{self.epochs - 1}",
                      unit="sent", disable=not self.progress, leave=True, dynamic_ncols=True) as bar:
                since_ckpt = 0
                running = state.loss_sum / state.n_losses if state.n_losses else float("nan")
                while state.position < n:
                    t0 = time.perf_counter()
                    done = self._chunk(model, batch, state, lr, since_ckpt)
                    seconds = time.perf_counter() - t0
                    for idx, loss, n_loss, n_upd, n_clip in done:
                        state.loss_sum += loss
                        state.n_losses += n_loss
                        state.n_updates += n_upd
                        state.updates += n_upd
                        state.clipped += n_clip
                        state.position += idx.size
                        state.sentences_seen += idx.size
                        state.tokens_seen += int(lengths[idx].sum())
                        since_ckpt += 1
                        if self.callback is not None:  # chunks are one minibatch long then
                            running = state.loss_sum / state.n_losses if state.n_losses else float("nan")
                            info = TrainingProgress(state.epoch, state.updates, state.position, n,
                                                    state.sentences_seen, state.tokens_seen, lr,
                                                    loss / n_loss if n_loss else float("nan"), running, n_clip,
                                                    model)
                            if self.callback(info):
                                stopped_by = "callback"
                        if self.max_updates is not None and state.updates >= self.max_updates:
                            stopped_by = stopped_by or "max_updates"
                    state.seconds += seconds
                    running = state.loss_sum / state.n_losses if state.n_losses else float("nan")
                    bar.update(sum(d[0].size for d in done))
                    bar.set_postfix_str(f"loss={running:.4f} lr={lr:.3g}", refresh=False)
                    if stopped_by is not None:
                        break
                    if self.checkpoint_every is not None and since_ckpt >= self.checkpoint_every \
                            and state.position < n:
                        self._save(model, state, fingerprint)
                        since_ckpt = 0
                bar.set_postfix_str(f"loss={running:.4f} lr={lr:.3g}", refresh=True)
            if state.position >= n:
                self._end_epoch(model, dev, state, lr)
            if self.checkpoint is not None:
                self._save(model, state, fingerprint)
        completed = state.epoch >= self.epochs
        truncation = None
        if isinstance(self.scheme, Adaptive):
            from .adaptive import truncation_frame
            truncation = truncation_frame(state.truncation)
        return TrainResult(model, _history_frame(state.history), state.updates, state.epoch,
                           completed, None if completed else stopped_by, self.checkpoint, resumed_from,
                           truncation)

    def _adaptive_scheme(self, model: RNN, batch: Batch, state: _RunState) -> Sliding:
        """Sliding(tau) with the tau in force; re-estimated first when ``every`` updates have passed."""
        sc = self.scheme
        if state.tau is None or state.updates - state.tau_at >= sc.every:
            from .adaptive import estimate_truncation
            n = batch.n_sentences
            take = (state.position + np.arange(min(sc.sentences, n))) % n  # the next sentences, wrapping
            est = estimate_truncation(model, _gather(batch, np.ascontiguousarray(state.order[take])), sc)
            state.tau, state.tau_at = est["tau"], state.updates
            state.truncation.append([state.updates, state.epoch, est["tau"], est["beta"], est["bias_bound"],
                                     est["n_losses"]])
        return Sliding(state.tau)

    def _end_epoch(self, model: RNN, dev, state: _RunState, lr: float) -> None:
        row = {"epoch": state.epoch, "lr": lr, "update": state.updates, "n_updates": state.n_updates,
               "clipped": state.clipped, "sentences_seen": state.sentences_seen, "tokens_seen": state.tokens_seen,
               "n_losses": state.n_losses,
               "train_loss": state.loss_sum / state.n_losses if state.n_losses else float("nan"),
               "seconds": state.seconds}
        if state.tau is not None:
            row["tau"] = state.tau
        if dev is not None:
            ev = evaluate(model, dev, self.task)
            row.update(dev_loss=ev.mean_loss, dev_perplexity=ev.perplexity,
                       dev_adjusted_perplexity=ev.adjusted_perplexity, dev_accuracy=ev.accuracy)
            if self.task == "lm" and "agreement" in dev.tasks:
                row["dev_agreement_accuracy"] = evaluate(model, dev, "agreement").accuracy
        state.history.append(row)
        state.epoch += 1
        state.reset_epoch()

    def _save(self, model: RNN, state: _RunState, fingerprint: dict) -> None:
        _write_checkpoint(self.checkpoint, model, state, fingerprint)

    # ------------------------------------------------------------------ updates
    def _chunk(self, model: RNN, batch: Batch, state: _RunState, lr: float, since_ckpt: int) -> list:
        """The next minibatches of the epoch: [(indices, loss, n_losses, n_updates, n_clipped), ...].

        Fused: as many minibatches as fit in ``CHUNK_SENTENCES`` sentences, the next
        checkpoint (``checkpoint_every``) and ``max_updates``, in one compiled call; one
        minibatch when a callback must see each. Step by step (``fused=False``): one
        minibatch, one engine call per update.
        """
        n, bs = batch.n_sentences, self.batch_size
        if not self.fused:
            idx = np.ascontiguousarray(state.order[state.position:state.position + bs], dtype=np.int64)
            if isinstance(self.scheme, Block):
                return [(idx, *self._block_step(model, batch, idx, lr, state))]
            scheme = self._adaptive_scheme(model, batch, state) if isinstance(self.scheme, Adaptive) else None
            return [(idx, *self._step(model, batch, idx, lr, state, scheme))]
        n_mb = 1 if self.callback is not None else max(1, CHUNK_SENTENCES // bs)
        if self.checkpoint_every is not None:
            n_mb = min(n_mb, max(1, self.checkpoint_every - since_ckpt))
        if isinstance(self.scheme, Adaptive):  # re-estimate tau where the step-by-step path would
            self._adaptive_scheme(model, batch, state)
            n_mb = min(n_mb, max(1, self.scheme.every - (state.updates - state.tau_at)))
        order = np.ascontiguousarray(state.order[state.position:min(n, state.position + n_mb * bs)],
                                     dtype=np.int64)
        limit = UNLIMITED if self.max_updates is None else self.max_updates - state.updates
        return self._fused(model, batch, order, lr, state, limit, *self._lag_parameters(state))

    def _lag_parameters(self, state: _RunState) -> tuple[int, int, int]:
        """(k1, back, tau) of the fused loop for the next chunk: block length, carry-back, lag limit.

        A non-block scheme is one block per sentence; a scheme that picks tau as it
        trains can return another tau for every chunk.
        """
        if isinstance(self.scheme, Block):
            return self.scheme.k1, self.scheme.k2 - self.scheme.k1, UNLIMITED
        if isinstance(self.scheme, Sliding):
            return UNLIMITED, 0, self.scheme.tau
        if isinstance(self.scheme, Adaptive):   # the tau in force (chunks end where it is re-estimated)
            return UNLIMITED, 0, state.tau
        return UNLIMITED, 0, UNLIMITED

    def _fused(self, model: RNN, batch: Batch, order: np.ndarray, lr: float, state: _RunState, limit: int,
               k1: int, back: int, tau: int) -> list:
        """Minibatches of ``order`` (consecutive slices of batch_size) by ``sgd_minibatches``."""
        from ..kernels.train import LOSS_NOT_FINITE, sgd_minibatches
        from ..engine import _N_DU_CHUNKS
        bs = self.batch_size
        mb_start = np.append(np.arange(0, order.size, bs, dtype=np.int64), np.int64(order.size))
        n_mb = mb_start.size - 1
        loss, n_loss = np.zeros(n_mb), np.zeros(n_mb, dtype=np.int64)
        n_upd, n_clip = np.zeros(n_mb, dtype=np.int64), np.zeros(n_mb, dtype=np.int64)
        fail = np.zeros(4, dtype=np.int64)
        VT = np.ascontiguousarray(model.V.T)
        with _config.single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
            done = sgd_minibatches(model.U, VT, model.W, batch.ids, batch.targets, batch.offsets, order, mb_start,
                                   0, n_mb, k1, back, tau, lr, -1.0 if self.clip is None else self.clip,
                                   self.carry == "after_update", activation_code(model.activation), limit,
                                   _config.OUTPUT_TILE, _config.N_GROUPS, _N_DU_CHUNKS, loss, n_loss, n_upd,
                                   n_clip, fail)
        model.V[...] = VT.T
        if fail[0]:
            m, b0, upd = int(fail[1]), int(fail[2]), int(fail[3])
            idx = order[mb_start[m]:mb_start[m + 1]]
            for j in range(m):  # the minibatches before count as done in the error's update number
                state.updates += int(n_upd[j])
            where = b0 if isinstance(self.scheme, Block) else None
            sents = idx[batch.lengths[idx] > b0] if where is not None else idx
            if fail[0] == LOSS_NOT_FINITE:
                raise self._diverged(f"the loss is {loss[m]} at the parameters before this update", state, lr,
                                     sents, where, upd)
            bad = [name for name, a in (("U", model.U), ("V", model.V), ("W", model.W)) if not np.isfinite(a).all()]
            raise self._diverged(f"parameter(s) {', '.join(bad)} became non-finite after the update", state, lr,
                                 sents, where, upd)
        return [(order[mb_start[m]:mb_start[m + 1]], float(loss[m]), int(n_loss[m]), int(n_upd[m]),
                 int(n_clip[m])) for m in range(done)]

    def _step(self, model: RNN, batch: Batch, idx: np.ndarray, lr: float, state: _RunState, scheme=None):
        """One update with the scheme's gradient of the whole minibatch (``scheme``: the one in force)."""
        mb = _gather(batch, idx)
        g = gradient(model, mb, self.scheme if scheme is None else scheme)
        if g.n_losses == 0:
            return 0.0, 0, 0, 0
        self._check_loss(g.loss, state, lr, idx, None)
        clipped = self._apply(model, g, lr, idx.size, np.unique(mb.ids), state, idx, None)
        return g.loss, g.n_losses, 1, int(clipped)

    def _block_step(self, model: RNN, batch: Batch, idx: np.ndarray, lr: float, state: _RunState):
        """The minibatch's sentences block by block in lockstep, one update per block."""
        k1, back = self.scheme.k1, self.scheme.k2 - self.scheme.k1
        H = model.hidden_size
        lengths = batch.lengths[idx]
        starts = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        stored = np.empty((int(starts[-1]), H))  # s(t) of every step processed so far, per sentence
        B = idx.size
        loss_sum, n_loss, n_upd, n_clip = 0.0, 0, 0, 0
        for b0 in range(0, int(lengths.max()), k1):
            active = np.flatnonzero(lengths > b0)
            sent = idx[active]
            b1 = np.minimum(b0 + k1, lengths[active])
            w0 = max(0, b0 - back)
            lo = np.full(active.size, w0, dtype=np.int64)
            b0s = np.full(active.size, b0, dtype=np.int64)
            window = _gather(batch, sent, lo, b1, loss_from=b0s)
            init_w = stored[starts[active] + w0 - 1] if w0 > 0 else None
            block = _no_losses(_gather(batch, sent, b0s, b1))
            init_b = stored[starts[active] + b0 - 1] if b0 > 0 else None
            has_loss = bool(np.any(window.targets != NO_LOSS))
            if has_loss and self.carry == "before_update":
                self._store(stored, starts[active] + b0, forward(model, block, initial_states=init_b).s, block)
            if has_loss:
                g = gradient(model, window, Full(), initial_states=init_w)
                where = b0
                self._check_loss(g.loss, state, lr, sent, where, n_upd)
                n_clip += self._apply(model, g, lr, B, np.unique(window.ids), state, sent, where, n_upd)
                loss_sum += g.loss
                n_loss += g.n_losses
                n_upd += 1
            if not has_loss or self.carry == "after_update":
                self._store(stored, starts[active] + b0, forward(model, block, initial_states=init_b).s, block)
        return loss_sum, n_loss, n_upd, n_clip

    @staticmethod
    def _store(stored: np.ndarray, first: np.ndarray, S: np.ndarray, block: Batch) -> None:
        lens = block.lengths
        rows = np.repeat(first - block.offsets[:-1], lens) + np.arange(block.n_tokens, dtype=np.int64)
        stored[rows] = S

    def _apply(self, model: RNN, g, lr: float, B: int, cols: np.ndarray, state, sentences, where,
               done: int = 0) -> bool:
        """theta -= lr * g / B (clipped to norm ``clip``); V only in the columns the batch touches.

        The engine's arrays in ``g`` are fresh for this update and are scaled in place
        (the same floating-point operations as lr * (g / B), without temporaries).
        """
        gU, gV, gW = g.U, g.V[:, cols], g.W
        if B != 1:
            for a in (gU, gV, gW):
                a /= B
        clipped = False
        if self.clip is not None:
            norm = float(np.sqrt(np.sum(gU * gU) + np.sum(gV * gV) + np.sum(gW * gW)))
            if norm > self.clip:
                f = self.clip / norm
                for a in (gU, gV, gW):
                    a *= f
                clipped = True
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging update is reported below, not warned
            for a in (gU, gV, gW):
                a *= lr
            model.U -= gU
            model.V[:, cols] -= gV
            model.W -= gW
        bad = [name for name, a in (("U", model.U), ("V", model.V[:, cols]), ("W", model.W))
               if not np.isfinite(a).all()]
        if bad:
            raise self._diverged(f"parameter(s) {', '.join(bad)} became non-finite after the update",
                                 state, lr, sentences, where, done)
        return clipped

    def _check_loss(self, loss: float, state, lr, sentences, where, done: int = 0) -> None:
        if not np.isfinite(loss):
            raise self._diverged(f"the loss is {loss} at the parameters before this update", state, lr, sentences,
                                 where, done)

    def _diverged(self, what: str, state: _RunState, lr: float, sentences, where, done: int) -> DivergenceError:
        sents = tuple(int(s) for s in np.atleast_1d(sentences))
        shown = ", ".join(str(s) for s in sents[:8]) + (", ..." if len(sents) > 8 else "")
        label = "sentence" if len(sents) == 1 else "sentences"
        steps = "" if where is None else f", the block starting at step {where}"
        update = state.updates + done + 1
        return DivergenceError(
            f"training diverged in epoch {state.epoch}, update {update} ({label} {shown} of the training data"
            f"{steps}): {what}. Lower learning_rate (now {lr:g} in this epoch) or set clip "
            f"(now {self.clip}).", epoch=state.epoch, update=update, sentences=sents)


def train(model: RNN, data: Dataset | Batch, *, dev: Dataset | None = None, **options) -> TrainResult:
    """``Trainer(**options).fit(model, data, dev)``: train a copy of ``model``; see :class:`Trainer`."""
    return Trainer(**options).fit(model, data, dev)


# ---------------------------------------------------------------------- helpers
def _check_batch_fits(model: RNN, batch: Batch) -> None:
    if batch.n_tokens and int(batch.ids.max()) >= model.vocab_size:
        i = int(np.argmax(batch.ids))
        raise ValueError(f"data holds input id {int(batch.ids[i])} at {batch.where(i)} but the model has "
                         f"vocab_size {model.vocab_size}; build the model with a larger vocab_size")
    if not (batch.targets != NO_LOSS).any():
        raise ValueError("data has no losses (every target is NO_LOSS); nothing to train on")
    if int(batch.targets.max()) >= model.output_size:
        i = int(np.argmax(batch.targets))
        raise ValueError(f"data holds target {int(batch.targets[i])} at {batch.where(i)} but the model has "
                         f"output_size {model.output_size}; build the model with a larger output_size")


def _shape(model: RNN) -> dict:
    return {"hidden_size": model.hidden_size, "vocab_size": model.vocab_size, "output_size": model.output_size,
            "activation": model.activation}


def _history_frame(rows: list) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=np.float64 if c in ("lr", "train_loss", "seconds") else np.int64)
                             for c in HISTORY_COLUMNS})
    return pd.DataFrame(rows)


def _checkpoint_file(path) -> Path:
    path = Path(path)
    return path if path.suffix == ".npz" else path / _CHECKPOINT_NAME


def _write_checkpoint(path: Path, model: RNN, state: _RunState, fingerprint: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION, "fingerprint": fingerprint,
            "state": state.to_json()}
    order = state.order if state.order is not None else np.zeros(0, dtype=np.int64)
    # an interrupted write leaves the previous checkpoint and no temporary file
    atomic_savez(path, U=model.U, V=model.V, W=model.W, activation=np.array(model.activation),
                 trainer_state=np.array(json.dumps(meta)), order=np.asarray(order, dtype=np.int64))


def _load_checkpoint(path: Path, fingerprint: dict, model: RNN) -> tuple[RNN, _RunState]:
    import zipfile
    try:
        with np.load(path, allow_pickle=False) as data:
            if "trainer_state" not in data.files:
                raise CheckpointError(f"checkpoint {path} has no trainer_state: it is not a training checkpoint "
                                      "(a model saved with RNN.save?)")
            meta = json.loads(str(data["trainer_state"]))
            U, V, W, act = data["U"], data["V"], data["W"], str(data["activation"])
            order = data["order"].astype(np.int64)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc}); delete it or train with resume=False") \
            from exc
    if meta.get("format") != _CHECKPOINT_FORMAT or meta.get("version") != _CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r} version "
                              f"{meta.get('version')!r}; expected {_CHECKPOINT_FORMAT!r} version {_CHECKPOINT_VERSION}")
    saved = meta["fingerprint"]
    if saved["model_shape"] != fingerprint["model_shape"]:
        diffs = [f"{k}={saved['model_shape'][k]!r} (model given: {fingerprint['model_shape'][k]!r})"
                 for k in fingerprint["model_shape"] if saved["model_shape"].get(k) != fingerprint["model_shape"][k]]
        raise CheckpointError(f"checkpoint {path} holds a model with " + ", ".join(diffs)
                              + "; pass the model that run started from, or another checkpoint path")
    diffs = [f"{k}: checkpoint {saved['options'].get(k)!r}, now {v!r}"
             for k, v in fingerprint["options"].items() if saved["options"].get(k) != v]
    labels = {"data": "the training data differs", "dev": "the dev data differs",
              "initial_model": "the initial model differs (resume with the model the run started from)"}
    diffs += [msg for key, msg in labels.items() if saved.get(key) != fingerprint[key]]
    if diffs:
        raise CheckpointError(f"checkpoint {path} does not match this run: " + "; ".join(diffs)
                              + ". Use the same options and data, another checkpoint path, or resume=False")
    return RNN(U, V, W, act), _RunState.from_json(meta["state"], order)
