"""The measures of gradlab.analysis against direct computations.

The truncation gap is recomputed from ``gradlab.gradient(model, batch, Sliding(tau))``
and ``gradient(Full())`` (never from the per-lag prefix sums the measure uses); the
vanishing profile, heatmap and dependency signal from naive.py's per-pair delta norms;
the decay fit, reach, smallest tau and kept share on hand-built frames with known answers.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import naive
from conftest import random_problem
from gradlab import Batch, Full, Sliding, contributions, gradient, parse_scheme
from gradlab.analysis import (analyse, dependency_kept, dependency_signal, fit_decay, lag_heatmap, reach,
                              recurrence_stats, smallest_tau, truncation_gap, vanishing_profile)
from gradlab.report.frames import COLUMN_DOCS

#: Prefix sums over lags and a direct truncated backward pass add the same terms in another
#: order: they agree to round-off, far below this.
RTOL = 1e-9
#: Where an error is zero in exact arithmetic (tau >= T - 1) both sides are round-off.
ATOL = 1e-11
#: Least squares on exact log-linear data recovers slope and intercept to round-off.
FIT_TOL = 1e-12
#: sentence_gaps builds each sentence's error from sums of squares and dot products rather
#: than from the difference of two gradients, so errors near zero keep fewer digits.
SENTENCE_TOL = 1e-7

K = 6
LENGTHS = (9, 4, 7, 1, 6)


def _problem(rng, activation="sigmoid", drop_targets=0.2, scale=1.5):
    return random_problem(rng, hidden_size=4, vocab_size=5, lengths=LENGTHS, activation=activation,
                          scale=scale, drop_targets=drop_targets)


def _direct_compare(g, full):
    """{parameter: (rel_error, cosine)} of gradient g against full, straight from the matrices."""
    out = {}
    pairs = {"U": (g.U, full.U), "V": (g.V, full.V),
             "all": (np.concatenate([g.U.ravel(), g.V.ravel(), g.W.ravel()]),
                     np.concatenate([full.U.ravel(), full.V.ravel(), full.W.ravel()]))}
    for name, (a, b) in pairs.items():
        a, b = np.ravel(a), np.ravel(b)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = (np.linalg.norm(a - b) / np.linalg.norm(b),
                         float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return out


def _naive_pairs(problem, max_lag):
    nc = naive.contributions(*problem.arrays, max_lag)
    return pd.DataFrame({"sentence": nc.sentence, "t": nc.t, "lag": nc.lag, "norm": nc.delta_norm})


def _smallest_tau_direct(rel_errors: dict, threshold: float) -> float:
    """Walk down from the largest tau while the error stays below the threshold."""
    taus = sorted(rel_errors)
    if not rel_errors[taus[-1]] < threshold:
        return math.nan
    best = taus[-1]
    for tau in reversed(taus):
        if rel_errors[tau] < threshold:
            best = tau
        else:
            break
    return float(best)


# ---------------------------------------------------------------------- truncation gap
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_gap_tbptt_rows_equal_direct_truncated_gradients(rng, activation):
    p = _problem(rng, activation)
    contrib = contributions(p.model, p.batch, K)
    gap = truncation_gap(p.model, p.batch, contrib, ["chunked:3", "mikolov:1,2", "block:2,5"])
    full = gradient(p.model, p.batch, Full())
    tb = gap[gap["family"] == "tbptt"]
    assert sorted(tb["tau"].unique()) == list(range(K + 1))
    assert len(tb) == 3 * (K + 1)
    for tau in range(K + 1):
        want = _direct_compare(gradient(p.model, p.batch, Sliding(tau)), full)
        for name in ("U", "V", "all"):
            row = tb[(tb["tau"] == tau) & (tb["parameter"] == name)]
            assert len(row) == 1, (tau, name)
            assert row["scheme"].iloc[0] == f"tbptt:{tau}"
            np.testing.assert_allclose(row["rel_error"].iloc[0], want[name][0], rtol=RTOL, atol=ATOL,
                                       err_msg=f"rel_error tau={tau} {name}")
            np.testing.assert_allclose(row["cosine"].iloc[0], want[name][1], rtol=RTOL, atol=ATOL,
                                       err_msg=f"cosine tau={tau} {name}")
    # the truncated gradient really differs from the full one for small tau (the test has teeth)
    assert tb[(tb["tau"] == 0) & (tb["parameter"] == "all")]["rel_error"].iloc[0] > 1e-3
    # tau >= longest sentence - 1: nothing is truncated
    last = tb[tb["tau"] >= max(LENGTHS) - 1]
    assert last.empty or (last["rel_error"] < 1e-10).all()


def test_gap_block_rows_equal_direct_scheme_gradients(rng):
    p = _problem(rng)
    contrib = contributions(p.model, p.batch, K)
    schemes = ["chunked:3", "mikolov:1,2", "block:2,5"]
    gap = truncation_gap(p.model, p.batch, contrib, schemes, beta=0.5)
    full = gradient(p.model, p.batch, Full())
    blocks = gap[gap["family"] == "block"]
    labels = list(dict.fromkeys(blocks["scheme"]))
    assert labels == [parse_scheme(s).label for s in schemes]
    assert blocks["tau"].isna().all()
    assert blocks["estimate"].isna().all()
    for label in labels:
        want = _direct_compare(gradient(p.model, p.batch, parse_scheme(label)), full)
        for name in ("U", "V", "all"):
            row = blocks[(blocks["scheme"] == label) & (blocks["parameter"] == name)]
            assert len(row) == 1
            np.testing.assert_allclose(row["rel_error"].iloc[0], want[name][0], rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(row["cosine"].iloc[0], want[name][1], rtol=RTOL, atol=ATOL)


def test_gap_estimate_is_beta_to_the_tau_plus_one(rng):
    p = _problem(rng)
    contrib = contributions(p.model, p.batch, K)
    gap = truncation_gap(p.model, p.batch, contrib, beta=0.6)
    tb = gap[gap["family"] == "tbptt"]
    np.testing.assert_allclose(tb["estimate"], 0.6 ** (tb["tau"] + 1), rtol=1e-15)
    no_beta = truncation_gap(p.model, p.batch, contrib)
    assert no_beta["estimate"].isna().all()
    nan_beta = truncation_gap(p.model, p.batch, contrib, beta=float("nan"))
    assert nan_beta["estimate"].isna().all()


def test_gap_max_tau_limits_the_rows(rng):
    p = _problem(rng)
    contrib = contributions(p.model, p.batch, K)
    gap = truncation_gap(p.model, p.batch, contrib, max_tau=2)
    assert sorted(gap["tau"].unique()) == [0, 1, 2]
    # asking for more than the contributions hold gives what they hold
    gap = truncation_gap(p.model, p.batch, contrib, max_tau=K + 5)
    assert gap["tau"].max() == K


# ---------------------------------------------------------------------- smallest tau
def _gap_frame(errors, parameter="all", extra=True):
    rows = [(f"tbptt:{tau}", "tbptt", float(tau), parameter, e, 1.0, np.nan) for tau, e in enumerate(errors)]
    if extra:
        # other parameters and block rows must not be looked at
        rows += [(f"tbptt:{tau}", "tbptt", float(tau), "U", 0.0, 1.0, np.nan) for tau in range(len(errors))]
        rows += [("block:2,2", "block", np.nan, parameter, 0.0, 1.0, np.nan)]
    frame = pd.DataFrame(rows, columns=["scheme", "family", "tau", "parameter", "rel_error", "cosine", "estimate"])
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)  # order must not matter


@pytest.mark.parametrize("errors, threshold, expected", [
    ([0.5, 0.2, 0.05, 0.01, 0.001], 0.10, 2.0),
    ([0.5, 0.2, 0.05, 0.01, 0.001], 0.01, 4.0),       # 0.01 is not below 0.01
    ([0.5, 0.05, 0.2, 0.05, 0.005], 0.10, 3.0),       # dips under, comes back up: the later tau
    ([0.05, 0.01, 0.0], 0.10, 0.0),                   # below from the start
    ([0.5, 0.05, 0.2], 0.10, math.nan),               # the last tau is above: none within range
    ([0.5, 0.4, 0.3], 0.10, math.nan),                # never below
    ([0.5, 0.05, 0.10], 0.10, math.nan),              # last equal to the threshold is not below
])
def test_smallest_tau(errors, threshold, expected):
    got = smallest_tau(_gap_frame(errors), threshold)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected


def test_smallest_tau_reads_the_requested_parameter():
    frame = _gap_frame([0.5, 0.2, 0.05], parameter="V", extra=False)
    other = _gap_frame([0.0, 0.0, 0.0], parameter="U", extra=False)
    both = pd.concat([frame, other], ignore_index=True)
    assert smallest_tau(both, 0.1, parameter="V") == 2.0
    assert smallest_tau(both, 0.1, parameter="U") == 0.0
    assert math.isnan(smallest_tau(both, 0.1))  # no "all" rows at all


# ---------------------------------------------------------------------- vanishing profile
def test_vanishing_profile_against_naive_delta_norms(rng):
    p = _problem(rng)
    contrib = contributions(p.model, p.batch, K)
    profile = vanishing_profile(contrib)
    pairs = _naive_pairs(p, K)
    assert list(profile["lag"]) == sorted(pairs["lag"].unique())
    base = pairs.loc[pairs["lag"] == 0, "norm"].mean()
    for _, row in profile.iterrows():
        norms = pairs.loc[pairs["lag"] == row["lag"], "norm"].to_numpy()
        assert row["n"] == norms.size
        np.testing.assert_allclose(row["mean"], norms.mean(), rtol=RTOL)
        np.testing.assert_allclose(row["median"], np.median(norms), rtol=RTOL)
        np.testing.assert_allclose(row["q25"], np.percentile(norms, 25), rtol=RTOL)
        np.testing.assert_allclose(row["q75"], np.percentile(norms, 75), rtol=RTOL)
        np.testing.assert_allclose(row["rel_mean"], norms.mean() / base, rtol=RTOL)


def test_vanishing_profile_counts_losses_that_reach_each_lag(rng):
    p = _problem(rng, drop_targets=0.0)
    profile = vanishing_profile(contributions(p.model, p.batch, K))
    # every step has a loss: lag k is reached by the steps t >= k of every sentence
    want = [sum(max(T - k, 0) for T in LENGTHS) for k in range(K + 1)]
    assert list(profile["n"]) == want


def test_lag_heatmap_against_naive_means(rng):
    p = _problem(rng)
    heat = lag_heatmap(contributions(p.model, p.batch, K))
    pairs = _naive_pairs(p, K)
    assert list(heat.columns) == ["t", "lag", "mean"]
    keys = sorted(set(zip(pairs["t"], pairs["lag"])))
    assert list(zip(heat["t"], heat["lag"])) == keys
    for _, row in heat.iterrows():
        norms = pairs.loc[(pairs["t"] == row["t"]) & (pairs["lag"] == row["lag"]), "norm"]
        np.testing.assert_allclose(row["mean"], norms.mean(), rtol=RTOL)
    assert (heat["lag"] <= heat["t"]).all()
    assert heat["lag"].max() <= K


# ---------------------------------------------------------------------- decay fit and reach
def _profile(means, n=None):
    means = np.asarray(means, dtype=float)
    n = np.full(means.size, 10) if n is None else np.asarray(n)
    return pd.DataFrame({"lag": np.arange(means.size), "n": n, "mean": means, "median": means, "q25": means,
                         "q75": means, "rel_mean": means / means[0]})


@pytest.mark.parametrize("beta, amplitude", [(0.7, 3.0), (0.25, 0.01), (0.95, 1.0)])
def test_fit_decay_recovers_geometric_decay(beta, amplitude):
    fit = fit_decay(_profile(amplitude * beta ** np.arange(12)))
    assert fit["beta"] == pytest.approx(beta, rel=FIT_TOL)
    assert fit["slope"] == pytest.approx(math.log(beta), rel=FIT_TOL)
    assert fit["intercept"] == pytest.approx(math.log(amplitude), abs=FIT_TOL)
    assert fit["half_life"] == pytest.approx(math.log(2) / -math.log(beta), rel=1e-10)


def test_fit_decay_half_life_counts_steps_to_half():
    fit = fit_decay(_profile(2.0 ** (-np.arange(8) / 3.0)))  # halves every 3 steps
    assert fit["half_life"] == pytest.approx(3.0, rel=1e-10)


def test_fit_decay_leaves_out_lags_below_min_count_and_non_positive_means():
    means = 0.6 ** np.arange(10)
    means[7:] = [5.0, 0.0, 1e3]          # garbage where too few losses reach
    n = np.array([10, 9, 8, 7, 6, 5, 4, 1, 1, 1])
    fit = fit_decay(_profile(means, n), min_count=2)
    assert fit["beta"] == pytest.approx(0.6, rel=FIT_TOL)
    means = 0.6 ** np.arange(6)
    means[3] = 0.0                        # log 0 would poison the fit
    assert fit_decay(_profile(means))["beta"] == pytest.approx(0.6, rel=FIT_TOL)


def test_fit_decay_growing_signal_has_infinite_half_life():
    fit = fit_decay(_profile(1.2 ** np.arange(6)))
    assert fit["beta"] == pytest.approx(1.2, rel=FIT_TOL)
    assert fit["half_life"] == math.inf


@pytest.mark.parametrize("means, n, min_count", [
    ([1.0], None, 1),                     # one lag
    ([1.0, 0.0, 0.0], None, 1),           # one positive mean
    ([1.0, np.nan, np.inf], None, 1),     # the others not finite
    ([1.0, 0.5, 0.25], [5, 1, 1], 2),     # too few losses beyond lag 0
    ([], [], 1),                          # nothing at all
])
def test_fit_decay_nan_with_fewer_than_two_usable_lags(means, n, min_count):
    frame = pd.DataFrame({"lag": np.arange(len(means)), "n": np.full(len(means), 10) if n is None else n,
                          "mean": np.asarray(means, dtype=float)})
    fit = fit_decay(frame, min_count=min_count)
    assert set(fit) == {"slope", "intercept", "beta", "half_life"}
    assert all(math.isnan(v) for v in fit.values())


@pytest.mark.parametrize("rel_mean, floor, expected", [
    ([1.0, 0.5, 0.1, 0.0005, 0.01], 1e-3, 2),   # breaks at lag 3; coming back above does not count
    ([1.0, 0.5, 0.1, 0.05], 1e-3, 3),            # never below: the largest lag
    ([1.0, 0.5, 0.1, 0.05], 0.1, 2),             # "at or above"
    ([1.0, 1e-4], 1e-3, 0),
    ([np.nan, 0.5], 1e-3, -1),                   # lag 0 itself fails
])
def test_reach(rel_mean, floor, expected):
    frame = pd.DataFrame({"lag": np.arange(len(rel_mean)), "rel_mean": rel_mean})
    assert reach(frame, floor) == expected
    # order of the rows does not matter
    assert reach(frame.iloc[::-1].reset_index(drop=True), floor) == expected


# ---------------------------------------------------------------------- recurrence statistics
@pytest.mark.parametrize("activation, max_fprime", [("sigmoid", 0.25), ("tanh", 1.0), ("relu", 1.0)])
def test_recurrence_stats_against_numpy(rng, activation, max_fprime):
    p = _problem(rng, activation)
    stats = recurrence_stats(p.model, p.batch)
    U = p.model.U
    radius = max(abs(np.linalg.eigvals(U)))
    sigma = np.linalg.norm(U, 2)
    fwd = naive.forward(*p.arrays)
    fprime = naive.activate_prime(activation, fwd.net)
    assert fprime.shape == (sum(LENGTHS), 4)  # one row per token, no initial-state row
    assert stats["spectral_radius"] == pytest.approx(radius, rel=1e-10)
    assert stats["sigma_max"] == pytest.approx(sigma, rel=1e-10)
    assert stats["mean_fprime"] == pytest.approx(fprime.mean(), rel=1e-10)
    assert stats["growth_bound"] == pytest.approx(sigma * max_fprime, rel=1e-10)


def test_sigmoid_growth_bound_is_a_quarter_of_sigma_max(rng):
    p = _problem(rng, "sigmoid")
    stats = recurrence_stats(p.model, p.batch)
    assert stats["growth_bound"] == pytest.approx(stats["sigma_max"] / 4, rel=1e-15)
    assert 0 < stats["mean_fprime"] <= 0.25


# ---------------------------------------------------------------------- dependencies
def _deps(rows):
    return pd.DataFrame(rows, columns=["sentence", "source", "dependent", "lag"])


def test_dependency_signal_picks_the_pair_norm(rng):
    p = _problem(rng, drop_targets=0.0)
    # a few dependent steps without a loss
    p.ds[0][5] = naive.NO_LOSS
    p.ds[2][6] = naive.NO_LOSS
    p.batch = Batch.for_language_model(p.xs, p.ds)
    # the reference holds every lag, so lags beyond K are checked too
    pairs = _naive_pairs(p, max(LENGTHS)).set_index(["sentence", "t", "lag"])["norm"]
    deps = _deps([
        (0, 1, 8, 7),    # lag 7 > K: still measured, at its own lag
        (0, 0, 8, 8),
        (0, 2, 6, 4),
        (0, 6, 6, 0),
        (0, 1, 5, 4),    # dependent step 5 has no loss
        (2, 1, 6, 5),    # dependent step 6 has no loss
        (2, 0, 5, 5),
        (2, 3, 4, 1),
        (4, 0, 3, 3),
        (1, 0, 3, 3),
        (0, 2, 6, 4),    # a dependency listed twice
    ])
    out = dependency_signal(p.model, p.batch, deps)
    assert list(out.columns) == ["sentence", "source", "dependent", "lag", "signal", "signal_rel"]
    assert len(out) == len(deps)
    pd.testing.assert_frame_equal(out[["sentence", "source", "dependent", "lag"]], deps, check_dtype=False)
    for i, d in deps.iterrows():
        key = (d["sentence"], d["dependent"], d["lag"])
        if key in pairs.index:
            want = pairs[key]
            own = pairs[(d["sentence"], d["dependent"], 0)]
            assert out["signal"].iloc[i] == pytest.approx(want, rel=RTOL), key
            assert out["signal_rel"].iloc[i] == pytest.approx(want / own, rel=RTOL), key
        else:
            assert np.isnan(out["signal"].iloc[i]), key
            assert np.isnan(out["signal_rel"].iloc[i]), key
    # the cases the test is meant to hit
    no_loss = out[(out["sentence"] == 0) & (out["dependent"] == 5)]
    assert no_loss["signal"].isna().all()
    assert np.isfinite(out["signal"].iloc[0]) and out["signal"].iloc[0] > 0  # beyond K
    assert out["signal_rel"].iloc[3] == pytest.approx(1.0)    # lag 0: its own signal


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_dependency_signal_equals_the_contributions_values(rng, activation):
    """The targeted backward walk gives what all contributions up to the longest lag give."""
    p = random_problem(rng, hidden_size=5, vocab_size=6, lengths=(30, 3, 17, 1, 25, 12), activation=activation,
                       scale=1.2, drop_targets=0.1)
    rows = []
    for i, length in enumerate((30, 3, 17, 1, 25, 12)):
        for dependent in range(length):
            for source in rng.choice(dependent + 1, size=min(3, dependent + 1), replace=False):
                rows.append((i, int(source), dependent, dependent - int(source)))
    deps = _deps(rows)
    longest = int(deps["lag"].max())
    table = contributions(p.model, p.batch, longest).to_frame()
    table = table.set_index(["sentence", "t", "lag"])["delta_norm"]
    out = dependency_signal(p.model, p.batch, deps)
    for i, d in deps.iterrows():
        key = (d["sentence"], d["dependent"], d["lag"])
        if key in table.index:
            assert out["signal"].iloc[i] == pytest.approx(table[key], rel=RTOL, abs=1e-300), key
            own = table[(d["sentence"], d["dependent"], 0)]
            with np.errstate(invalid="ignore", divide="ignore"):   # relu: a zero own signal gives NaN on both sides
                np.testing.assert_allclose(out["signal_rel"].iloc[i], table[key] / own, rtol=RTOL, err_msg=str(key))
        else:
            assert np.isnan(out["signal"].iloc[i]), key
    assert out["signal"].notna().sum() > len(deps) // 2


def test_dependency_signal_rejects_bad_coordinates(rng):
    p = _problem(rng)
    with pytest.raises(ValueError, match="source <= dependent"):
        dependency_signal(p.model, p.batch, _deps([(0, 5, 3, 2)]))
    with pytest.raises(ValueError, match="dependent < sentence length"):
        dependency_signal(p.model, p.batch, _deps([(1, 0, 4, 4)]))
    with pytest.raises(IndexError, match="sentence"):
        dependency_signal(p.model, p.batch, _deps([(9, 0, 1, 1)]))


def test_dependency_signal_matches_a_hand_walked_delta(rng):
    p = _problem(rng, drop_targets=0.0)
    U, V, W, act, xs, ds = p.arrays
    sentence, dependent, lag = 2, 6, 4
    net, s, y, _ = naive.forward_sentence(U, V, W, act, xs[sentence])
    _, steps = naive._walk_back(U, W, act, xs[sentence], net, s, y, dependent, ds[sentence][dependent], lag)
    want = np.linalg.norm(steps[lag][1])
    out = dependency_signal(p.model, p.batch, _deps([(sentence, dependent - lag, dependent, lag)]))
    assert out["signal"].iloc[0] == pytest.approx(want, rel=RTOL)
    assert out["signal_rel"].iloc[0] == pytest.approx(want / np.linalg.norm(steps[0][1]), rel=RTOL)


def test_dependency_kept_shares():
    signal = pd.DataFrame({"lag": [1, 3, 3, 5, 2], "signal": [1.0, 2.0, 3.0, 4.0, np.nan]})
    kept = dependency_kept(signal, 6)
    assert list(kept.columns) == ["tau", "kept_share"]
    assert list(kept["tau"]) == list(range(7))
    np.testing.assert_allclose(kept["kept_share"], [0.0, 0.1, 0.1, 0.6, 0.6, 1.0, 1.0], rtol=1e-15)


def test_dependency_kept_without_signal_is_nan():
    empty = pd.DataFrame({"lag": [1, 2], "signal": [np.nan, np.nan]})
    kept = dependency_kept(empty, 3)
    assert len(kept) == 4 and kept["kept_share"].isna().all()
    zero = pd.DataFrame({"lag": [1], "signal": [0.0]})
    assert dependency_kept(zero, 2)["kept_share"].isna().all()


# ---------------------------------------------------------------------- analyse
def _documented(frame_name):
    return set(COLUMN_DOCS[frame_name]) - {"dataset", "state"}


def test_analyse_returns_every_frame_with_documented_columns(rng):
    p = _problem(rng)
    deps = _deps([(0, 1, 8, 7), (2, 2, 6, 4), (4, 3, 5, 2)])
    out = analyse(p.model, p.batch, max_lag=3, deps=deps, block_schemes=["chunked:2"])
    assert set(out) == set(COLUMN_DOCS)
    for name, frame in out.items():
        assert set(frame.columns) == _documented(name), name
        assert len(frame) > 0, name
    assert len(out["decay"]) == 1 and len(out["summary"]) == 1


def test_analyse_optional_frames(rng):
    p = _problem(rng)
    out = analyse(p.model, p.batch, max_lag=3, per_sentence=False)
    assert set(out) == {"profile", "heatmap", "decay", "gap", "summary"}


def test_analyse_frames_agree_with_the_measures_and_direct_gradients(rng):
    p = _problem(rng, drop_targets=0.0)
    max_lag = 3
    # one dependency beyond K: measured anyway, and it widens the contributions
    deps = _deps([(0, 1, 8, 7), (2, 2, 6, 4), (4, 3, 5, 2)])
    out = analyse(p.model, p.batch, max_lag=max_lag, deps=deps, block_schemes=["chunked:2"], floor=1e-2)
    gap, summary, decay = out["gap"], out["summary"].iloc[0], out["decay"].iloc[0]

    # lags and taus stop at K even though the contributions went further for the dependency
    assert out["profile"]["lag"].max() == max_lag
    assert out["heatmap"]["lag"].max() == max_lag
    assert sorted(gap.loc[gap["family"] == "tbptt", "tau"].unique()) == list(range(max_lag + 1))
    assert sorted(out["dependency_kept"]["tau"]) == list(range(max_lag + 1))

    # gap against direct truncated gradients
    full = gradient(p.model, p.batch, Full())
    for tau in range(max_lag + 1):
        want = _direct_compare(gradient(p.model, p.batch, Sliding(tau)), full)
        rows = gap[gap["scheme"] == f"tbptt:{tau}"].set_index("parameter")
        for name in ("U", "V", "all"):
            np.testing.assert_allclose(rows.loc[name, "rel_error"], want[name][0], rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(rows.loc[name, "cosine"], want[name][1], rtol=RTOL, atol=ATOL)
    want = _direct_compare(gradient(p.model, p.batch, parse_scheme("block:2,2")), full)
    rows = gap[gap["scheme"] == "block:2,2"].set_index("parameter")
    np.testing.assert_allclose(rows.loc["all", "rel_error"], want["all"][0], rtol=RTOL, atol=ATOL)

    # decay frame: the fit of the profile, the recurrence statistics, reach at the floor
    fit = fit_decay(out["profile"])
    stats = recurrence_stats(p.model, p.batch)
    for key, value in {**fit, **stats}.items():
        assert decay[key] == pytest.approx(value, rel=1e-12), key
    assert decay["floor"] == 1e-2
    assert decay["reach"] == reach(out["profile"], 1e-2)
    tb = gap[gap["family"] == "tbptt"]
    np.testing.assert_allclose(tb["estimate"], decay["beta"] ** (tb["tau"] + 1), rtol=1e-12)

    # summary: tau_10 / tau_1 from the gap frame, the rest from decay and the batch
    errors = dict(zip(tb.loc[tb["parameter"] == "all", "tau"], tb.loc[tb["parameter"] == "all", "rel_error"]))
    for column, threshold in (("tau_10", 0.10), ("tau_1", 0.01)):
        want_tau = _smallest_tau_direct(errors, threshold)
        if math.isnan(want_tau):
            assert math.isnan(summary[column])
        else:
            assert summary[column] == want_tau
    for key in ("beta", "half_life", "spectral_radius", "sigma_max", "mean_fprime", "reach"):
        assert summary[key] == decay[key], key
    fwd = naive.forward(*p.arrays)
    assert summary["n_sentences"] == len(LENGTHS)
    assert summary["n_losses"] == fwd.losses.size
    assert summary["mean_loss"] == pytest.approx(fwd.loss / fwd.losses.size, rel=1e-12)

    # dependencies: the one beyond K is measured too
    sig = out["dependencies"]
    pairs = _naive_pairs(p, 7).set_index(["sentence", "t", "lag"])["norm"]
    assert sig["signal"].notna().all()
    for d in sig.itertuples():
        assert d.signal == pytest.approx(pairs[(d.sentence, d.dependent, d.lag)], rel=RTOL)
    total = sig["signal"].sum()
    kept = out["dependency_kept"].set_index("tau")["kept_share"]
    for tau in range(max_lag + 1):
        assert kept[tau] == pytest.approx(sig.loc[sig["lag"] <= tau, "signal"].sum() / total, rel=1e-12)


def test_analyse_summary_taus_are_found_when_in_range(rng):
    # a small-weight model whose error falls below 10% and 1% within K (so the values are not NaN)
    p = _problem(rng, scale=0.5)
    out = analyse(p.model, p.batch, max_lag=K)
    gap = out["gap"]
    rows = gap[(gap["family"] == "tbptt") & (gap["parameter"] == "all")]
    errors = dict(zip(rows["tau"], rows["rel_error"]))
    summary = out["summary"].iloc[0]
    assert summary["tau_10"] == _smallest_tau_direct(errors, 0.10)
    assert summary["tau_1"] == _smallest_tau_direct(errors, 0.01)
    assert np.isfinite(summary["tau_10"]) and np.isfinite(summary["tau_1"])
    assert summary["tau_10"] <= summary["tau_1"]


def test_analyse_gap_sentences_against_single_sentence_gradients(rng):
    p = _problem(rng)
    sg = analyse(p.model, p.batch, max_lag=K)["gap_sentences"]
    assert len(sg) == len(LENGTHS) * (K + 1) * 3
    for i in range(len(LENGTHS)):
        one = p.batch.select([i])
        if one.n_losses == 0:
            continue
        full = gradient(p.model, one, Full())
        for tau in range(K + 1):
            want = _direct_compare(gradient(p.model, one, Sliding(tau)), full)
            rows = sg[(sg["sentence"] == i) & (sg["tau"] == tau)].set_index("parameter")
            for name in ("U", "V", "all"):
                for j, column in enumerate(("rel_error", "cosine")):
                    np.testing.assert_allclose(rows.loc[name, column], want[name][j], rtol=SENTENCE_TOL,
                                               atol=SENTENCE_TOL, equal_nan=True,
                                               err_msg=f"sentence {i} tau {tau} {name} {column}")


def test_analyse_asks_only_for_what_the_report_uses(rng, monkeypatch):
    """No per-pair V norms (G_V up to max_lag: the gap's taus); the gap is that of everything."""
    import gradlab.analysis.study as study_module
    p = random_problem(rng, lengths=(9, 6, 8), vocab_size=5, hidden_size=3)
    deps = pd.DataFrame({"sentence": [0, 2], "source": [0, 1], "dependent": [8, 7], "lag": [8, 6]})
    calls = []
    real = study_module.contributions

    def spy(*args, **kw):
        calls.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(study_module, "contributions", spy)
    out = analyse(p.model, p.batch, max_lag=3, deps=deps, per_sentence=False)
    assert calls == [{"V_norm": False}]
    everything = contributions(p.model, p.batch, 8)
    expect = truncation_gap(p.model, p.batch, everything, max_tau=3)
    cols = ["scheme", "family", "tau", "parameter", "rel_error", "cosine"]
    pd.testing.assert_frame_equal(out["gap"][cols], expect[cols])
