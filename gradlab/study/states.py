"""Materialising a report's model states, training included: a "train:..." state is the "init" draw
trained on the unit's dataset (parsing states is :mod:`gradlab.analysis.states`'s)."""
from __future__ import annotations

from ..analysis.states import ModelState
from ..model import RNN
from ..train.tasks import TRAIN_TASKS


def build_state(state: ModelState, vocab_size: int, hidden_size: int, output_size: int, key: str = "",
                default_seed: int = 0, *, dataset=None, task: str = "lm", dtype="float64") -> RNN:
    """The model of ``state`` for a dataset (``key`` is its spec text), in ``dtype`` (drawn and trained in it).

    "train" states need ``dataset`` (the unit's Dataset) and ``task`` (one of
    :data:`gradlab.train.tasks.TRAIN_TASKS`): the model is drawn exactly as the "init" state
    with the same scale and seed would be, then trained with :class:`gradlab.train.Trainer`
    (the state's seed, or ``default_seed``, also seeds the order of the sentences) for
    :attr:`ModelState.snapshot_epochs` epochs — the first epochs of a full run are the same
    whether the run stops there or not. Other states: :meth:`ModelState.build`.
    """
    if state.kind != "train" or state.snapshot_epochs == 0:
        return state.build(vocab_size, hidden_size, output_size, key, default_seed, dtype)
    model = state.initial(vocab_size, hidden_size, output_size, key, default_seed, dtype)
    if dataset is None:
        raise ValueError(f"model state {state.label!r} trains on the unit's dataset; build_state(..., dataset=ds)")
    if task not in TRAIN_TASKS:
        raise ValueError(f"model state {state.label!r}: task must be one of {tuple(TRAIN_TASKS)} to train; "
                         f"received {task!r}")
    from ..train import Trainer
    trainer = Trainer(task=task, scheme=state.scheme, learning_rate=state.learning_rate,
                      epochs=state.snapshot_epochs, batch_size=state.batch_size,
                      seed=default_seed if state.seed is None else state.seed, progress=False)
    return trainer.fit(model, dataset).model
