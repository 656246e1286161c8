"""Outcome measures of training studies: accuracy at the longest distance, longest distance learned, intervals.

All take the tidy ``by_distance`` frame of a study or suite (one row per run, eval task and
distance: ``accuracy``, ``n``) and return tidy frames; grouping columns that are present
among ``part``, ``distribution``, ``task``, ``hidden_size``, ``scheme`` and
``learning_rate`` are kept, and ``seed`` is what the intervals are taken over.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["seed_interval", "accuracy_by_distance", "accuracy_at_longest", "longest_learned", "tau_of_scheme",
           "LEARNED_THRESHOLD"]

#: Accuracy at or above which a distance counts as learned.
LEARNED_THRESHOLD = 0.9
_GROUPS = ("part", "distribution", "task", "hidden_size", "scheme", "learning_rate")


def _groups(frame: pd.DataFrame) -> list:
    return [c for c in _GROUPS if c in frame.columns]


def seed_interval(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and Student-t interval of the mean over seeds: (mean, low, high, n); low = high = NaN for n < 2."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def _summarise(per_run: pd.DataFrame, value: str, groups: list) -> pd.DataFrame:
    rows = []
    for key, g in per_run.groupby(groups, sort=False, dropna=False):
        mean, lo, hi, n = seed_interval(g[value])
        rows.append((*((key,) if len(groups) == 1 else key), mean, lo, hi, n, float(g[value].min()),
                     float(g[value].max())))
    return pd.DataFrame(rows, columns=groups + ["mean", "ci_low", "ci_high", "n_seeds", "min", "max"])


def accuracy_by_distance(by_distance: pd.DataFrame, value: str = "accuracy") -> pd.DataFrame:
    """``value`` (accuracy or mean_loss) at every distance, per group: mean over seeds with its 95% interval.

    Returns the group columns, ``distance``, ``mean``, ``ci_low``, ``ci_high``, ``n_seeds``,
    ``min``, ``max``.
    """
    return _summarise(by_distance, value, _groups(by_distance) + ["distance"])


def accuracy_at_longest(by_distance: pd.DataFrame) -> pd.DataFrame:
    """Accuracy at the largest evaluated distance, per group: mean over seeds with its 95% interval.

    Returns
    -------
    DataFrame
        The group columns, ``distance`` (the largest), ``mean``, ``ci_low``, ``ci_high``,
        ``n_seeds``, ``min``, ``max``.
    """
    groups = _groups(by_distance)
    longest = by_distance.groupby([c for c in groups if c != "scheme"], dropna=False)["distance"] \
        .transform("max") if groups else by_distance["distance"].max()
    at = by_distance[by_distance["distance"] == longest]
    out = _summarise(at, "accuracy", groups)
    dist = at.groupby(groups, sort=False, dropna=False)["distance"].first().to_numpy()
    out.insert(len(groups), "distance", dist)
    return out


def longest_learned(by_distance: pd.DataFrame, threshold: float = LEARNED_THRESHOLD) -> pd.DataFrame:
    """Per run: the largest evaluated distance whose accuracy is at least ``threshold`` (0 if none is).

    Not "every distance up to it": a model trained only at the longest distance can
    learn that distance and not the shorter ones it never saw. Returns the group
    columns, ``seed`` and ``longest_learned``; summarise over seeds with :func:`seed_interval`.
    """
    groups = _groups(by_distance) + (["seed"] if "seed" in by_distance.columns else [])
    ok = by_distance.assign(_d=np.where(by_distance["accuracy"] >= threshold, by_distance["distance"], 0))
    out = ok.groupby(groups, sort=False, dropna=False)["_d"].max().reset_index()
    return out.rename(columns={"_d": "longest_learned"}).astype({"longest_learned": np.int64})


def tau_of_scheme(scheme: str) -> float:
    """tau of a sliding-window scheme label ("tbptt:3" -> 3.0); NaN for every other scheme."""
    name, _, arg = str(scheme).partition(":")
    if name in ("tbptt", "sliding"):
        try:
            return float(int(arg))
        except ValueError:
            return float("nan")
    return float("nan")
