"""The nn.RNN cell ("rnn": h(t) = f(W_ih x(t) + b_ih + W_hh h(t-1) + b_hh), f tanh, relu, sigmoid or identity)
against the loop references of tests/naive_cells.py (every activation, 1 and 2 layers, embedding), central
differences (gradlab.check_gradient) and a closed form; the model's activation; analyse, evaluate and
estimate_truncation on it. PyTorch autograd oracles: test_cell_torch.py (kinds "rnn", "rnn:relu")."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import RNN_CELLS, random_cell_problem
import naive_cells as nc

from gradlab import Adaptive, Batch, Block, Full, Sliding, chunked
from gradlab import cell_engine as ce
from gradlab.cellmodel import CellModel
from gradlab.gradcheck import check_gradient

RTOL, ATOL = 1e-10, 1e-12
SCHEMES = [Full(), Sliding(0), Sliding(2), Block(2, 3), chunked(2)]


def _close(got, want):
    for n in want:
        np.testing.assert_allclose(got[n], want[n], rtol=RTOL, atol=ATOL, err_msg=n)


def _window(scheme):
    return lambda t: int(scheme.lag_limit(np.array([t]))[0])


def _variant(cell, embedding, L):
    """("rnn-embedding:relu" for the problem, the naive reference's name with the layers) of one variant."""
    name, act = cell.split(":")
    name += "-embedding" if embedding else ""
    return f"{name}:{act}", (f"{name}-{L}layers:{act}" if L > 1 else f"{name}:{act}")


@pytest.mark.parametrize("cell", RNN_CELLS)
@pytest.mark.parametrize("embedding", [False, True])
@pytest.mark.parametrize("L", [1, 2])
def test_forward_matches_the_loop_reference(cell, embedding, L, rng):
    problem, ref = _variant(cell, embedding, L)
    m, b, xs, ds = random_cell_problem(rng, problem, lengths=(5, 1, 3), num_layers=L)
    assert m.activation == cell.split(":")[1]
    f = ce.forward(m, b, return_probs=True)
    for s, x in enumerate(xs):
        layers = nc.run_stacked(ref, m.params, x, L)
        a = b.offsets[s]
        np.testing.assert_allclose(f.state[a:a + len(x)], np.hstack([np.array(hs) for hs, *_ in layers]),
                                   rtol=RTOL, atol=ATOL)
    assert f.c is None and f.state.shape == (b.n_tokens, L * m.hidden_size)
    assert f.loss == pytest.approx(nc.loss_stacked(ref, m.params, xs, ds, L), rel=1e-12)


@pytest.mark.parametrize("cell", RNN_CELLS)
@pytest.mark.parametrize("embedding", [False, True])
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("objective", ["lm", "final"])
def test_gradient_under_every_scheme_matches_the_loop_reference(cell, embedding, L, objective, rng):
    problem, ref = _variant(cell, embedding, L)
    m, b, xs, ds = random_cell_problem(rng, problem, objective=objective, lengths=(7, 1, 4), drop=0.2, num_layers=L)
    for scheme in SCHEMES:
        g = ce.gradient(m, b, scheme)
        if L == 1:
            want, J = nc.gradient(ref, m.params, xs, ds, _window(scheme))
        else:
            want, J = nc.gradient_stacked(ref, m.params, xs, ds, _window(scheme), L)
        assert g.loss == pytest.approx(J, rel=1e-12) and list(g.arrays) == list(m.cell.names)
        _close(g.arrays, want)


@pytest.mark.parametrize("cell", RNN_CELLS)
@pytest.mark.parametrize("embedding", [False, True])
@pytest.mark.parametrize("L", [1, 2])
def test_contributions_match_the_loop_reference_and_add_up(cell, embedding, L, rng):
    problem, ref = _variant(cell, embedding, L)
    m, b, xs, ds = random_cell_problem(rng, problem, lengths=(6, 1, 4), drop=0.3, num_layers=L)
    K = 3
    c = ce.contributions(m, b, K)
    if L == 1:
        rows, G = nc.contributions(ref, m.params, xs, ds, K)
        norms = [r[3] for r in rows]
    else:
        rows, G = nc.contributions_stacked(ref, m.params, xs, ds, K, L)
        norms = [r[3][-1] for r in rows]
        np.testing.assert_allclose(c.layer_h_norm, np.array([r[3] for r in rows]).T, rtol=RTOL, atol=ATOL)
    assert [(s, t, k) for s, t, k, *_ in rows] == list(zip(c.sentence.tolist(), c.t.tolist(), c.lag.tolist()))
    np.testing.assert_allclose(c.h_norm, norms, rtol=RTOL, atol=ATOL)
    assert c.c_norm is None
    _close(c.G, G)
    for tau in range(K + 1):
        _close(c.truncated(tau).arrays, ce.gradient(m, b, Sliding(tau)).arrays)


@pytest.mark.parametrize("cell", ["rnn:" + a for a in ("tanh", "relu", "sigmoid", "identity")] +
                         ["rnn-embedding:tanh", "rnn-2layers:relu", "rnn-2layers:sigmoid"])
def test_the_gradient_passes_central_differences(cell, rng):
    name, act = cell.split(":")
    L = 2 if name.endswith("2layers") else 1
    m, b, _, _ = random_cell_problem(rng, name.replace("-2layers", "") + ":" + act, drop=0.2, num_layers=L)
    check = check_gradient(m, b, n_samples=8, rng=1, eps=1e-5)
    assert set(check.parameter) == set(m.cell.names)
    assert check.max_rel_error < 1e-6, check.to_frame().sort_values("rel_error").tail()


@settings(max_examples=30, deadline=None)
@given(cell=st.sampled_from(RNN_CELLS), embedding=st.booleans(), L=st.integers(1, 2), seed=st.integers(0, 2 ** 31),
       hidden=st.integers(1, 4), vocab=st.integers(1, 4), lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       tau=st.integers(0, 7), objective=st.sampled_from(["lm", "final"]), drop=st.sampled_from([0.0, 0.5, 1.0]),
       initial=st.booleans())
def test_random_sizes_match_the_loop_reference(cell, embedding, L, seed, hidden, vocab, lengths, tau, objective, drop,
                                               initial):
    rng = np.random.default_rng(seed)
    problem, ref = _variant(cell, embedding, L)
    m, b, xs, ds = random_cell_problem(rng, problem, objective=objective, hidden=hidden, vocab=vocab,
                                       lengths=lengths, drop=drop, num_layers=L)
    S0 = rng.standard_normal((b.n_sentences, m.state_size)) if initial else None
    g = ce.gradient(m, b, Sliding(tau), initial_states=S0)
    want, J = nc.gradient_stacked(ref, m.params, xs, ds, lambda t: tau, L, S0)
    assert g.loss == pytest.approx(J, rel=1e-11, abs=1e-13)
    _close(g.arrays, want)
    c = ce.contributions(m, b, tau)
    rows, G = nc.contributions_stacked(ref, m.params, xs, ds, tau, L)
    np.testing.assert_allclose(c.h_norm, [r[3][-1] for r in rows], rtol=RTOL, atol=ATOL)
    _close(c.G, G)


def test_identity_activation_closed_form(rng):
    """f = identity, W_hh = rho I: dJ(t)/dh(t-k) = rho^k dJ(t)/dh(t), and the lag-k term of dJ/db_hh is
    rho^k dJ(t)/dh(t) (as for the linear recurrence with lambda = rho)."""
    rho, H, V = 0.6, 3, 4
    m = CellModel("rnn", {"weight_ih_l0": rng.standard_normal((H, V)), "weight_hh_l0": rho * np.eye(H),
                          "bias_ih_l0": rng.standard_normal(H), "bias_hh_l0": rng.standard_normal(H),
                          "W": rng.standard_normal((V, H)), "b": rng.standard_normal(V)}, activation="identity")
    x = np.array([2, 0, 1, 3, 2, 0])
    d = np.full(6, -1)
    d[-1] = 1
    c = ce.contributions(m, Batch.for_language_model([x], [d]), 5)
    np.testing.assert_allclose(c.h_norm, c.h_norm[0] * rho ** np.arange(6), rtol=1e-13)
    np.testing.assert_allclose(c.G["bias_hh_l0"], c.G["bias_hh_l0"][0] * rho ** np.arange(6)[:, None], rtol=1e-13)


def test_the_activation_is_part_of_the_model(rng, tmp_path):
    m = CellModel.init("rnn", 5, 3, activation="relu", seed=0)
    assert m.activation == "relu" and "activation='relu'" in repr(m) and m.copy().activation == "relu"
    assert CellModel.init("rnn", 5, 3, seed=0).activation == "tanh"                # nn.RNN's default
    assert CellModel.init("gru", 5, 3, seed=0).activation is None and "activation" not in repr(
        CellModel.init("gru", 5, 3, seed=0))
    back = CellModel.load(m.save(tmp_path / "r.npz"))
    assert back.activation == "relu" and back.cell is m.cell
    stacked = CellModel.init("rnn", 5, 3, num_layers=2, embedding_size=2, activation="sigmoid", seed=1)
    assert stacked.cell.name == "rnn-embedding-2layers"
    assert CellModel.load(stacked.save(tmp_path / "s.npz")).activation == "sigmoid"
    # the same arrays under another activation are another model: other losses
    b = Batch.for_language_model([[0, 1, 2]], [[1, 2, 3]])
    other = CellModel("rnn", m.params, activation="tanh")
    assert ce.forward(m, b).loss != ce.forward(other, b).loss
    with pytest.raises(ValueError, match="activation is for the rnn cells.*a gru model has none"):
        CellModel.init("gru", 5, 3, activation="tanh")
    with pytest.raises(ValueError, match="activation is for the rnn cells"):
        CellModel("lstm", CellModel.init("lstm", 5, 3, seed=0).params, activation="relu")
    with pytest.raises(ValueError, match="activation must be one of"):
        CellModel.init("rnn", 5, 3, activation="softplus")
    arrays = dict(np.load(m.save(tmp_path / "r2.npz")))
    del arrays["__activation__"]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="needs its activation"):
        CellModel.load(tmp_path / "bad.npz")


def test_analyse_takes_an_rnn_model(rng):
    from gradlab.analysis import analyse, vanishing_profile
    m, b, _, _ = random_cell_problem(rng, "rnn:relu", lengths=(6, 1, 8, 4))
    out = analyse(m, b, max_lag=4, block_schemes=["chunked:3"], per_sentence=True)
    c = ce.contributions(m, b, 4)
    import pandas as pd
    pd.testing.assert_frame_equal(out["profile"], vanishing_profile(c))
    full = ce.gradient(m, b, Full()).as_dict()
    row = out["gap"].query("scheme == 'tbptt:1' and parameter == 'weight_hh_l0'")
    rel = np.linalg.norm(c.truncated(1).arrays["weight_hh_l0"] - full["weight_hh_l0"]) / np.linalg.norm(
        full["weight_hh_l0"])
    assert rel > 0 and len(row) == 1 and row["rel_error"].iloc[0] == pytest.approx(rel, rel=1e-9)
    assert len(out["gap_sentences"]) and "block:3,3" in set(out["gap"]["scheme"])


def test_evaluate_takes_an_rnn_model():
    from gradlab.data import load_dataset
    from gradlab.train import evaluate
    ds = load_dataset("agreement:n=30,distance=4,min_distance=2,seed=3")
    m = CellModel.init("rnn", len(ds.vocab), 5, ds.n_outputs("lm"), activation="relu", seed=3)
    m.params["b"][...] = np.random.default_rng(0).standard_normal(m.params["b"].shape)
    b = ds.batch("lm")
    fr = ce.forward(m, b, return_probs=True)
    ev = evaluate(m, ds, "lm", max_tokens=50)
    np.testing.assert_allclose(ev.loss, fr.losses.sum(), rtol=1e-12)
    pos = b.offsets[ev.items["sentence"].to_numpy()] + ev.items["step"].to_numpy()
    np.testing.assert_array_equal(ev.items.correct, fr.probs[pos].argmax(axis=1) == ev.items["target"].to_numpy())


@pytest.mark.parametrize("rho, delta", [(0.8, 0.1), (0.5, 0.01)])
def test_estimate_truncation_takes_an_rnn_model(rho, delta, rng):
    """identity activation, W_hh = rho I: the profile is exactly geometric with rate rho, so the adaptive
    tau is the smallest with rho^(tau+1) <= delta."""
    from gradlab.train.adaptive import estimate_truncation
    H, V, n_out = 4, 5, 3
    m = CellModel("rnn", {"weight_ih_l0": rng.uniform(0.1, 1.0, (H, V)), "weight_hh_l0": rho * np.eye(H),
                          "bias_ih_l0": np.zeros(H), "bias_hh_l0": np.zeros(H),
                          "W": rng.standard_normal((n_out, H)), "b": np.zeros(n_out)}, activation="identity")
    batch = Batch.for_classification([rng.integers(0, V, 30) for _ in range(4)], rng.integers(0, n_out, 4))
    est = estimate_truncation(m, batch, Adaptive(delta=delta, max_tau=20))
    assert est["beta"] == pytest.approx(rho, rel=1e-6)
    assert est["tau"] == math.ceil(math.log(delta) / math.log(rho)) - 1
