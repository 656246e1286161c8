"""gradlab.gradcheck.check_gradient on GRU, LSTM, linear-recurrence and stacked models (CellModel)."""
from __future__ import annotations

import numpy as np
import pytest

from gradlab import cell_engine
from gradlab.cellmodel import CellModel
from gradlab.gradcheck import check_gradient

from helpers import random_cell_problem


def _stacked(rng, cell):
    model, batch, _, _ = random_cell_problem(rng, cell)
    stacked = CellModel.init(cell, model.vocab_size, model.hidden_size, model.output_size, num_layers=2,
                             seed=int(rng.integers(2 ** 31)))
    for n, a in stacked.params.items():
        a[...] = rng.uniform(-1, 1, a.shape) if n.startswith("lambda") else rng.standard_normal(a.shape) * 0.6
    return stacked, batch


@pytest.mark.parametrize("cell", ["gru", "lstm", "linear", "gru-embedding", "lstm-2layers", "gru-2layers",
                                  "linear-2layers"])
def test_the_engine_gradient_passes(cell, rng):
    if cell.endswith("2layers"):
        model, batch = _stacked(rng, cell.split("-")[0])
    else:
        model, batch, _, _ = random_cell_problem(rng, cell, drop=0.2)
    before = {n: a.copy() for n, a in model.params.items()}
    check = check_gradient(model, batch, n_samples=6, rng=1, eps=1e-5)
    assert set(check.parameter) == set(model.cell.names)
    assert check.max_rel_error < 1e-6, check.to_frame().sort_values("rel_error").tail()
    for n, a in model.params.items():                     # the model itself is left as it was
        np.testing.assert_array_equal(a, before[n])
    # a vector parameter's entries are read as a column
    vec = [i for i, p in enumerate(check.parameter) if model.params[p].ndim == 1]
    assert vec and (check.index[vec, 1] == 0).all()


def test_an_explicit_gradient_and_a_dict_are_accepted(rng):
    model, batch, _, _ = random_cell_problem(rng, "lstm")
    g = cell_engine.gradient(model, batch)
    assert check_gradient(model, batch, g, rng=0, eps=1e-5).max_rel_error < 1e-6
    assert check_gradient(model, batch, g.as_dict(), rng=0, eps=1e-5).max_rel_error < 1e-6


@pytest.mark.parametrize("cell, name", [("gru", "weight_hh_l0"), ("lstm", "bias_ih_l0"), ("linear", "lambda")])
def test_a_wrong_gradient_fails(cell, name, rng, monkeypatch):
    model, batch, _, _ = random_cell_problem(rng, cell)
    right = cell_engine.gradient

    def wrong(*args, **kwargs):
        g = right(*args, **kwargs).as_dict()
        return {**g, name: g[name] * 1.1}                 # a 10% error in one parameter

    monkeypatch.setattr(cell_engine, "gradient", wrong)
    check = check_gradient(model, batch, n_samples=50, rng=0, eps=1e-5)
    bad = check.rel_error[check.parameter == name]
    assert bad.min() > 0.04 and check.max_rel_error > 0.04
    assert check.rel_error[check.parameter != name].max() < 1e-4   # the others stay right


def test_bad_parameter_names_are_named(rng):
    model, batch, _, _ = random_cell_problem(rng, "gru")
    g = cell_engine.gradient(model, batch)
    parts = g.as_dict()
    with pytest.raises(ValueError, match=r"grad lacks \['bias_hh_l0'\]"):
        check_gradient(model, batch, {n: a for n, a in parts.items() if n != "bias_hh_l0"})
    with pytest.raises(ValueError, match="not PyTorch's"):
        check_gradient(model, batch, g.as_dict(torch_names=True))
    with pytest.raises(ValueError, match=r"entries \['U'\] that are no parameters of a gru model"):
        check_gradient(model, batch, {**parts, "U": parts["W"]})
    with pytest.raises(ValueError, match="shape"):
        check_gradient(model, batch, {**parts, "W": parts["W"].T})
    with pytest.raises(TypeError, match="gradlab.RNN or a gradlab.cellmodel.CellModel"):
        check_gradient(object(), batch)
