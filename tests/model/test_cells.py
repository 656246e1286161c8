"""The cell seam: parameter names, shapes and roles, and activation dispatch, declared once in gradlab.cells."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import ACTIVATIONS, random_problem

from gradlab import RNN, Batch, gradient
from gradlab.analysis.gap import PARAMETERS
from gradlab.analysis.vanishing import MAX_DERIVATIVE
from gradlab.cells import ACTIVATIONS as CELL_ACTIVATIONS, CELLS, ELMAN, Cell, Parameter, activation, cell, register
from gradlab.engine import Gradient, SentenceGaps, backpropagate, forward, state_derivative
from gradlab.schemes import Sliding
from gradlab.train import Trainer
from gradlab.train.checkpoint import load_checkpoint


def test_the_elman_cell_names_its_parameters_in_order():
    assert ELMAN.names == ("U", "V", "W")
    assert ELMAN.truncated == ("U", "V") and ELMAN.with_role("output") == ("W",)
    assert ELMAN.shapes(7, 3, 2) == {"U": (3, 3), "V": (3, 7), "W": (2, 3)}
    assert cell("elman") is ELMAN and CELLS["elman"] is ELMAN
    assert PARAMETERS == ("U", "V", "all") == SentenceGaps.PARAMETERS
    assert RNN.cell is ELMAN


def test_registering_a_cell_twice_or_with_bad_roles_fails():
    with pytest.raises(ValueError, match="already registered"):
        register(Cell("elman", (Parameter("U", ("hidden", "hidden"), "recurrent"),)))
    with pytest.raises(ValueError, match="role must be one of"):
        Parameter("X", ("hidden",), "gate")
    with pytest.raises(ValueError, match="cell must be one of"):
        cell("transformer")


def test_model_parameters_are_the_arrays_by_name():
    m = RNN.init(6, 4, output_size=3, rng=0)
    params = m.parameters()
    assert list(params) == ["U", "V", "W"]
    assert all(params[n] is getattr(m, n) for n in params)
    assert {n: a.shape for n, a in params.items()} == ELMAN.shapes(6, 4, 3)
    again = RNN.from_parameters({n: a.copy() for n, a in params.items()}, m.activation)
    for n in params:
        np.testing.assert_array_equal(getattr(again, n), params[n])
    with pytest.raises(ValueError, match="parameters must be exactly"):
        RNN.from_parameters({"U": m.U, "V": m.V})


def test_kernel_codes_are_the_cells_codes():
    from gradlab.kernels import _common
    assert {name: a.code for name, a in CELL_ACTIVATIONS.items()} == {
        "sigmoid": _common.SIGMOID, "tanh": _common.TANH, "relu": _common.RELU, "identity": _common.IDENTITY}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_dispatch_is_one_table(name):
    act = activation(name)
    net = np.linspace(-3, 3, 13)
    s = act.function(net)
    np.testing.assert_array_equal(state_derivative(s, name), act.derivative(s))
    assert MAX_DERIVATIVE[name] == act.max_derivative
    # the numpy function agrees with the kernels' forward pass
    m = RNN.init(5, 3, rng=1, activation=name)
    b = Batch.for_language_model([[0, 1, 2]], [[1, 2, 3]])
    fw = forward(m, b)
    np.testing.assert_allclose(fw.s[0], act.function(m.V[:, 0]), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="activation must be one of"):
        activation("gelu")


def test_gradient_holds_named_arrays_and_keeps_its_attributes(rng):
    p = random_problem(rng, hidden_size=3, vocab_size=5, lengths=(4, 2))
    g = gradient(p.model, p.batch)
    assert list(g.as_dict()) == ["U", "V", "W"]
    assert g.U is g.arrays["U"] and g.W is g.as_dict()["W"]
    same = Gradient(g.U, g.V, g.W, g.loss, g.n_losses, g.scheme)
    named = Gradient({"U": g.U, "V": g.V, "W": g.W}, g.loss, g.n_losses, scheme=g.scheme)
    for other in (same, named, pickle.loads(pickle.dumps(g))):
        np.testing.assert_array_equal(other.flat(), g.flat())
        assert (other.loss, other.n_losses, other.scheme) == (g.loss, g.n_losses, g.scheme)
    with pytest.raises(AttributeError):
        g.U = g.V
    with pytest.raises(ValueError, match="parameter must be one of"):
        g.norm("X")


def test_backpropagate_is_the_backward_half_of_gradient(rng):
    p = random_problem(rng, hidden_size=3, vocab_size=5, lengths=(4, 2, 5))
    g = gradient(p.model, p.batch, Sliding(1))
    fw = forward(p.model, p.batch, return_probs=True)
    pos = fw.loss_positions
    delta_out = fw.probs[pos].copy()
    delta_out[np.arange(pos.size), p.batch.targets[pos]] -= 1.0
    parts = backpropagate(p.model, p.batch, fw.s, delta_out @ p.model.W, Sliding(1))
    assert list(parts) == ["U", "V"]
    np.testing.assert_allclose(parts["U"], g.U, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(parts["V"], g.V, rtol=1e-12, atol=1e-14)


def test_a_checkpoint_is_a_model_file_with_the_run_state(tmp_path, rng):
    p = random_problem(rng, hidden_size=3, vocab_size=5, lengths=(4, 2, 5))
    t = Trainer(epochs=1, checkpoint=tmp_path, progress=False)
    res = t.fit(p.model, p.batch)
    with np.load(tmp_path / "checkpoint.npz") as data:
        assert set(data.files) == {"U", "V", "W", "activation", "trainer_state", "order"}
    model = RNN.load(tmp_path / "checkpoint.npz")
    np.testing.assert_array_equal(model.U, res.model.U)
    with pytest.raises(ValueError, match="extra arrays may not be named"):
        model.save(tmp_path / "x.npz", extra={"U": model.U})
    assert callable(load_checkpoint)


def test_trainer_validate_checks_options_changed_after_construction():
    t = Trainer(progress=False)
    assert t.validate() is t
    t.learning_rate = -1
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        t.validate()
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        t.fit(RNN.init(3, 2, rng=0), Batch.for_language_model([[0, 1]], [[1, 2]]))
