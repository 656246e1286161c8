"""Adaptive truncation (Aicher, Foti & Fox, UAI 2019): choose TBPTT's tau from the measured decay.

Aicher et al. ("Adaptively truncating backpropagation through time to control gradient
bias", arXiv:1905.07473; code: github.com/aicherc/adaptive_tbptt, ``adaptive_truncation.py``)
assume that the norm of the signal a loss sends back k steps decays geometrically from
some lag on, phi(k) <= phi(start) beta^(k - start) for k >= start, estimate beta by least
squares on log phi(k), bound the bias that truncation after tau lags leaves by the tail
of that series, and take the smallest truncation whose bound, relative to the whole
signal, is under a tolerance delta. gradlab measures phi exactly:

    phi(k) = mean over losses of ||delta(t, t - k)||      (the vanishing profile)

and fits beta with :func:`gradlab.analysis.fit_decay` (the same fit its reports use).
TBPTT(tau) keeps lags 0..tau, so the absolute bias bound is the tail

    E(tau) = sum_{k > tau} phi~(k),   phi~(k) = phi(k) for k < start, phi(start) beta^(k - start) after,

in closed form E(tau) = phi(start) beta^(tau + 1 - start) / (1 - beta) for tau + 1 >= start,
and the relative bound is E(tau) / E(-1), the tail over the whole series. The
denominator is the sum of the signal norms over lags: Aicher et al.'s
``cum_grad_norm_approx`` option (their default uses a lower bound on the norm of the
summed signal instead, which makes the bound larger). For a decay that is geometric
from lag 0 (start = 0) the relative bound is beta^(tau + 1), the ``bound`` column of
:func:`gradlab.analysis.truncation_gap`. When the signal does not decay (beta >= 1 or no
fit) no tau bounds the bias and the largest allowed one is used, as in their
``adaptive_K_estimate``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..batch import Batch
from ..cellmodel import CellModel
from ..engine import contributions
from ..model import RNN
from ..schemes import Adaptive

__all__ = ["bias_bound", "choose_tau", "estimate_truncation", "TRUNCATION_COLUMNS"]

#: Columns of the log of adaptive choices (``TrainResult.truncation``).
TRUNCATION_COLUMNS = ("update", "epoch", "tau", "beta", "bias_bound", "n_losses")


def bias_bound(phi, beta: float, taus, start: int = 0) -> np.ndarray:
    """Relative bias bound E(tau) / E(-1) of TBPTT(tau) under the geometric tail (module docstring).

    Parameters
    ----------
    phi : float array, shape (K + 1,)
        Mean signal norm at lags 0..K (only lags 0..start are used).
    beta : float
        Per-step decay factor of lags >= start.
    taus : int array
        Truncations (largest lag kept), each >= 0.
    start : int
        First lag of the geometric tail; start <= K.

    Returns
    -------
    float array, shape of ``taus``
        In [0, 1]; inf everywhere when beta is not in (0, 1) (the tail does not converge).
    """
    phi = np.asarray(phi, dtype=np.float64)
    taus = np.asarray(taus, dtype=np.int64)
    if not (np.isfinite(beta) and 0.0 < beta < 1.0):
        return np.full(taus.shape, np.inf)
    head = np.concatenate(([0.0], np.cumsum(phi[:start])))       # head[j] = sum_{k<j} phi(k)
    tail0 = phi[start] / (1.0 - beta)                               # sum_{k>=start} phi~(k)
    total = head[start] + tail0
    if total <= 0.0:
        return np.zeros(taus.shape)                                 # no signal: truncation loses nothing
    j = taus + 1                                                    # first lag that is cut
    geometric = phi[start] * beta ** np.maximum(j - start, 0) / (1.0 - beta)
    partial = head[start] - head[np.minimum(j, start)]              # measured lags j..start-1
    return np.where(j >= start, geometric, partial + tail0) / total


def choose_tau(bound: np.ndarray, delta: float, min_tau: int, max_tau: int) -> int:
    """Smallest tau in min_tau..max_tau with ``bound[tau - min_tau] <= delta``; max_tau when none is."""
    ok = np.flatnonzero(np.asarray(bound) <= delta)
    return int(min_tau + ok[0]) if ok.size else int(max_tau)


def estimate_truncation(model: RNN, batch: Batch, scheme: Adaptive) -> dict:
    """Measure the profile of ``batch`` under ``model``, fit beta, and choose tau (module docstring).

    Parameters
    ----------
    model : RNN or CellModel
        For a GRU, LSTM or linear cell the profile is that of ||dJ(t)/dh(t-k)||.
    batch : Batch
        Sentences laid out for the training objective (their losses define the profile).
    scheme : Adaptive

    Returns
    -------
    dict
        ``tau`` (int), ``beta`` (NaN when it cannot be fitted), ``bias_bound`` (the
        relative bound at tau), ``n_losses``, and ``profile`` (the vanishing profile frame).
    """
    from ..analysis.vanishing import fit_decay, vanishing_profile

    if not isinstance(scheme, Adaptive):
        raise TypeError(f"scheme must be an Adaptive scheme; received {scheme!r}")
    K = scheme.max_tau + 1
    if isinstance(model, CellModel):
        from ..cell_engine import contributions as cell_contributions
        profile = vanishing_profile(cell_contributions(model, batch, K))
    else:   # the profile reads only the per-pair delta norms: no G_V, no V norms
        profile = vanishing_profile(contributions(model, batch, max_lag=K, G_V=False, V_norm=False))
    phi = np.zeros(K + 1)
    phi[profile["lag"].to_numpy(np.int64)] = profile["mean"].to_numpy(np.float64)
    fit = fit_decay(profile[profile["lag"] >= scheme.start])
    beta = fit["beta"]
    taus = np.arange(scheme.min_tau, scheme.max_tau + 1)
    bound = bias_bound(phi, beta, taus, scheme.start) if np.isfinite(beta) else np.full(taus.size, np.inf)
    tau = choose_tau(bound, scheme.delta, scheme.min_tau, scheme.max_tau)
    n_losses = int(profile.loc[profile["lag"] == 0, "n"].sum()) if len(profile) else 0
    return {"tau": tau, "beta": float(beta), "bias_bound": float(bound[tau - scheme.min_tau]),
            "n_losses": n_losses, "profile": profile}


def truncation_frame(rows: list) -> pd.DataFrame:
    """The log of adaptive choices as a frame (columns :data:`TRUNCATION_COLUMNS`)."""
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=np.float64 if c in ("beta", "bias_bound") else np.int64)
                             for c in TRUNCATION_COLUMNS})
    return pd.DataFrame(rows, columns=list(TRUNCATION_COLUMNS))
