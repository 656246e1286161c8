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


@pytest.mark.parametrize("name", CELLS)
def test_models_with_an_embedding_layer(name, tmp_path):
    m = CellModel.init(name, 6, 3, 2, embedding_size=4, seed=0)
    assert m.cell.name == f"{name}-embedding" and m.embedding_size == 4 and m.vocab_size == 6
    assert m.params["embedding"].shape == (6, 4) and m.params[m.input_weights].shape[1] == 4
    assert m.cell.truncated[0] == "embedding"
    back = CellModel.load(m.save(tmp_path / "e.npz"))
    assert back.cell is m.cell and back.embedding_size == 4
    assert CellModel.init(name, 6, 3, 2, seed=0).embedding_size is None
    with pytest.raises(ValueError, match="needs embedding_size"):
        CellModel.init(f"{name}-embedding", 6, 3, 2, seed=0)
    with pytest.raises(ValueError, match=f"{m.input_weights} of a {name}-embedding model must have shape"):
        CellModel(m.cell, {**m.parameters(), m.input_weights: np.zeros(m.params[m.input_weights].shape[:1] + (6,))})


def test_the_readme_example_runs():
    import gradlab as gl
    from gradlab import cell_engine as ce

    model = gl.CellModel.init("lstm", vocab_size=10, hidden_size=8, seed=0)
    batch = gl.Batch.for_language_model([[1, 2, 3, 4], [5, 6]], [[2, 3, 4, 0], [6, 0]])
    g = ce.gradient(model, batch, "tbptt:2")
    c = ce.contributions(model, batch, max_lag=3)
    assert abs(c.truncated(2).norm() - g.norm()) < 1e-9 * g.norm()
    assert list(c.to_frame().columns) == ["sentence", "t", "lag", "h_norm", "c_norm"]


def test_save_keeps_extra_arrays_that_load_ignores(tmp_path):
    m = CellModel.init("rnn", 5, 3, seed=1, activation="relu")
    path = m.save(tmp_path / "m.npz", extra={"note": np.array("run state"), "order": np.arange(4)})
    with np.load(path) as data:
        assert str(data["note"]) == "run state" and data["order"].tolist() == [0, 1, 2, 3]
    back = CellModel.load(path)
    assert back.activation == "relu" and all(np.array_equal(back.params[n], m.params[n]) for n in m.cell.names)
    for clash in ("weight_hh_l0", "__cell__", "__activation__"):
        with pytest.raises(ValueError, match=f"may not be named \\['{clash}'\\]"):
            m.save(tmp_path / "x.npz", extra={clash: np.zeros(1)})


def test_load_model_reads_either_kind_of_model_file(tmp_path):
    import gradlab as gl
    cell = CellModel.init("gru", 6, 3, seed=0)
    elman = gl.RNN.init(6, 3, rng=0)
    a, b = gl.load_model(cell.save(tmp_path / "c.npz")), gl.load_model(elman.save(tmp_path / "e.npz"))
    assert isinstance(a, CellModel) and a.cell.name == "gru"
    assert isinstance(b, gl.RNN) and np.array_equal(b.U, elman.U)
    with pytest.raises((OSError, ValueError), match="missing.npz"):
        gl.load_model(tmp_path / "missing.npz")
