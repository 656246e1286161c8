"""gradlab's front functions (forward, gradient, contributions, sentence_gaps) hand a CellModel to the cell engine."""
from __future__ import annotations

import numpy as np
import pytest

import gradlab
from gradlab import Batch, CellModel, cell_engine
from gradlab.analysis.gap import cell_sentence_gaps

CASES = [("gru", 1, None), ("lstm", 2, None), ("linear", 1, 2)]


@pytest.fixture(params=CASES, ids=lambda c: f"{c[0]}-{c[1]}layers-embedding{c[2]}")
def problem(request, rng):
    cell, num_layers, embedding_size = request.param
    model = CellModel.init(cell, 5, 3, seed=int(rng.integers(1000)), num_layers=num_layers,
                           embedding_size=embedding_size)
    lengths = (4, 1, 6)
    batch = Batch.for_language_model([rng.integers(0, 5, T) for T in lengths],
                                     [rng.integers(0, 5, T) for T in lengths])
    return model, batch


def assert_same_arrays(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_forward(problem):
    model, batch = problem
    got, want = gradlab.forward(model, batch, return_probs=True), cell_engine.forward(model, batch, return_probs=True)
    assert type(got) is cell_engine.CellForward
    for field in ("h", "c", "losses", "loss_positions", "probs", "h_layers", "c_layers"):
        a, b = getattr(got, field), getattr(want, field)
        assert (a is None) == (b is None), field
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=field)


@pytest.mark.parametrize("scheme", ["full", "tbptt:1", "chunked:2", "mikolov:3,2"])
def test_gradient(problem, scheme):
    model, batch = problem
    got, want = gradlab.gradient(model, batch, scheme), cell_engine.gradient(model, batch, scheme)
    assert got.cell is model.cell and got.scheme == want.scheme and got.loss == want.loss
    assert_same_arrays(got.as_dict(), want.as_dict())


@pytest.mark.parametrize("scheme", ["full", "tbptt:2"])
def test_initial_states_reach_the_cell_engine(problem, rng, scheme):
    model, batch = problem
    S0 = rng.standard_normal((batch.n_sentences, model.state_size)) * 0.5
    got, want = gradlab.forward(model, batch, initial_states=S0), cell_engine.forward(model, batch, initial_states=S0)
    np.testing.assert_array_equal(got.state, want.state)
    assert not np.array_equal(got.state, gradlab.forward(model, batch).state)
    g, w = gradlab.gradient(model, batch, scheme, initial_states=S0), \
        cell_engine.gradient(model, batch, scheme, initial_states=S0)
    assert_same_arrays(g.as_dict(), w.as_dict())
    with pytest.raises(ValueError, match="initial_states"):
        gradlab.gradient(model, batch, scheme, initial_states=S0[:, :-1])


def test_contributions(problem):
    model, batch = problem
    got, want = gradlab.contributions(model, batch, 3), cell_engine.contributions(model, batch, 3)
    assert type(got) is cell_engine.CellContributions
    assert got.to_frame().equals(want.to_frame())
    assert_same_arrays(got.G, want.G)
    assert_same_arrays(got.G_out, want.G_out)


def test_sentence_gaps(problem):
    model, batch = problem
    got, want = gradlab.sentence_gaps(model, batch, 3), cell_sentence_gaps(model, batch, 3)
    assert got.parameters == want.parameters == tuple(model.cell.truncated) + ("all",)
    assert got.to_frame().equals(want.to_frame())


@pytest.mark.parametrize("option", [dict(G_V=False), dict(G_V=2), dict(V_norm=False)])
def test_an_elman_only_option_of_contributions_fails_naming_it(problem, option):
    model, batch = problem
    (name, value), = option.items()
    with pytest.raises(ValueError, match=f"{name}={value!r}: this option applies to the Elman RNN's contributions"):
        gradlab.contributions(model, batch, 2, **option)


def test_cell_errors_come_from_the_cell_engine(problem):
    model, batch = problem
    with pytest.raises(ValueError, match="max_lag"):
        gradlab.contributions(model, batch, -1)
    with pytest.raises(ValueError, match="max_lag"):
        gradlab.sentence_gaps(model, batch, -1)
    with pytest.raises(ValueError, match="scheme"):
        gradlab.gradient(model, batch, "nonsense")
