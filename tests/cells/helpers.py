"""Random rnn / GRU / LSTM / linear-recurrence problems for tests/cells."""
from __future__ import annotations

import numpy as np

from gradlab import Batch
from gradlab.cellmodel import CellModel

CELLS = ("gru", "lstm", "linear", "rnn")
#: The rnn cell with each activation ("rnn:relu": the naming of tests/naive_cells.py).
RNN_CELLS = ("rnn:tanh", "rnn:relu", "rnn:sigmoid", "rnn:identity")
#: With the embedding-layer variants.
ALL_CELLS = CELLS + tuple(f"{c}-embedding" for c in CELLS)


def random_cell_problem(rng, cell, *, objective="lm", hidden=3, vocab=4, lengths=(5, 1, 3), n_classes=2,
                        scale=0.6, drop=0.0, embed=2, num_layers=1):
    """(model, batch, xs, ds): parameters N(0, scale^2) (every layer's lambda uniform in (-1, 1)); cells
    "...-embedding" read an embedding of size ``embed``; ``num_layers`` stacked layers; "rnn...:relu": the
    rnn cell's activation (tanh by default)."""
    out = vocab if objective == "lm" else n_classes
    name, _, act = cell.partition(":")
    model = CellModel.init(name.split("-")[0], vocab, hidden, out, seed=int(rng.integers(2 ** 31)),
                           embedding_size=embed if name.endswith("-embedding") else None, num_layers=num_layers,
                           activation=act or None)
    for n, a in model.params.items():
        a[...] = rng.uniform(-1, 1, a.shape) if n.startswith("lambda") else rng.standard_normal(a.shape) * scale
    xs = [rng.integers(0, vocab, int(T)).astype(np.int64) for T in lengths]
    if objective == "lm":
        ds = [rng.integers(0, vocab, int(T)).astype(np.int64) for T in lengths]
        for d in ds:
            d[rng.random(d.size) < drop] = -1
        batch = Batch.for_language_model(xs, ds)
    else:
        labels = rng.integers(0, n_classes, len(xs))
        batch = Batch.for_classification(xs, labels)
        ds = []
        for x, lab in zip(xs, labels):
            d = np.full(x.size, -1, dtype=np.int64)
            d[-1] = lab
            ds.append(d)
    return model, batch, xs, ds
