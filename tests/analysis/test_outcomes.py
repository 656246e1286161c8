"""Outcome measures of training studies against direct computations."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gradlab.analysis.outcomes import accuracy_at_longest, longest_learned, pool_sparse, seed_interval, tau_of_scheme


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


# ---------------------------------------------------------------------- pooling the sparse longest distances
def _real_like():
    """Two seeds on dev data with many short and few long items (as the Linzen data: 1 item at 26 words)."""
    counts = {1: 500, 2: 40, 8: 12, 15: 5, 20: 2, 26: 1}
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.1)):
        for d, n in counts.items():
            rows.append(("lm", "full", seed, d, min(1.0, 0.5 + d / 100 + shift), n))
    return frame(rows), counts


def test_pool_sparse_merges_sparse_long_distances_into_one_item_weighted_row():
    bd, counts = _real_like()
    pooled = pool_sparse(bd, 20)
    # the tail from 8 words holds 12 + 5 + 2 + 1 = 20 items; from 15 only 8
    for seed, shift in ((0, 0.0), (1, 0.1)):
        run = pooled[pooled["seed"] == seed].set_index("distance")
        assert list(run.index) == [1, 2, 8]
        assert list(run["pooled"]) == [False, False, True]
        assert run.loc[8, "n"] == 20
        tail = [d for d in counts if d >= 8]
        want = sum(counts[d] * min(1.0, 0.5 + d / 100 + shift) for d in tail) / 20
        assert run.loc[8, "accuracy"] == pytest.approx(want)
        assert run.loc[1, "accuracy"] == pytest.approx(0.51 + shift)
    assert accuracy_at_longest(pooled)["distance"].tolist() == [8]


def test_pool_sparse_leaves_balanced_and_tiny_dev_sets_alone():
    assert not pool_sparse(BD, 20)["pooled"].any()          # no distance holds 20 items: nothing to pool for
    pd.testing.assert_frame_equal(pool_sparse(BD, 20).drop(columns="pooled"), BD)
    balanced = BD.assign(n=50)
    pd.testing.assert_frame_equal(pool_sparse(balanced, 20).drop(columns="pooled"), balanced)
    assert not pool_sparse(BD.drop(columns="n"))["pooled"].any()


def test_pool_sparse_bins_every_sparse_run_of_distances_from_the_longest_down():
    counts = {1: 100, 3: 30, 4: 8, 5: 9, 6: 4, 7: 25, 9: 6, 10: 3}
    bd = frame([("lm", "full", 0, d, d / 10, n) for d, n in counts.items()])
    pooled = pool_sparse(bd, 20).set_index("distance")
    # from 10 down: 10 + 9 (9 items) + 7 (34) -> bin 7; 6 + 5 + 4 (21) -> bin 4; 3 and 1 alone
    assert list(pooled.index) == [1, 3, 4, 7]
    assert list(pooled["pooled"]) == [False, False, True, True]
    assert pooled.loc[4, "n"] == 21 and pooled.loc[7, "n"] == 34
    assert pooled.loc[4, "accuracy"] == pytest.approx((8 * 0.4 + 9 * 0.5 + 4 * 0.6) / 21)
    # the shortest distances, 5 items together, join the bin of 3 (labelled by its shortest distance)
    short = frame([("lm", "full", 0, d, 0.5, n) for d, n in {1: 3, 2: 2, 3: 40}.items()])
    assert list(pool_sparse(short, 20)["distance"]) == [1] and pool_sparse(short, 20)["n"].tolist() == [45]
