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
           "pool_sparse", "LEARNED_THRESHOLD", "MIN_ITEMS"]

#: Accuracy at or above which a distance counts as learned.
LEARNED_THRESHOLD = 0.9
#: Fewest dev items a distance needs before an accuracy there counts on its own (:func:`pool_sparse`).
MIN_ITEMS = 20
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


def pool_sparse(by_distance: pd.DataFrame, min_items: int = MIN_ITEMS) -> pd.DataFrame:
    """Merge sparse distances into bins of at least ``min_items`` dev items, from the longest down.

    Real dev data holds few long dependencies (on the Linzen data one item at 26 words, four at
    12), and an accuracy on a handful of items says nothing. Per group (``part``,
    ``distribution``, ``task``: the dev data, so the counts, are the same for every scheme and
    seed), walking from the longest distance down, consecutive distances are gathered into one
    bin until it holds ``min_items`` items (the shortest distances, if they stay short, join the
    bin above them);
    each run's rows in a bin become one row at the bin's shortest distance with their total
    ``n`` and their item-weighted accuracy (and ``mean_loss``). A group where every distance
    holds ``min_items`` items is returned unchanged, as is one where none does (a tiny dev set,
    where every accuracy is as rough) and a frame without an ``n`` column. The returned frame
    has a boolean ``pooled`` column (True for rows merged from several distances).
    """
    if "n" not in by_distance.columns or not len(by_distance):
        return by_distance.assign(pooled=False)
    keys = [c for c in ("part", "distribution", "task") if c in by_distance.columns]
    run_keys = [c for c in by_distance.columns if c not in ("distance", "lag", "n", "accuracy", "mean_loss")]
    parts = []
    for _, g in by_distance.groupby(keys, sort=False, dropna=False) if keys else [((), by_distance)]:
        counts = g.groupby("distance")["n"].max().sort_index()
        if counts.max() < min_items or counts.min() >= min_items:
            parts.append(g.assign(pooled=False))
            continue
        bins, current, items = [], [], 0          # bins of distances, longest first
        for d, n in counts[::-1].items():
            current.append(d)
            items += n
            if items >= min_items:
                bins.append(current)
                current, items = [], 0
        if current:                                # a short last bin joins the one below it
            (bins[-1].extend(current) if bins else bins.append(current))
        start = {d: min(b) for b in bins for d in b}
        g = g.assign(distance=g["distance"].map(start), pooled=g["distance"].map(
            {d: len(b) > 1 for b in bins for d in b}))
        weight = g["n"].to_numpy(dtype=np.float64)
        g["accuracy"] = g["accuracy"] * weight
        if "mean_loss" in g:
            g["mean_loss"] = g["mean_loss"] * weight
        agg = {c: "sum" for c in ("n", "accuracy", "mean_loss") if c in g}
        agg.update({c: "min" for c in ("lag",) if c in g})
        agg["pooled"] = "max"
        merged = g.groupby(run_keys + ["distance"], sort=False, dropna=False).agg(agg).reset_index()
        merged["accuracy"] /= merged["n"]
        if "mean_loss" in merged:
            merged["mean_loss"] /= merged["n"]
        parts.append(merged[list(by_distance.columns) + ["pooled"]])   # runs in order, bins by distance
    return pd.concat(parts, ignore_index=True)


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
