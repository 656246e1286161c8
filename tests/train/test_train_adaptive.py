"""Adaptive truncation (Aicher, Foti & Fox 2019): the bound, the choice of tau, and training with it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gradlab import RNN, Adaptive, Batch, Sliding, gradient, parse_scheme
from gradlab.train import Trainer
from gradlab.train.adaptive import bias_bound, choose_tau, estimate_truncation

#: the fitted slope of an exactly geometric profile is exact up to rounding in log and polyfit
BETA_RTOL = 1e-9


def naive_bound(phi, beta, tau, start, n_terms=5000):
    """Tail over total of phi~(k) = phi(k) (k < start), phi(start) beta^(k - start) (k >= start), summed term by term."""
    series = [phi[k] if k < start else phi[start] * beta ** (k - start) for k in range(n_terms)]
    return sum(series[tau + 1:]) / sum(series)


@pytest.mark.parametrize("start", [0, 1, 3, 6])
@pytest.mark.parametrize("beta", [0.3, 0.8, 0.95])
def test_bias_bound_equals_the_summed_tail(rng, beta, start):
    phi = rng.uniform(0.5, 2.0, size=8)
    taus = np.arange(0, 12)
    got = bias_bound(phi, beta, taus, start)
    want = [naive_bound(phi, beta, int(t), start) for t in taus]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert np.all(np.diff(got) <= 0)


def test_bias_bound_from_lag_zero_is_beta_to_the_tau_plus_one():
    taus = np.arange(10)
    np.testing.assert_allclose(bias_bound([2.0, 9.9, 9.9], 0.7, taus, 0), 0.7 ** (taus + 1), rtol=1e-12)


@pytest.mark.parametrize("beta", [1.0, 1.3, float("nan"), float("inf"), 0.0])
def test_no_decay_means_no_bound(beta):
    assert np.isinf(bias_bound([1.0, 1.0], beta, np.arange(3))).all()


def test_choose_tau():
    bound = np.array([0.5, 0.2, 0.09, 0.05])      # taus 2..5
    assert choose_tau(bound, 0.1, 2, 5) == 4
    assert choose_tau(bound, 0.6, 2, 5) == 2
    assert choose_tau(bound, 0.01, 2, 5) == 5      # nothing is under delta: the largest tau
    assert choose_tau(np.full(4, np.inf), 0.5, 2, 5) == 5


# ---------------------------------------------------------------------- a model with a known decay
def geometric_problem(rho: float, H=4, n=6, T=25, n_out=3, seed=0):
    """relu with U = rho I and positive V: every net_in > 0, so delta(t, t-k) = rho^k delta(t, t) exactly.

    One loss per sentence, at its last step, and all sentences longer than the lags measured: every
    loss reaches every lag, so the mean signal norm is exactly geometric with rate rho.
    """
    r = np.random.default_rng(seed)
    V = r.uniform(0.1, 1.0, size=(H, 5))
    model = RNN(rho * np.eye(H), V, r.standard_normal((n_out, H)), "relu")
    inputs = [r.integers(0, 5, size=T) for _ in range(n)]
    return model, Batch.for_classification(inputs, r.integers(0, n_out, size=n))


@pytest.mark.parametrize("rho, delta", [(0.8, 0.1), (0.5, 0.01), (0.9, 0.3), (0.7, 0.05)])
def test_chosen_tau_on_a_geometric_profile_is_the_bounds(rho, delta):
    model, batch = geometric_problem(rho)
    est = estimate_truncation(model, batch, Adaptive(delta=delta, max_tau=20))
    assert est["beta"] == pytest.approx(rho, rel=BETA_RTOL)
    expected = math.ceil(math.log(delta) / math.log(rho)) - 1     # smallest tau with rho^(tau+1) <= delta
    assert rho ** (expected + 1) <= delta < rho ** expected       # not on a rounding edge
    assert est["tau"] == expected
    assert est["bias_bound"] == pytest.approx(rho ** (expected + 1), rel=1e-8)


def test_tau_is_clipped_to_its_range():
    model, batch = geometric_problem(0.8)                          # the bound asks for tau = 10
    assert estimate_truncation(model, batch, Adaptive(delta=0.1, max_tau=6))["tau"] == 6
    assert estimate_truncation(model, batch, Adaptive(delta=0.1, min_tau=12, max_tau=20))["tau"] == 12


def test_training_equals_fixed_tbptt_while_tau_does_not_change():
    model, batch = geometric_problem(0.8, n=12)
    opts = dict(learning_rate=0.05, epochs=2, batch_size=3, seed=4, progress=False)
    adaptive = Trainer(scheme="adaptive:delta=0.1,every=1000", **opts).fit(model, batch)
    assert adaptive.truncation["tau"].tolist() == [10]            # chosen once, before the first update
    fixed = Trainer(scheme="tbptt:10", **opts).fit(model, batch)
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(adaptive.model, name), getattr(fixed.model, name))
    np.testing.assert_array_equal(adaptive.history["train_loss"], fixed.history["train_loss"])
    assert adaptive.history["tau"].tolist() == [10, 10]


def test_reestimates_every_n_updates_and_equals_fixed_tbptt_when_the_choice_stays():
    model, batch = geometric_problem(1.1, n=12)                    # growth, no decay: always max_tau
    opts = dict(learning_rate=0.01, epochs=2, batch_size=3, seed=1, progress=False)
    adaptive = Trainer(scheme=Adaptive(delta=0.1, every=3, max_tau=7, sentences=4), **opts).fit(model, batch)
    log = adaptive.truncation
    assert log["update"].tolist() == [0, 3, 6]                    # 8 updates: estimates before 1, 4, 7
    assert log["epoch"].tolist() == [0, 0, 1]
    assert set(log["tau"]) == {7}
    fixed = Trainer(scheme=Sliding(7), **opts).fit(model, batch)
    np.testing.assert_array_equal(adaptive.model.U, fixed.model.U)


def test_a_changing_tau_is_used_from_its_update_on():
    model, batch = geometric_problem(0.8, n=12)
    # one update per epoch on all sentences in data order: each estimate sees the same sentences
    opts = dict(learning_rate=0.5, batch_size=12, shuffle=False, progress=False)
    scheme = Adaptive(delta=0.1, every=2, sentences=12)
    res = Trainer(scheme=scheme, epochs=8, **opts).fit(model, batch)
    log = res.truncation
    assert log["update"].tolist() == [0, 2, 4, 6]
    assert log["tau"].nunique() > 1, "the profile should change under training at this rate"
    # replay: each stretch as fixed TBPTT with the tau the estimate gives at its start
    replay = model.copy()
    for i in range(len(log)):
        est = estimate_truncation(replay, batch, scheme)
        assert est["tau"] == log["tau"].iloc[i]
        assert est["beta"] == pytest.approx(log["beta"].iloc[i], rel=1e-12)
        replay = Trainer(scheme=Sliding(est["tau"]), epochs=2, **opts).fit(replay, batch).model
    np.testing.assert_array_equal(replay.U, res.model.U)
    np.testing.assert_array_equal(replay.W, res.model.W)


def test_resume_equals_an_uninterrupted_run(tmp_path):
    model, batch = geometric_problem(0.8, n=12)
    opts = dict(scheme="adaptive:delta=0.1,every=2", learning_rate=0.3, epochs=2, batch_size=3, seed=2,
                progress=False)
    whole = Trainer(**opts).fit(model, batch)
    Trainer(checkpoint=tmp_path, max_updates=3, **opts).fit(model, batch)
    resumed = Trainer(checkpoint=tmp_path, resume=True, **opts).fit(model, batch)
    np.testing.assert_array_equal(resumed.model.U, whole.model.U)
    assert resumed.truncation.equals(whole.truncation)


# ---------------------------------------------------------------------- the scheme's text form and errors
def test_text_form_round_trips():
    s = parse_scheme("adaptive:delta=0.05,every=20,max_tau=12,start=2")
    assert s == Adaptive(delta=0.05, every=20, max_tau=12, start=2)
    assert parse_scheme(s.label) == s
    assert parse_scheme("adaptive:delta=0.1").label == "adaptive:delta=0.1"


@pytest.mark.parametrize("text, error, message", [
    ("adaptive", ValueError, "adaptive needs delta"),
    ("adaptive:every=5", ValueError, "adaptive needs delta"),
    ("adaptive:delta=0", ValueError, r"delta .* must be a number in \(0, 1\); received 0.0"),
    ("adaptive:delta=1.5", ValueError, r"must be a number in \(0, 1\)"),
    ("adaptive:delta=nan", ValueError, r"must be a number in \(0, 1\)"),
    ("adaptive:delta=abc", ValueError, "delta must be a number; received 'abc'"),
    ("adaptive:delta=0.1,every=0", ValueError, "every must be >= 1"),
    ("adaptive:delta=0.1,every=2.5", ValueError, "every must be an integer; received '2.5'"),
    ("adaptive:delta=0.1,max_tau=3,min_tau=4", ValueError, r"min_tau \(4\) must be <= max_tau \(3\)"),
    ("adaptive:delta=0.1,max_tau=3,start=5", ValueError, r"start \(5\) must be <= max_tau \(3\)"),
    ("adaptive:delta=0.1,tau=3", ValueError, "expected key=value with keys delta, every"),
    ("adaptive:delta=0.1,delta=0.2", ValueError, "gives 'delta' twice"),
    ("adaptive:delta=0.1,sentences=0", ValueError, "sentences must be >= 1"),
])
def test_bad_parameters(text, error, message):
    with pytest.raises(error, match=message):
        parse_scheme(text)


def test_trainer_names_the_bad_scheme_and_the_engine_refuses_it():
    with pytest.raises(ValueError, match=r"scheme='adaptive:delta=2' is not a valid scheme"):
        Trainer(scheme="adaptive:delta=2")
    model, batch = geometric_problem(0.8)
    with pytest.raises(TypeError, match="chooses tau during training"):
        gradient(model, batch, "adaptive:delta=0.1")
    with pytest.raises(TypeError, match="scheme must be an Adaptive scheme"):
        estimate_truncation(model, batch, Sliding(3))


@pytest.mark.parametrize("cell", ["gru", "lstm", "linear"])
def test_estimate_truncation_of_a_cell_reads_its_h_norm_profile(cell):
    """A GRU, LSTM or linear cell: the profile of ||dJ(t)/dh(t-k)||, then the same fit, bound and choice."""
    from gradlab import cell_engine as ce
    from gradlab.analysis import fit_decay, vanishing_profile
    from gradlab.cellmodel import CellModel
    rng = np.random.default_rng(5)
    model = CellModel.init(cell, 6, 4, seed=1)
    lengths = (12, 9, 15)
    batch = Batch.for_language_model([rng.integers(0, 6, T) for T in lengths], [rng.integers(0, 6, T) for T in lengths])
    scheme = Adaptive(delta=0.05, min_tau=1, max_tau=6, start=1)
    est = estimate_truncation(model, batch, scheme)
    profile = vanishing_profile(ce.contributions(model, batch, scheme.max_tau + 1))
    assert est["profile"].equals(profile)
    beta = fit_decay(profile[profile["lag"] >= scheme.start])["beta"]
    phi = profile["mean"].to_numpy()
    taus = np.arange(scheme.min_tau, scheme.max_tau + 1)
    assert est["beta"] == pytest.approx(beta)
    assert est["tau"] == choose_tau(bias_bound(phi, beta, taus, scheme.start), scheme.delta, scheme.min_tau,
                                    scheme.max_tau)
    assert est["n_losses"] == batch.n_losses
