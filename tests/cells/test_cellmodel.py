"""gradlab.CellModel: sizes, PyTorch-like initialisation, validation naming the parameter, .npz files."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import CELLS

from gradlab.cellmodel import CellModel
from gradlab.cells import ELMAN, GRU, LINEAR, LSTM, Parameter, cell


def test_cells_are_registered_with_pytorch_names_and_gate_shapes():
    assert cell("gru") is GRU and cell("lstm") is LSTM and cell("linear") is LINEAR
    assert GRU.shapes(7, 3, 2) == {"weight_ih_l0": (9, 7), "weight_hh_l0": (9, 3), "bias_ih_l0": (9,),
                                   "bias_hh_l0": (9,), "W": (2, 3), "b": (2,)}
    assert LSTM.shapes(7, 3, 2)["weight_hh_l0"] == (12, 3)
    assert LINEAR.shapes(7, 3, 2) == {"lambda": (3,), "B": (3, 7), "W": (2, 3), "b": (2,)}
    assert LSTM.truncated == ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    assert GRU.torch_names()["W"] == "linear.weight" and GRU.torch_names()["bias_hh_l0"] == "rnn.bias_hh_l0"
    assert ELMAN.torch_names() == {"U": "rnn.weight_hh_l0", "V": "rnn.weight_ih_l0", "W": "linear.weight"}
    with pytest.raises(ValueError, match="no PyTorch module"):
        LINEAR.torch_names()
    with pytest.raises(ValueError, match="m\\*dim"):
        Parameter("X", ("0*hidden",), "input")
    with pytest.raises(ValueError, match="dimensions are"):
        Parameter("X", ("gates",), "input")


@pytest.mark.parametrize("name", CELLS)
def test_init_is_seeded_and_pytorch_like(name):
    m = CellModel.init(name, 5, 4, 3, seed=1)
    again = CellModel.init(name, 5, 4, 3, seed=1)
    assert (m.vocab_size, m.hidden_size, m.output_size) == (5, 4, 3)
    assert list(m.params) == list(m.cell.names)
    for n, a in m.params.items():
        np.testing.assert_array_equal(a, again.params[n])
        if n == "lambda":
            assert ((a >= 0) & (a < 1)).all()
        else:
            assert np.abs(a).max() <= 0.5
    assert CellModel.init(name, 5, 4, seed=1).output_size == 5


@pytest.mark.parametrize("name", CELLS)
def test_save_and_load_round_trip(name, tmp_path):
    m = CellModel.init(name, 5, 2, 3, seed=2)
    path = m.save(tmp_path / "m.npz")
    back = CellModel.load(path)
    assert back.cell is m.cell
    for n in m.params:
        np.testing.assert_array_equal(back.params[n], m.params[n])


def test_validation_names_the_parameter(tmp_path):
    m = CellModel.init("lstm", 5, 2, 3, seed=0)
    p = m.parameters()
    with pytest.raises(ValueError, match=r"bias_hh_l0 of a lstm model must have shape \(8,\)"):
        CellModel("lstm", {**p, "bias_hh_l0": np.zeros(6)})
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        CellModel("lstm", {n: a for n, a in p.items() if n != "b"})
    with pytest.raises(ValueError, match="W of a lstm model must have 2"):
        CellModel("lstm", {**p, "W": np.zeros(3)})
    with pytest.raises(ValueError, match="cell must be one of"):
        CellModel("elman", p)
    with pytest.raises(ValueError, match="non-finite"):
        CellModel("lstm", {**p, "W": np.full((3, 2), np.inf)})
    with pytest.raises(AttributeError, match="in place"):
        m.params = {}
    np.savez(tmp_path / "elman.npz", U=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not a saved CellModel"):
        CellModel.load(tmp_path / "elman.npz")
