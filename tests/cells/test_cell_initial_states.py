"""initial_states of gradlab.cell_engine (every sentence starts from given h(-1), c(-1) of every layer, constants
the gradient does not flow into) against the loop references of tests/naive_cells.py; the state layout
(CellForward.state, CellModel.state_size) and its errors. The PyTorch oracles are in test_cell_torch.py."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import ALL_CELLS, random_cell_problem
import naive_cells as nc

from gradlab import Batch, Block, Full, Sliding
from gradlab import cell_engine as ce
from gradlab.cellmodel import CellModel

RTOL, ATOL = 1e-10, 1e-12
SCHEMES = [Full(), Sliding(0), Sliding(2), Block(2, 3)]


def _window(scheme):
    return lambda t: int(scheme.lag_limit(np.array([t]))[0])


def _problem(rng, cell, L):
    m, b, xs, ds = random_cell_problem(rng, cell, lengths=(6, 1, 4), drop=0.2, num_layers=L)
    return m, b, xs, ds, rng.standard_normal((b.n_sentences, m.state_size)) * 0.7


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("L", [1, 2])
def test_forward_from_initial_states_matches_the_loop_reference(cell, L, rng):
    m, b, xs, ds, S0 = _problem(rng, cell, L)
    f = ce.forward(m, b, initial_states=S0)
    H = m.hidden_size
    assert f.state.shape == (b.n_tokens, m.state_size)
    for s, x in enumerate(xs):
        init = nc.layer_states(cell, S0[s], L, H)
        layers = nc.run_stacked(cell, m.params, x, L, init)
        a = b.offsets[s]
        want = np.concatenate([np.concatenate([np.array(hs)] + ([np.array(cs)] if cell.startswith("lstm") else []),
                                              axis=1) for hs, cs, _, _ in layers], axis=1)
        np.testing.assert_allclose(f.state[a:a + len(x)], want, rtol=RTOL, atol=ATOL)
    assert f.loss == pytest.approx(nc.loss_stacked(cell, m.params, xs, ds, L, S0), rel=1e-12)


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
@pytest.mark.parametrize("L", [1, 2])
def test_gradient_from_initial_states_matches_the_loop_reference(cell, scheme, L, rng):
    m, b, xs, ds, S0 = _problem(rng, cell, L)
    g = ce.gradient(m, b, scheme, initial_states=S0)
    if L == 1:
        want, J = nc.gradient(cell, m.params, xs, ds, _window(scheme), S0)
    else:
        want, J = nc.gradient_stacked(cell, m.params, xs, ds, _window(scheme), L, S0)
    assert g.loss == pytest.approx(J, rel=1e-12)
    for n in want:
        np.testing.assert_allclose(g.arrays[n], want[n], rtol=RTOL, atol=ATOL, err_msg=n)
    # the initial states matter (else this test could not fail)
    g0 = ce.gradient(m, b, scheme)
    assert not np.allclose(g0.arrays[m.layer_names(0)[0]], g.arrays[m.layer_names(0)[0]])


@pytest.mark.parametrize("cell", ALL_CELLS)
@pytest.mark.parametrize("L", [1, 2])
def test_zero_initial_states_are_bitwise_no_initial_states(cell, L, rng):
    m, b, xs, ds, S0 = _problem(rng, cell, L)
    zeros = np.zeros_like(S0)
    f0, fz = ce.forward(m, b, return_probs=True), ce.forward(m, b, return_probs=True, initial_states=zeros)
    np.testing.assert_array_equal(f0.state, fz.state)
    np.testing.assert_array_equal(f0.probs, fz.probs)
    for scheme in SCHEMES:
        g0, gz = ce.gradient(m, b, scheme), ce.gradient(m, b, scheme, initial_states=zeros)
        assert g0.loss == gz.loss
        for n in m.cell.names:
            np.testing.assert_array_equal(g0.arrays[n], gz.arrays[n], err_msg=n)


@pytest.mark.parametrize("cell", ["gru", "lstm", "linear"])
@pytest.mark.parametrize("L", [1, 2])
def test_a_sentence_continues_from_the_state_where_it_was_cut(cell, L, rng):
    """Forward over x[:4] then x[4:] from the state after step 3 gives the states of the whole sentence."""
    m, b, xs, ds, _ = _problem(rng, cell, L)
    x, d = xs[0], ds[0]
    whole = ce.forward(m, Batch.for_language_model([x], [d]))
    head = ce.forward(m, Batch.for_language_model([x[:4]], [d[:4]]))
    tail = ce.forward(m, Batch.for_language_model([x[4:]], [d[4:]]), initial_states=head.state[-1:])
    np.testing.assert_allclose(np.vstack([head.state, tail.state]), whole.state, rtol=1e-13, atol=1e-14)
    assert head.loss + tail.loss == pytest.approx(whole.loss, rel=1e-13)


def test_state_layout_and_size():
    for cell, L, H, S in (("gru", 1, 3, 3), ("lstm", 1, 3, 6), ("linear", 2, 4, 8), ("lstm", 2, 2, 8)):
        m = CellModel.init(cell, 5, H, num_layers=L, seed=0)
        assert m.state_size == S and m.dtype == np.float64
    m = CellModel.init("lstm", 5, 2, num_layers=2, seed=1)
    b = Batch.for_language_model([np.array([0, 3, 1])], [np.array([3, 1, 2])])
    f = ce.forward(m, b)
    np.testing.assert_array_equal(f.state, np.hstack([f.h_layers[0], f.c_layers[0], f.h_layers[1], f.c_layers[1]]))
    g = CellModel.init("gru", 5, 2, seed=1)
    np.testing.assert_array_equal(ce.forward(g, b).state, ce.forward(g, b).h)


def test_bad_initial_states_are_named(rng):
    m, b, _, _, S0 = _problem(rng, "lstm", 2)
    for bad, err, msg in ((S0[:, :-1], ValueError, r"initial_states must have shape \(3, 12\)"),
                          (S0[:-1], ValueError, r"initial_states must have shape \(3, 12\)"),
                          (S0[0], ValueError, "initial_states must be a 2-D matrix"),
                          (np.full_like(S0, np.nan), ValueError, "initial_states contains a non-finite value"),
                          (S0.astype(str), TypeError, "initial_states must be a real-valued array")):
        with pytest.raises(err, match=msg):
            ce.forward(m, b, initial_states=bad)
        with pytest.raises(err, match=msg):
            ce.gradient(m, b, initial_states=bad)
