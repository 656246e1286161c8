"""What truncation loses: truncated against full gradients."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine import Contributions, SentenceGaps, gradient
from ..schemes import Full, parse_scheme

#: The parameters the gap is measured for (those truncation changes), and all of them together.
PARAMETERS = SentenceGaps.PARAMETERS


def _compare(parts_tau: dict, parts_full: dict, names, truncated) -> list[tuple[str, float, float]]:
    """rel_error and cosine of each truncated parameter and of all together (``names``: every
    parameter; those not in ``truncated``, the output weights, are exact and enter "all" only)."""
    rows = []
    err_all = dot_all = n_tau_all = n_full_all = 0.0
    for name in names:
        a, b = parts_tau[name], parts_full[name]
        err = float(np.sum((a - b) ** 2))
        dot = float(np.sum(a * b))
        na = float(np.sum(a * a))
        nb = float(np.sum(b * b))
        err_all += err
        dot_all += dot
        n_tau_all += na
        n_full_all += nb
        if name in truncated:
            rows.append((name, err, dot, na, nb))
    rows.append(("all", err_all, dot_all, n_tau_all, n_full_all))
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, err, dot, na, nb in rows:   # NaN where the full gradient is 0 (a one-step sentence's W_hh)
            out.append((name, float(np.sqrt(np.float64(err) / nb)), float(np.float64(dot) / np.sqrt(na * nb))))
    return out


def truncation_gap(model, batch, contrib: Contributions, block_schemes=(), beta: float | None = None,
                   max_tau: int | None = None) -> pd.DataFrame:
    """Relative error and cosine of truncated gradients against full BPTT.

    Parameters
    ----------
    model, batch
        As for :func:`gradlab.gradient`.
    contrib : Contributions or gradlab.cell_engine.CellContributions
        Of the same model and batch, with G_V up to ``max_tau``; TBPTT(tau) for
        tau = 0..K comes from its per-lag sums (prefix sums over lag). For a GRU, LSTM or
        linear cell (``model`` a :class:`gradlab.CellModel`), the cell's own sums and gradients.
    block_schemes : iterable of Scheme or str
        Other schemes, computed directly with :func:`gradlab.gradient`.
    beta : float, optional
        Fitted per-step decay factor; adds ``estimate`` = beta**(tau + 1), the relative
        error that a geometric decay at that rate would give TBPTT(tau). It is an
        estimate, not a bound: the measured error of trained models can lie above it.
    max_tau : int, optional
        Largest tau to report (default and at most: the contributions' max_lag).

    Returns
    -------
    DataFrame
        scheme, family ("tbptt"/"block"), tau (NaN for block schemes), parameter
        ("U", "V", "all"; another cell: its recurrent and input parameters' names and "all"),
        rel_error, cosine, estimate.
    """
    max_tau = contrib.max_lag if max_tau is None else min(max_tau, contrib.max_lag)
    if isinstance(contrib, Contributions):
        if contrib.v_max_lag < max_tau:
            raise ValueError(f"contrib has G_V up to lag {contrib.v_max_lag} but the gap needs it up to tau = "
                             f"{max_tau}; compute the contributions with G_V=True (or G_V >= {max_tau})")
        grad, exact = gradient, {"W": contrib.G_W}
    else:   # another cell: its own gradients; the output layer's are in G_out
        from ..cell_engine import gradient as grad
        exact = contrib.G_out
    full = grad(model, batch, Full()).as_dict()
    blocks = {s.label: grad(model, batch, s).as_dict() for s in map(parse_scheme, block_schemes)}
    return gap_table(contrib.lag_sums(), exact, full, blocks, model.cell.names, beta=beta, max_tau=max_tau)


def gap_table(lag_sums: dict, exact: dict, full: dict, blocks: dict, names, beta: float | None = None,
              max_tau: int | None = None) -> pd.DataFrame:
    """The rows of :func:`truncation_gap` for any cell.

    ``lag_sums``: {name: (K+1, *shape)} per-lag sums of the parameters truncation acts on;
    TBPTT(tau)'s gradient is their prefix sum over lags 0..tau. ``exact``: the others'
    gradients (the output layer), the same under every scheme. ``names``: every parameter,
    in the cell's order.
    """
    rows = []
    prefix = {n: np.zeros_like(G[0]) for n, G in lag_sums.items()}
    max_tau = next(iter(lag_sums.values())).shape[0] - 1 if max_tau is None else max_tau
    for tau in range(max_tau + 1):
        for n, G in lag_sums.items():
            prefix[n] += G[tau]
        estimate = beta ** (tau + 1) if beta is not None and np.isfinite(beta) else np.nan
        for name, rel, cos in _compare({**prefix, **exact}, full, names, tuple(lag_sums)):
            rows.append((f"tbptt:{tau}", "tbptt", float(tau), name, rel, cos, estimate))
    for label, g in blocks.items():
        for name, rel, cos in _compare(g, full, names, tuple(lag_sums)):
            rows.append((label, "block", np.nan, name, rel, cos, np.nan))
    return pd.DataFrame(rows, columns=["scheme", "family", "tau", "parameter", "rel_error", "cosine", "estimate"])


def smallest_tau(gap: pd.DataFrame, threshold: float, parameter: str = "all") -> float:
    """Smallest tau whose TBPTT relative error is below ``threshold`` for good (NaN if none within the range)."""
    rows = gap[(gap["family"] == "tbptt") & (gap["parameter"] == parameter)].sort_values("tau")
    ok = (rows["rel_error"] < threshold).to_numpy()
    if not ok.any() or not ok[-1]:
        return np.nan
    # the first tau after which every larger tau also stays below the threshold
    last_bad = np.flatnonzero(~ok)
    first = last_bad[-1] + 1 if last_bad.size else 0
    return float(rows["tau"].iloc[first])
