"""SGD training of an Elman RNN or a cell model under any truncation scheme, with checkpoints and resume.

The update rule
---------------
For a minibatch of B sentences the engine gives g = dJ/dtheta, the gradient of
the *sum* of the minibatch's losses (:func:`gradlab.gradient`). The update is

    theta <- theta - lr_epoch * g / B          lr_epoch = learning_rate / (1 + epoch / anneal)

(anneal = 0: constant rate; epochs count from 0). With B = 1 this is the
coursework's per-sentence update (sum over the sentence's losses, no division).
With ``clip`` set, g / B is rescaled to norm ``clip`` when its global norm over
all the model's parameters together (U, V and W; a cell's ``model.cell.names``)
exceeds it; the history counts how often that happened.

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
Both paths make the updates described above (``gradlab.train.updates``). The fused
path (the default for the Elman RNN) hands a chunk of the epoch's order to
:func:`gradlab.kernels.train.sgd_minibatches`, which runs every minibatch and block
of it in compiled code, calling the engine's kernels and the same BLAS products in
the same order (the lag limit, block length and carry-back are arguments of each
call: ``Trainer._lag_parameters``). ``fused=False`` calls :func:`gradlab.gradient`
per update and applies it (``updates.minibatch_step``, ``updates.block_step``,
``updates.apply_gradient``); it is kept as the reference the tests compare the
fused path with.

Cell models
-----------
A :class:`gradlab.CellModel` (GRU, LSTM, diagonal linear recurrence; with an
embedding layer, stacked) trains with every option above, step by step: every
update is a call of :func:`gradlab.cell_engine.gradient` (through
:func:`gradlab.gradient`), and ``theta -= lr * g / B`` for every array of
``model.cell.names``, whole (the Elman path updates V only in the columns of the
words seen, which changes nothing else). Block schemes carry the cell's full
state (h, and c for the LSTM, of every layer: ``CellForward.state``) from block
to block, as ``initial_states`` of the engine. The fused compiled path runs the Elman
RNN only: ``fused=None`` (the default) means fused where the model has a fused
path, and ``fused=True`` with a CellModel is a ValueError. Checkpoints hold the
cell model as :meth:`CellModel.save` writes it (its arrays and ``"__cell__"``), so
:meth:`CellModel.load` reads them.

Files
-----
This module is the loop (options, epochs, chunks, history, callbacks);
``updates.py`` makes the updates; ``checkpoint.py`` writes and reads checkpoints.

Order and determinism
---------------------
One ``numpy.random.Generator`` seeded with ``seed`` draws a permutation of the
sentences at the start of every epoch (``shuffle=False``: the data order).
Minibatches are consecutive slices of it. The engine is deterministic, so the
same options, data and model give bitwise the same result.

Checkpoints
-----------
One ``.npz`` file written by ``RNN.save`` (through a temporary file and
``os.replace``), so ``RNN.load`` reads it (a CellModel's: ``CellModel.load``), with the run state beside the model
(``gradlab.train.checkpoint``): ``trainer_state``, JSON text with the
epoch, the position in it, the counters, the RNG state, the history so far and the
fingerprint of everything that determines the run (options, data, initial model),
and ``order``, the current epoch's permutation. ``resume=True`` continues from it
(starting afresh when the file does not exist yet); a resumed run equals an
uninterrupted one bitwise (except the ``seconds`` column). Checkpoints are written
at the end of every epoch, every ``checkpoint_every`` minibatches, and when the
run stops early (``max_updates``, a callback); a crash loses at most the work
since the last one.
"""

import numbers
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..batch import NO_LOSS, Batch
from ..cellmodel import CellModel
from ..data.dataset import TASK_DESCRIPTIONS, Dataset
from ..engine import forward, gradient
from ..model import RNN
from ..schemes import UNLIMITED, Adaptive, Block, Scheme, Sliding, parse_scheme
from . import updates
from .checkpoint import CheckpointError, RunState, checkpoint_file, fingerprint, load_checkpoint, write_checkpoint
from .evaluate import check_model_fits, check_task, evaluate
from .updates import DivergenceError, UpdateContext, gather

__all__ = ["Trainer", "TrainResult", "TrainingProgress", "DivergenceError", "CheckpointError", "train",
           "learning_rate_at"]

CARRY_MODES = ("after_update", "before_update")
#: Sentences per compiled call of the fused trainer (the progress bar moves once per call).
CHUNK_SENTENCES = 256

#: Columns of the training history (dev_* only with a dev dataset).
HISTORY_COLUMNS = ("epoch", "lr", "update", "n_updates", "clipped", "sentences_seen", "tokens_seen", "n_losses",
                   "train_loss", "seconds")


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
    model : RNN or CellModel
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
    model: RNN | CellModel


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The outcome of :meth:`Trainer.fit`.

    Attributes
    ----------
    model : RNN or CellModel
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

    model: RNN | CellModel
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


# ---------------------------------------------------------------------- the trainer
class Trainer:
    """Stochastic gradient descent for an Elman RNN or a CellModel under any truncation scheme.

    ``__init__`` stores the options and :meth:`validate` checks them (again at the start of
    :meth:`fit`); :meth:`fit` trains. See the module
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
        Rescale g / B to this global norm (over all the model's parameters) when it is larger.
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
    fused : bool or None, default None
        True: run forward, backward and update of many minibatches in one compiled call
        (:func:`gradlab.kernels.train.sgd_minibatches`; the Elman RNN only, a ValueError
        for a CellModel). False: the step-by-step path, one engine call
        (:func:`gradlab.gradient`) per update, kept as a reference; both follow the same
        trajectory to rounding, with every option. None: fused for the Elman RNN, step
        by step for a CellModel (which has no fused path).
    """

    def __init__(self, *, task: str = "lm", scheme: Scheme | str = "full", learning_rate: float = 0.5,
                 anneal: float = 0.0, epochs: int = 10, batch_size: int = 1, clip: float | None = None,
                 seed: int = 0, shuffle: bool = True, carry: str = "before_update",
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                 resume: bool = False, max_updates: int | None = None,
                 callback: Callable[[TrainingProgress], object] | None = None, progress: bool = True,
                 fused: bool | None = None):
        self.task, self.scheme, self.learning_rate, self.anneal = task, scheme, learning_rate, anneal
        self.epochs, self.batch_size, self.clip, self.seed, self.shuffle = epochs, batch_size, clip, seed, shuffle
        self.carry, self.checkpoint, self.checkpoint_every, self.resume = carry, checkpoint, checkpoint_every, resume
        self.max_updates, self.callback, self.progress, self.fused = max_updates, callback, progress, fused
        self.validate()  # bad options fail here, naming the option, as well as in fit()

    def validate(self) -> "Trainer":
        """Check the options and put them in canonical form (a Scheme, floats, a checkpoint file); return self.

        Runs at construction and again at the start of :meth:`fit` (options may be
        changed in between); raises ValueError or TypeError naming the bad option.
        """
        task, scheme, checkpoint = self.task, self.scheme, self.checkpoint
        if not isinstance(task, str) or task not in TASK_DESCRIPTIONS:
            raise ValueError(f"task must be one of {tuple(TASK_DESCRIPTIONS)}; received {task!r}")
        try:
            self.scheme = parse_scheme(scheme)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"scheme={scheme!r} is not a valid scheme: {exc}") from None
        self.learning_rate = _real(self.learning_rate, "learning_rate", minimum=0.0, strict=True)
        self.anneal = _real(self.anneal, "anneal", minimum=0.0, strict=False)
        self.epochs = _integer(self.epochs, "epochs", 1)
        self.batch_size = _integer(self.batch_size, "batch_size", 1)
        self.clip = _real(self.clip, "clip", minimum=0.0, strict=True, allow_none=True)
        self.seed = _integer(self.seed, "seed", 0)
        self.shuffle = _boolean(self.shuffle, "shuffle")
        if self.carry not in CARRY_MODES:
            raise ValueError(f"carry must be one of {CARRY_MODES}; received {self.carry!r}")
        if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path (a .npz file or a folder) or None; received {checkpoint!r}")
        self.checkpoint = None if checkpoint is None else checkpoint_file(checkpoint)
        self.checkpoint_every = _integer(self.checkpoint_every, "checkpoint_every", 1, allow_none=True)
        self.resume = _boolean(self.resume, "resume")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path (checkpoint='runs/x' or 'runs/x/ckpt.npz')")
        if self.checkpoint_every is not None and self.checkpoint is None:
            raise ValueError("checkpoint_every needs a checkpoint path to write to")
        self.max_updates = _integer(self.max_updates, "max_updates", 1, allow_none=True)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable or None; received {self.callback!r}")
        self.progress = _boolean(self.progress, "progress")
        self.fused = None if self.fused is None else _boolean(self.fused, "fused")
        return self

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
    def fit(self, model: RNN | CellModel, data: Dataset | Batch, dev: Dataset | None = None) -> TrainResult:
        """Train a copy of ``model`` on ``data`` and return it with the history.

        Parameters
        ----------
        model : RNN or CellModel
            Initial model (not modified). With ``resume`` and an existing checkpoint
            the checkpoint's parameters are used; ``model`` must then be the initial
            model of that run. A CellModel trains step by step (module docstring).
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
        self.validate()
        fused = self._fused_for(model)
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
        run = fingerprint(self.options(), batch, None if dev is None else dev.batch(self.task), model)

        work = model.copy()
        state, resumed_from = None, None
        if self.resume and self.checkpoint.exists():
            work, state = load_checkpoint(self.checkpoint, run)
            resumed_from = state.updates
        if state is None:
            state = RunState(rng=np.random.default_rng(self.seed))
        return self._run(work, batch, dev, state, run, resumed_from, fused)

    def _fused_for(self, model) -> bool:
        """Whether ``model`` trains on the fused path: ``fused``, or where None, whether it has one."""
        if isinstance(model, RNN):
            return True if self.fused is None else self.fused
        if not isinstance(model, CellModel):
            raise TypeError(f"model must be a gradlab.RNN or a gradlab.CellModel; received {type(model).__name__}")
        if self.fused:
            raise ValueError(f"fused=True: the fused compiled trainer runs the Elman RNN only; a CellModel "
                             f"(cell {model.cell.name!r}) trains step by step, one cell_engine.gradient call per "
                             "update. Leave fused unset (None) or pass fused=False")
        return False

    # ------------------------------------------------------------------ the loop
    def _run(self, model: RNN | CellModel, batch: Batch, dev, state: RunState, run: dict, resumed_from,
             fused: bool):
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
                    done = self._chunk(model, batch, state, lr, since_ckpt, fused)
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
                        self._save(model, state, run)
                        since_ckpt = 0
                bar.set_postfix_str(f"loss={running:.4f} lr={lr:.3g}", refresh=True)
            if state.position >= n:
                self._end_epoch(model, dev, state, lr)
            if self.checkpoint is not None:
                self._save(model, state, run)
        completed = state.epoch >= self.epochs
        truncation = None
        if isinstance(self.scheme, Adaptive):
            from .adaptive import truncation_frame
            truncation = truncation_frame(state.truncation)
        return TrainResult(model, _history_frame(state.history), state.updates, state.epoch,
                           completed, None if completed else stopped_by, self.checkpoint, resumed_from,
                           truncation)

    def _adaptive_scheme(self, model: RNN | CellModel, batch: Batch, state: RunState) -> Sliding:
        """Sliding(tau) with the tau in force; re-estimated first when ``every`` updates have passed."""
        sc = self.scheme
        if state.tau is None or state.updates - state.tau_at >= sc.every:
            from .adaptive import estimate_truncation
            n = batch.n_sentences
            take = (state.position + np.arange(min(sc.sentences, n))) % n  # the next sentences, wrapping
            est = estimate_truncation(model, gather(batch, np.ascontiguousarray(state.order[take])), sc)
            state.tau, state.tau_at = est["tau"], state.updates
            state.truncation.append([state.updates, state.epoch, est["tau"], est["beta"], est["bias_bound"],
                                     est["n_losses"]])
        return Sliding(state.tau)

    def _end_epoch(self, model: RNN | CellModel, dev, state: RunState, lr: float) -> None:
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

    def _save(self, model: RNN | CellModel, state: RunState, run: dict) -> None:
        write_checkpoint(self.checkpoint, model, state, run)

    # ------------------------------------------------------------------ updates
    def _chunk(self, model: RNN | CellModel, batch: Batch, state: RunState, lr: float, since_ckpt: int,
               fused: bool) -> list:
        """The next minibatches of the epoch: [(indices, loss, n_losses, n_updates, n_clipped), ...].

        Fused: as many minibatches as fit in ``CHUNK_SENTENCES`` sentences, the next
        checkpoint (``checkpoint_every``) and ``max_updates``, in one compiled call; one
        minibatch when a callback must see each. Step by step (``fused`` False): one
        minibatch, one engine call per update.
        """
        n, bs = batch.n_sentences, self.batch_size
        if not fused:
            idx = np.ascontiguousarray(state.order[state.position:state.position + bs], dtype=np.int64)
            ctx = UpdateContext(lr, self.clip, state.epoch, state.updates)
            if isinstance(self.scheme, Block):
                return [(idx, *updates.block_step(model, batch, idx, self.scheme, self.carry, ctx,
                                                  gradient=gradient, forward=forward))]
            scheme = self._adaptive_scheme(model, batch, state) if isinstance(self.scheme, Adaptive) else self.scheme
            return [(idx, *updates.minibatch_step(model, batch, idx, scheme, ctx, gradient=gradient))]
        n_mb = 1 if self.callback is not None else max(1, CHUNK_SENTENCES // bs)
        if self.checkpoint_every is not None:
            n_mb = min(n_mb, max(1, self.checkpoint_every - since_ckpt))
        if isinstance(self.scheme, Adaptive):  # re-estimate tau where the step-by-step path would
            self._adaptive_scheme(model, batch, state)
            n_mb = min(n_mb, max(1, self.scheme.every - (state.updates - state.tau_at)))
        order = np.ascontiguousarray(state.order[state.position:min(n, state.position + n_mb * bs)],
                                     dtype=np.int64)
        limit = UNLIMITED if self.max_updates is None else self.max_updates - state.updates
        ctx = UpdateContext(lr, self.clip, state.epoch, state.updates)
        return updates.fused_minibatches(model, batch, order, bs, ctx, limit, *self._lag_parameters(state),
                                         self.carry, isinstance(self.scheme, Block))

    def _lag_parameters(self, state: RunState) -> tuple[int, int, int]:
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

def train(model: RNN | CellModel, data: Dataset | Batch, *, dev: Dataset | None = None, **options) -> TrainResult:
    """``Trainer(**options).fit(model, data, dev)``: train a copy of ``model``; see :class:`Trainer`."""
    return Trainer(**options).fit(model, data, dev)


# ---------------------------------------------------------------------- helpers
def _check_batch_fits(model: RNN | CellModel, batch: Batch) -> None:
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


def _history_frame(rows: list) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=np.float64 if c in ("lr", "train_loss", "seconds") else np.int64)
                             for c in HISTORY_COLUMNS})
    return pd.DataFrame(rows)

