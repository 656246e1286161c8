"""Internals of the lockstep sweeps that the loop references cannot see: the per-position sums of a
gradient read only the positions some window reaches, and the LSTM's cache holds tanh c(t)."""
import numpy as np
import pytest

from gradlab import Batch
from gradlab import cell_engine as ce
from gradlab.batch import NO_LOSS
from gradlab.schemes import Sliding

from helpers import random_cell_problem


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_states_outside_every_window_take_no_part_in_a_gradient(cell, rng):
    """TBPTT(1) with a loss every 6 steps: each sweep chunk holds several windows with positions between
    them that no window reaches. States there set to inf (and NaN) must not reach the gradient: it stays
    bit for bit the gradient of the clean states (a product over all positions would give NaN)."""
    m, _, _, _ = random_cell_problem(rng, cell, hidden=4, vocab=5)
    T = 80
    x = rng.integers(0, 5, T).astype(np.int64)
    d = np.full(T, NO_LOSS, dtype=np.int64)
    d[2::6] = rng.integers(0, 5, d[2::6].size)
    b = Batch.for_language_model([x], [d])
    loss_pos = ce._check(m, b)
    P = ce._OneHot(m)
    H0, C0 = ce._initial(m, b, None)
    Hs, Cs, G = ce._states(P, b, H0, C0)
    _, dH, _, _ = ce._output(m, Hs, b, loss_pos)
    lo = ce._lag_starts(b, loss_pos, Sliding(1).lag_limit(b.positions()[loss_pos]))
    reached = np.zeros(T, dtype=bool)
    for t, s in zip(loss_pos, lo):
        reached[s - 1 if s else 0: t + 1] = True          # the window and the state before it
    assert (~reached).sum() > 30
    args = (loss_pos, dH, lo, False, 1, np.zeros(0, dtype=np.int64), H0, C0)
    clean, _, _ = ce._sweep(P, b, Hs, Cs, G, *args)
    Hs[~reached] = np.inf
    Hs[np.flatnonzero(~reached)[::2]] = np.nan
    if Cs is not None:
        Cs[~reached] = np.inf
    dirty, _, _ = ce._sweep(P, b, Hs, Cs, G, *args)
    for n in clean:
        assert np.isfinite(clean[n]).all() and np.abs(clean[n]).max() > 0
        np.testing.assert_array_equal(dirty[n], clean[n], err_msg=n)


def test_the_lstm_cache_holds_tanh_of_the_cell_state(rng):
    m, b, _, _ = random_cell_problem(rng, "lstm", hidden=3, lengths=(6, 2, 4))
    P = ce._OneHot(m)
    H0, C0 = ce._initial(m, b, None)
    Hs, Cs, G = ce._states(P, b, H0, C0)
    H = m.hidden_size
    np.testing.assert_allclose(G[:, 4 * H:], np.tanh(Cs), rtol=1e-15, atol=0)
    np.testing.assert_allclose(Hs, G[:, 3 * H:4 * H] * np.tanh(Cs), rtol=1e-15, atol=0)
