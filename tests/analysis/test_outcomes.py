"""Outcome measures of training studies against direct computations."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gradlab.analysis.outcomes import accuracy_at_longest, longest_learned, seed_interval, tau_of_scheme


def frame(rows):
    return pd.DataFrame(rows, columns=["part", "scheme", "seed", "distance", "accuracy", "n"])


BD = frame([
    ("a", "full", 0, 1, 1.0, 10), ("a", "full", 0, 5, 0.95, 10), ("a", "full", 0, 9, 0.92, 10),
    ("a", "full", 1, 1, 1.0, 10), ("a", "full", 1, 5, 0.97, 10), ("a", "full", 1, 9, 0.50, 10),
    ("a", "tbptt:2", 0, 1, 0.95, 10), ("a", "tbptt:2", 0, 5, 0.6, 10), ("a", "tbptt:2", 0, 9, 0.91, 10),
    ("a", "tbptt:2", 1, 1, 0.2, 10), ("a", "tbptt:2", 1, 5, 0.3, 10), ("a", "tbptt:2", 1, 9, 0.4, 10),
    ("b", "full", 0, 3, 0.7, 10), ("b", "full", 1, 3, 0.9, 10), ("b", "full", 2, 3, 0.8, 10),
])


def test_seed_interval_is_the_t_interval():
    x = [0.2, 0.5, 0.9, 0.4]
    mean, lo, hi, n = seed_interval(x)
    want = stats.t.interval(0.95, 3, loc=np.mean(x), scale=stats.sem(x))
    assert n == 4 and mean == pytest.approx(np.mean(x))
    assert (lo, hi) == pytest.approx(want)
    assert np.isnan(seed_interval([0.3])[1]) and seed_interval([0.3])[0] == 0.3
    assert seed_interval([np.nan, 1.0])[3] == 1 and seed_interval([])[3] == 0


def test_accuracy_at_longest_takes_each_parts_largest_distance():
    acc = accuracy_at_longest(BD).set_index(["part", "scheme"])
    assert acc.loc[("a", "full"), "distance"] == 9 and acc.loc[("b", "full"), "distance"] == 3
    assert acc.loc[("a", "full"), "mean"] == pytest.approx(0.71)
    assert acc.loc[("a", "tbptt:2"), "min"] == 0.4 and acc.loc[("a", "tbptt:2"), "max"] == 0.91
    assert acc.loc[("b", "full"), "n_seeds"] == 3
    assert acc.loc[("b", "full"), "ci_low"] == pytest.approx(0.8 - stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3))


def test_longest_learned_is_the_largest_distance_over_the_threshold():
    ll = longest_learned(BD).set_index(["part", "scheme", "seed"])["longest_learned"]
    assert ll[("a", "full", 0)] == 9 and ll[("a", "full", 1)] == 5
    assert ll[("a", "tbptt:2", 0)] == 9       # not necessarily every distance below it
    assert ll[("a", "tbptt:2", 1)] == 0 and ll[("b", "full", 1)] == 3 and ll[("b", "full", 0)] == 0
    assert longest_learned(BD, threshold=0.96).set_index(["part", "scheme", "seed"])["longest_learned"][
        ("a", "full", 1)] == 5


def test_tau_of_scheme():
    assert tau_of_scheme("tbptt:3") == 3.0
    assert np.isnan(tau_of_scheme("full")) and np.isnan(tau_of_scheme("chunked:5"))


def test_accuracy_by_distance_has_one_interval_per_distance():
    from gradlab.analysis.outcomes import accuracy_by_distance
    acc = accuracy_by_distance(BD).set_index(["part", "scheme", "distance"])
    assert acc.loc[("a", "full", 9), "mean"] == pytest.approx(0.71)
    assert acc.loc[("a", "full", 1), "n_seeds"] == 2 and acc.loc[("a", "full", 1), "ci_low"] == pytest.approx(1.0)
    assert len(acc) == 7
    loss = accuracy_by_distance(BD.assign(mean_loss=BD["accuracy"] * 2), "mean_loss")
    assert loss["mean"].max() == pytest.approx(2.0)
