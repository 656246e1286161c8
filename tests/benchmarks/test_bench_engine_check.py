"""bench_engine's cross-check compares entry by entry, per lag: a peer that drops lags cannot pass it.

The signals of the benchmark's W3 workload decay by ~1e-12 over 40 lags, so a check
against the global maximum (what the script did before) passes an implementation that
zeroes every lag above 35; the per-lag, per-entry check must not.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_engine  # noqa: E402

from gradlab import Batch, RNN, contributions  # noqa: E402

K = 39


@pytest.fixture(scope="module")
def w3():
    """Contributions of a small W3-like workload (|V| = 300, H = 50, lengths 30..40, K = 39) and its pair lags."""
    d = bench_engine.make_data(12, 300, 50, (30, 40), seed=1050)
    c = contributions(RNN(d.U, d.V, d.W), Batch.for_language_model(d.xs, d.ds), max_lag=K)
    arrays = {"norms": c.delta_norm.copy(), "G_U": c.G_U.copy(), "G_V": np.ascontiguousarray(c.G_V)}
    return arrays, {"norms": bench_engine.pair_lags(d.xs, K)}


def _check(ref, other, lags):
    worst, where, detail = bench_engine.compare({"ref": ref, "other": other}, "ref", lags)["other"]
    return worst, where


def test_pair_lags_follow_gradlab_order(w3):
    arrays, lags = w3
    assert lags["norms"].shape == arrays["norms"].shape
    np.testing.assert_array_equal(bench_engine.pair_lags([np.zeros(3), np.zeros(1)], 1), [0, 0, 1, 0, 1, 0])


def test_identical_and_rounded_results_agree(w3):
    arrays, lags = w3
    assert _check(arrays, arrays, lags)[0] == 0.0
    rng = np.random.default_rng(0)
    noisy = {k: v * (1 + 1e-14 * rng.standard_normal(v.shape)) for k, v in arrays.items()}
    assert _check(arrays, noisy, lags)[0] <= bench_engine.AGREE_RTOL


@pytest.mark.parametrize("key", ["G_U", "G_V", "norms"])
def test_zeroed_late_lags_are_a_mismatch(w3, key):
    arrays, lags = w3
    G = arrays["G_U"]
    # the premise: lag 36 and beyond are tiny against the global maximum
    assert np.abs(G[36:]).max() < 1e-10 * np.abs(G).max()
    bad = dict(arrays)
    if key == "norms":
        bad[key] = np.where(lags["norms"] > 35, 0.0, arrays[key])
    else:
        bad[key] = arrays[key].copy()
        bad[key][36:] = 0.0
    worst, where = _check(arrays, bad, lags)
    assert worst >= 1.0 - 1e-12 and where.startswith(key) and int(where.split()[-1]) > 35


def test_one_wrong_entry_of_a_small_lag_is_a_mismatch(w3):
    arrays, lags = w3
    bad = {k: v.copy() for k, v in arrays.items()}
    i = np.unravel_index(np.argmax(np.abs(arrays["G_U"][38])), arrays["G_U"][38].shape)
    bad["G_U"][38][i] *= 1 + 1e-6
    assert _check(arrays, bad, lags)[0] == pytest.approx(1e-6, rel=1e-3)


def test_entries_below_the_floor_are_compared_in_absolute_terms():
    ref = {"U": np.array([[1.0, 1e-9], [0.5, 0.0]])}
    floor = bench_engine.AGREE_FLOOR * 1.0
    assert 1e-9 < floor < 0.5
    # 1e-9 and 0 are below the floor: an error of 1e-15 there counts as 1e-15 / floor
    assert _check(ref, {"U": ref["U"] + [[0.0, 1e-15], [0.0, 1e-15]]}, None)[0] == pytest.approx(1e-15 / floor)
    assert _check(ref, {"U": ref["U"] + [[0.0, 0.0], [5e-6, 0.0]]}, None)[0] == pytest.approx(1e-5)
    assert _check(ref, {"U": np.array([[1.0, np.nan], [0.5, 0.0]])}, None)[0] == np.inf
    assert _check(ref, {"U": np.zeros((2, 3))}, None)[0] == np.inf
