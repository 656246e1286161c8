"""Stacked layers (num_layers >= 2) of the GRU, LSTM and linear recurrence: against the stacked loop
references of tests/naive_cells.py, finite differences, the per-lag identity and PyTorch's multi-layer
modules (float64), where TBPTT(tau) detaches the states of every layer before step t - tau."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import ALL_CELLS, CELLS, random_cell_problem
import naive_cells as nc

from gradlab import Block, Full, Sliding
from gradlab import cell_engine as ce
from gradlab.cellmodel import CellModel
from gradlab.cells import GRU, stacked

RTOL, ATOL = 1e-10, 1e-12


def stacked_problem(rng, cell, L, *, objective="lm", hidden=3, vocab=4, lengths=(6, 1, 4), drop=0.2, scale=0.6):
    return random_cell_problem(rng, cell, objective=objective, hidden=hidden, vocab=vocab, lengths=lengths,
                               scale=scale, drop=drop, num_layers=L)


def _close(got, want):
    for n in want:
        np.testing.assert_allclose(got[n], want[n], rtol=RTOL, atol=ATOL, err_msg=n)


def test_stacked_cells_name_their_layers_as_pytorch():
    c = stacked(GRU, 2)
    assert c.name == "gru-2layers" and stacked(GRU, 2) is c and stacked(GRU, 1) is GRU
    assert c.names == ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l1", "weight_hh_l1",
                       "bias_ih_l1", "bias_hh_l1", "W", "b")
    assert c.shapes(7, 3, 5)["weight_ih_l1"] == (9, 3)
    m = CellModel.init("linear", 5, 2, num_layers=3, seed=0)
    assert m.cell.names == ("lambda", "B", "lambda_l1", "B_l1", "lambda_l2", "B_l2", "W", "b")
    assert m.num_layers == 3 and m.params["B_l2"].shape == (2, 2)
    with pytest.raises(ValueError, match="num_layers must be an integer >= 1"):
        CellModel.init("gru", 5, 2, num_layers=0)
    with pytest.raises(ValueError, match="already stacked"):
        CellModel.init("gru-2layers", 5, 2, num_layers=2)
    with pytest.raises(ValueError, match="cell must be one of"):
        CellModel.init("gru-1layers", 5, 2)


@pytest.mark.parametrize("name", CELLS)
def test_stacked_models_save_and_load(name, tmp_path):
    m = CellModel.init(name, 5, 2, 3, num_layers=2, seed=4)
    back = CellModel.load(m.save(tmp_path / "s.npz"))
    assert back.cell is m.cell and back.num_layers == 2
    for n in m.params:
        np.testing.assert_array_equal(back.params[n], m.params[n])


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("scheme", [Full(), Sliding(0), Sliding(2), Sliding(40), Block(2, 3)], ids=str)
@pytest.mark.parametrize("L", [2, 3])
def test_stacked_gradient_matches_the_loop_reference(cell, scheme, L, rng):
    m, b, xs, ds = stacked_problem(rng, cell, L)
    g = ce.gradient(m, b, scheme)
    want, J = nc.gradient_stacked(m.cell.name, m.params, xs, ds, lambda t: int(scheme.lag_limit(np.array([t]))[0]),
                                  L)
    assert g.loss == pytest.approx(J, rel=1e-12) and list(g.arrays) == list(m.cell.names)
    _close(g.arrays, want)


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("objective", ["lm", "final"])
def test_stacked_contributions_match_the_loop_reference_and_add_up(cell, objective, rng):
    L, K = 2, 3
    m, b, xs, ds = stacked_problem(rng, cell, L, objective=objective)
    c = ce.contributions(m, b, K)
    rows, G = nc.contributions_stacked(m.cell.name, m.params, xs, ds, K, L)
    assert [(s, t, k) for s, t, k, *_ in rows] == list(zip(c.sentence.tolist(), c.t.tolist(), c.lag.tolist()))
    np.testing.assert_allclose(c.layer_h_norm, np.array([r[3] for r in rows]).T.reshape(L, -1), rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(c.h_norm, c.layer_h_norm[-1])
    if cell.startswith("lstm"):
        np.testing.assert_allclose(c.layer_c_norm, np.array([r[4] for r in rows], dtype=float).T.reshape(L, -1),
                                   rtol=RTOL, atol=ATOL)
    else:
        assert c.layer_c_norm is None
    _close(c.G, G)
    for tau in range(K + 1):
        _close(c.truncated(tau).arrays, ce.gradient(m, b, Sliding(tau)).arrays)
    frame = c.to_frame()
    assert {"h_norm_l0", "h_norm_l1"} <= set(frame.columns)


@pytest.mark.parametrize("cell", CELLS)
def test_stacked_full_gradient_matches_finite_differences(cell, rng):
    m, b, xs, ds = stacked_problem(rng, cell, 2, hidden=2, vocab=3, lengths=(4, 2))
    g = ce.gradient(m, b, Full())
    for n, a in m.params.items():
        fd = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + 1e-6
            up = nc.loss_stacked(m.cell.name, m.params, xs, ds, 2)
            a[idx] = old - 1e-6
            down = nc.loss_stacked(m.cell.name, m.params, xs, ds, 2)
            a[idx] = old
            fd[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(g.arrays[n], fd, rtol=1e-6, atol=1e-8, err_msg=n)


def test_stacked_forward_matches_the_loop_reference(rng):
    for cell in ALL_CELLS:
        m, b, xs, ds = stacked_problem(rng, cell, 3)
        f = ce.forward(m, b)
        assert f.h_layers.shape == (3, b.n_tokens, 3)
        np.testing.assert_array_equal(f.h, f.h_layers[-1])
        for s, x in enumerate(xs):
            layers = nc.run_stacked(m.cell.name, m.params, x, 3)
            a = b.offsets[s]
            for layer in range(3):
                np.testing.assert_allclose(f.h_layers[layer, a:a + len(x)], np.array(layers[layer][0]), rtol=RTOL,
                                           atol=ATOL)
                if cell.startswith("lstm"):
                    np.testing.assert_allclose(f.c_layers[layer, a:a + len(x)], np.array(layers[layer][1]),
                                               rtol=RTOL, atol=ATOL)
        assert f.loss == pytest.approx(nc.loss_stacked(m.cell.name, m.params, xs, ds, 3), rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(cell=st.sampled_from(ALL_CELLS), seed=st.integers(0, 2 ** 31), L=st.integers(2, 3), hidden=st.integers(1, 3),
       lengths=st.lists(st.integers(1, 6), min_size=1, max_size=3), tau=st.integers(0, 6),
       drop=st.sampled_from([0.0, 0.5, 1.0]))
def test_stacked_random_sizes(cell, seed, L, hidden, lengths, tau, drop):
    rng = np.random.default_rng(seed)
    m, b, xs, ds = stacked_problem(rng, cell, L, hidden=hidden, lengths=lengths, drop=drop)
    _close(ce.gradient(m, b, Sliding(tau)).arrays,
           nc.gradient_stacked(m.cell.name, m.params, xs, ds, lambda t: tau, L)[0])
    c = ce.contributions(m, b, tau)
    rows, G = nc.contributions_stacked(m.cell.name, m.params, xs, ds, tau, L)
    _close(c.G, G)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_stacked_lockstep_with_many_sentences_matches_the_loop_reference(cell, rng):
    """Enough sentences of different lengths that many loss groups run together (products through BLAS,
    rows finishing at different steps): gradients and contributions of 3 layers against the references."""
    L, K = 3, 3
    m, b, xs, ds = stacked_problem(rng, cell, L, hidden=4, vocab=5, lengths=rng.integers(1, 9, 24), drop=0.3)
    for scheme in (Full(), Sliding(2)):
        want, _ = nc.gradient_stacked(m.cell.name, m.params, xs, ds,
                                      lambda t: int(scheme.lag_limit(np.array([t]))[0]), L)
        _close(ce.gradient(m, b, scheme).arrays, want)
    c = ce.contributions(m, b, K)
    rows, G = nc.contributions_stacked(m.cell.name, m.params, xs, ds, K, L)
    np.testing.assert_allclose(c.layer_h_norm, np.array([r[3] for r in rows]).T.reshape(L, -1), rtol=RTOL, atol=ATOL)
    if cell == "lstm":
        np.testing.assert_allclose(c.layer_c_norm, np.array([r[4] for r in rows], dtype=float).T.reshape(L, -1),
                                   rtol=RTOL, atol=ATOL)
    _close(c.G, G)
