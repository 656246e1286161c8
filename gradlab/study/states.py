"""Materialising a report's model states, training included: a "train:..." state is the "init" draw
trained on the unit's dataset (parsing states is :mod:`gradlab.analysis.states`'s), for the Elman cell
(:class:`gradlab.RNN`) or another cell of the spec (:class:`gradlab.CellModel`)."""
from __future__ import annotations

import zlib

from ..analysis.states import ModelState
from ..cellmodel import CellModel, load_model
from ..cells import cell as _cell
from ..model import DEFAULT_SCALE, RNN
from ..train.tasks import TRAIN_TASKS

#: The spec's name of the Elman cell (:class:`gradlab.RNN`).
ELMAN = "elman"


#: Gate blocks of each cell's recurrent weights (PyTorch's row blocks).
_GATES = {"gru": 3, "lstm": 4}


def estimated_size(cell: str, hidden_size: int, num_layers: int = 1) -> int:
    """The hidden size of the Elman model whose memory and time estimates (:mod:`gradlab.study.plan`) stand for a
    model of ``cell``: gates x layers x H (an upper bound: its products are as large as the cell's)."""
    return hidden_size if cell == ELMAN else hidden_size * _GATES.get(cell, 1) * num_layers


def model_cell(model) -> tuple[str, int]:
    """(the spec's cell name, layers) of a model: ("elman", 1) for :class:`gradlab.RNN`, ("lstm", 2) for a
    two-layer LSTM; a model reading an embedding layer is "<cell>-embedding"."""
    if isinstance(model, RNN):
        return ELMAN, 1
    return model.base + ("" if model.embedding_size is None else "-embedding"), model.num_layers


def has_activation(cell: str) -> bool:
    """Whether a spec's cell takes a state's ``activation``: the Elman cell and the rnn cell (nn.RNN's
    nonlinearity); the gated and linear cells have their own."""
    return bool(_cell(cell).activations)       # the Elman cell is registered as "elman" too


def check_state(state: ModelState, cells: list, num_layers: int) -> None:
    """Fail early (before any work) on a state that none of the spec's ``cells`` can be: a model file that
    cannot be loaded or holds another cell or number of layers, or an "init" activation other than the
    sigmoid without a cell that takes one (:func:`has_activation`)."""
    if state.kind == "file":
        cell, layers = model_cell(load_model(state.path))
        if cell not in cells:
            raise ValueError(f"model file {state.path} holds a {cell!r} model, but the spec's cell is {cells}; add "
                             f"{cell!r} to the cell key or drop the state")
        if layers != num_layers and cell != ELMAN:
            raise ValueError(f"model file {state.path} holds a {cell} model of {layers} layer(s), but the spec has "
                             f"num_layers = {num_layers}; set num_layers = {layers} or drop the state")
    elif state.activation != "sigmoid" and not any(map(has_activation, cells)):
        raise ValueError(f"model state {state.label!r}: activation is the Elman and rnn cells' (cell = 'elman' or "
                         f"'rnn'); the cells {cells} have their own; leave activation out")


def state_cells(state: ModelState, cells: list) -> list:
    """The spec's cells a state is analysed for: a "file" state only for the cell its file holds, the others
    for every cell."""
    if state.kind == "file":
        return [model_cell(load_model(state.path))[0]]
    return list(cells)


def initial_cell_model(state: ModelState, cell: str, vocab_size: int, hidden_size: int, output_size: int,
                       key: str = "", default_seed: int = 0, num_layers: int = 1) -> CellModel:
    """The "init" draw of a non-Elman cell: :meth:`CellModel.init` (PyTorch's initialisation) from the state's
    seed (or ``default_seed``) mixed with ``key`` (the dataset's text, as the Elman draw is), every array
    multiplied by ``state.scale / sqrt(0.1)``: the default scale gives PyTorch's draw exactly. The rnn cell
    takes the state's activation (sigmoid unless the state says otherwise, as the Elman cell)."""
    seed = [default_seed if state.seed is None else state.seed, zlib.crc32(key.encode())]
    model = CellModel.init(cell, vocab_size, hidden_size, output_size, num_layers=num_layers, seed=seed,
                           activation=state.activation if has_activation(cell) else None)
    factor = state.scale / DEFAULT_SCALE
    if factor != 1.0:
        for array in model.params.values():
            array *= factor
    return model


def build_state(state: ModelState, vocab_size: int, hidden_size: int, output_size: int, key: str = "",
                default_seed: int = 0, *, dataset=None, task: str = "lm", dtype="float64", cell: str = ELMAN,
                num_layers: int = 1):
    """The model of ``state`` for a dataset (``key`` is its spec text), in ``dtype`` (drawn and trained in it).

    ``cell`` "elman" (the default): a :class:`gradlab.RNN`; another cell of the spec ("gru", "lstm",
    "linear", ...): a :class:`gradlab.CellModel` of ``num_layers`` layers in float64, drawn by
    :func:`initial_cell_model` or loaded from a "file" state (which must hold that cell).

    "train" states need ``dataset`` (the unit's Dataset) and ``task`` (one of
    :data:`gradlab.train.tasks.TRAIN_TASKS`): the model is drawn exactly as the "init" state
    with the same scale and seed would be, then trained with :class:`gradlab.train.Trainer`
    (the state's seed, or ``default_seed``, also seeds the order of the sentences) for
    :attr:`ModelState.snapshot_epochs` epochs — the first epochs of a full run are the same
    whether the run stops there or not. Other states of the Elman cell: :meth:`ModelState.build`.
    """
    if cell == ELMAN:
        if state.kind != "train" or state.snapshot_epochs == 0:
            return state.build(vocab_size, hidden_size, output_size, key, default_seed, dtype)
        model = state.initial(vocab_size, hidden_size, output_size, key, default_seed, dtype)
    elif state.kind == "file":
        model = load_model(state.path)
        got = (model_cell(model), model.vocab_size, model.output_size)
        if got != ((cell, num_layers), vocab_size, output_size):
            raise ValueError(f"model file {state.path} holds a {got[0][0]} model of {got[0][1]} layer(s) with "
                             f"|V| = {got[1]}, |O| = {got[2]}; the unit needs a {cell} model of {num_layers} "
                             f"layer(s) with |V| = {vocab_size}, |O| = {output_size}")
        return model
    else:
        model = initial_cell_model(state, cell, vocab_size, hidden_size, output_size, key, default_seed, num_layers)
        if state.kind != "train" or state.snapshot_epochs == 0:
            return model
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
