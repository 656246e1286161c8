"""How fast the error signal of a loss fades with lag."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..cells import ACTIVATIONS
from ..engine import Contributions, forward, state_derivative
from ..model import RNN

#: max f'(net) of each activation: the per-step growth of the signal is at most ||U|| times this.
MAX_DERIVATIVE = {name: a.max_derivative for name, a in ACTIVATIONS.items()}


def signal_norm(contrib) -> np.ndarray:
    """The per-pair signal whose decay the profile measures: ||delta(t, t-k)|| of the Elman
    :class:`~gradlab.Contributions`; ||dJ(t)/dh(t-k)|| of a gated or linear cell's
    (:class:`gradlab.cell_engine.CellContributions`, top layer when stacked)."""
    return contrib.delta_norm if isinstance(contrib, Contributions) else contrib.h_norm


def vanishing_profile(contrib) -> pd.DataFrame:
    """Distribution over losses of ||delta(t, t-k)|| (another cell: ||dJ(t)/dh(t-k)||) at each lag k.

    Returns
    -------
    DataFrame
        lag, n (losses that reach lag k, i.e. t >= k), mean, median, q25, q75,
        rel_mean (mean / mean at lag 0).
    """
    frame = pd.DataFrame({"lag": contrib.lag, "norm": signal_norm(contrib)})
    grouped = frame.groupby("lag")["norm"]
    out = pd.DataFrame({
        "n": grouped.size(),
        "mean": grouped.mean(),
        "median": grouped.median(),
        "q25": grouped.quantile(0.25),
        "q75": grouped.quantile(0.75),
    }).reset_index()
    base = out["mean"].iloc[0] if len(out) else np.nan
    out["rel_mean"] = out["mean"] / base if base else np.nan
    return out


def lag_heatmap(contrib) -> pd.DataFrame:
    """Mean over sentences of ||delta(t, t-k)|| (:func:`signal_norm`) for every (t, k): columns t, lag, mean."""
    frame = pd.DataFrame({"t": contrib.t, "lag": contrib.lag, "norm": signal_norm(contrib)})
    return frame.groupby(["t", "lag"], as_index=False)["norm"].mean().rename(columns={"norm": "mean"})


def fit_decay(profile: pd.DataFrame, min_count: int = 1) -> dict:
    """Least-squares slope of log(mean ||delta||) against lag (Aicher, Foti & Fox 2019).

    Parameters
    ----------
    profile : DataFrame
        From :func:`vanishing_profile`.
    min_count : int
        Lags with fewer losses than this are left out of the fit.

    Returns
    -------
    dict
        slope, intercept, beta = exp(slope) (the per-step decay factor) and
        half_life = ln 2 / -slope (inf when the signal does not decay). NaN when
        fewer than two lags have a positive mean.
    """
    use = profile[(profile["n"] >= min_count) & (profile["mean"] > 0) & np.isfinite(profile["mean"])]
    if len(use) < 2:
        return {"slope": np.nan, "intercept": np.nan, "beta": np.nan, "half_life": np.nan}
    slope, intercept = np.polyfit(use["lag"].to_numpy(float), np.log(use["mean"].to_numpy(float)), 1)
    half_life = np.log(2.0) / -slope if slope < 0 else np.inf
    return {"slope": float(slope), "intercept": float(intercept), "beta": float(np.exp(slope)),
            "half_life": float(half_life)}


def reach(profile: pd.DataFrame, floor: float) -> int:
    """Largest lag up to which rel_mean stays at or above ``floor`` without a break (-1 if lag 0 fails)."""
    above = (profile.sort_values("lag")["rel_mean"] >= floor).to_numpy()
    return int(np.argmin(above)) - 1 if not above.all() else int(profile["lag"].max())


def recurrence_stats(model: RNN, batch=None, *, mean_fprime: float | None = None) -> dict:
    """Spectral radius and largest singular value of U, mean f'(net) over the batch's tokens.

    ``growth_bound`` = sigma_max(U) * max f': no step can make ||delta|| grow by more.
    ``mean_fprime``, when given (merged partitions know it from their sums), replaces the
    forward pass over ``batch``.
    """
    eig = np.linalg.eigvals(model.U)
    sigma = np.linalg.svd(model.U, compute_uv=False)
    if mean_fprime is None:
        mean_fprime = state_derivative(forward(model, batch).s, model.activation).mean()
    return {"spectral_radius": float(np.max(np.abs(eig))), "sigma_max": float(sigma[0]),
            "mean_fprime": float(mean_fprime),
            "growth_bound": float(sigma[0] * MAX_DERIVATIVE[model.activation])}
