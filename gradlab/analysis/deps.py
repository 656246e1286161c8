"""The signal that a dependent loss sends back to the position that determines it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..batch import Batch
from ..engine import dependency_deltas
from ..model import RNN


def dependency_signal(model: RNN, batch: Batch, deps: pd.DataFrame) -> pd.DataFrame:
    """||delta(dependent, source)|| for every annotated dependency, at its own lag.

    Parameters
    ----------
    model : RNN
    batch : Batch
        The batch whose coordinates ``deps`` uses.
    deps : DataFrame
        sentence, source, dependent, lag (``Dataset.dependencies(task)``; steps, lag =
        dependent - source).

    Returns
    -------
    DataFrame
        sentence, source, dependent, lag, signal = ||delta(dependent, source)||,
        signal_rel = signal / ||delta(dependent, dependent)||. Dependencies whose
        dependent step has no loss get NaN.

    Notes
    -----
    :func:`gradlab.engine.dependency_deltas` carries each dependent loss's signal back
    exactly ``lag`` steps, so memory does not grow with the longest lag.
    """
    cols = ["sentence", "source", "dependent", "lag"]
    out = deps[cols].astype("int64").reset_index(drop=True)
    signal, own = dependency_deltas(model, batch, out["sentence"].to_numpy(), out["source"].to_numpy(),
                                    out["dependent"].to_numpy())
    out["signal"] = signal
    with np.errstate(invalid="ignore", divide="ignore"):
        out["signal_rel"] = signal / own
    return out


def dependency_kept(signal: pd.DataFrame, max_tau: int) -> pd.DataFrame:
    """Share of the dependency signal that TBPTT(tau) keeps: the pairs with lag <= tau.

    Returns
    -------
    DataFrame
        tau (0..max_tau), kept_share = sum of signal over dependencies with
        lag <= tau / sum over all (NaN when there is no signal).
    """
    use = signal.dropna(subset=["signal"])
    total = use["signal"].sum()
    taus = np.arange(max_tau + 1)
    kept = [use.loc[use["lag"] <= tau, "signal"].sum() / total if total > 0 else np.nan for tau in taus]
    return pd.DataFrame({"tau": taus, "kept_share": kept})


def dependency_kept_from_sums(signal_by_lag: np.ndarray, max_tau: int) -> pd.DataFrame:
    """:func:`dependency_kept` from the dependency signal summed by lag (entry d: every dependency at lag d)."""
    total = float(signal_by_lag.sum())
    cum = np.cumsum(signal_by_lag)
    taus = np.arange(max_tau + 1)
    kept = [float(cum[min(tau, cum.size - 1)]) / total if total > 0 else np.nan for tau in taus]
    return pd.DataFrame({"tau": taus, "kept_share": kept})


def dependency_signal_by_lag(signal: pd.DataFrame) -> pd.DataFrame:
    """The dependency signal of :func:`dependency_signal` summarised by lag.

    Returns
    -------
    DataFrame
        lag (the lags present, ascending), n (dependencies at that lag whose dependent step has a loss),
        signal (their mean ||delta(dependent, source)||), signal_rel (mean of signal /
        ||delta(dependent, dependent)||).
    """
    use = signal.dropna(subset=["signal"])
    g = use.groupby("lag", sort=True)
    out = pd.DataFrame({"n": g.size(), "signal": g["signal"].mean(), "signal_rel": g["signal_rel"].mean()})
    return out.rename_axis("lag").reset_index().astype({"lag": np.int64, "n": np.int64})
