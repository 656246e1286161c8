"""All measures for one dataset and one model state."""
from __future__ import annotations

import pandas as pd

from ..cellmodel import CellModel
from ..engine import contributions, sentence_gaps
from .deps import dependency_kept, dependency_signal
from .gap import smallest_tau, truncation_gap
from .vanishing import fit_decay, lag_heatmap, reach, recurrence_stats, vanishing_profile


def analyse(model, batch, *, max_lag: int, deps: pd.DataFrame | None = None, block_schemes=(),
            floor: float = 1e-3, per_sentence: bool = True) -> dict[str, pd.DataFrame]:
    """Vanishing profile, truncation gap and dependency signal of one model on one batch.

    Parameters
    ----------
    model : RNN or CellModel
        A GRU, LSTM or linear :class:`~gradlab.CellModel` gives the profile and heatmap of
        ||dJ(t)/dh(t-k)||, the decay fit and the gap of each of its parameters, overall and
        per sentence (the Elman recurrence's summary statistics and the dependency signal are
        Elman only: NaN, and an error when asked for).
    batch : Batch
    max_lag : int
        K: lags and taus 0..K.
    deps : DataFrame, optional
        Annotated dependencies in the batch's coordinates (sentence, source, dependent,
        lag); their signal is measured at every lag, even beyond K, with memory that does
        not grow with the lag (:func:`dependency_signal`).
    block_schemes : iterable of Scheme or str
    floor : float
        Relative floor for ``reach``.
    per_sentence : bool
        Also the per-sentence distribution of the TBPTT gap (``gap_sentences``).

    Returns
    -------
    dict of DataFrame
        profile, heatmap, decay (one row), gap, gap_sentences, dependencies,
        dependency_kept, summary (one row) — the columns of the report's CSVs,
        without the dataset and state columns.
    """
    cell = isinstance(model, CellModel)
    if cell and deps is not None:
        raise ValueError(f"analyse: the dependency signal is measured for the Elman RNN only; for a "
                         f"{model.cell.name!r} model pass deps=None")
    if cell:
        from ..cell_engine import contributions as cell_contributions
        contrib = cell_contributions(model, batch, max_lag)
    else:   # the report uses G_V only for the gap (tau <= K) and never the per-pair V norms
        contrib = contributions(model, batch, max_lag, V_norm=False)
    profile = vanishing_profile(contrib)
    heat = lag_heatmap(contrib)
    fit = fit_decay(profile)
    stats = _NO_STATS if cell else recurrence_stats(model, batch)
    gap = truncation_gap(model, batch, contrib, block_schemes, beta=fit["beta"], max_tau=max_lag)
    decay, summary = decay_and_summary(fit, stats, profile, gap, floor, n_sentences=batch.n_sentences,
                                       n_losses=contrib.n_losses, loss=contrib.loss)
    out = {"profile": profile, "heatmap": heat, "decay": decay, "gap": gap}
    if per_sentence:
        out["gap_sentences"] = sentence_gaps(model, batch, max_lag).to_frame()
    if deps is not None:
        sig = dependency_signal(model, batch, deps)
        out["dependencies"] = sig
        out["dependency_kept"] = dependency_kept(sig, max_lag)
    out["summary"] = summary
    return out


#: The Elman recurrence's statistics (``recurrence_stats``), not defined for the other cells.
_NO_STATS = {"spectral_radius": float("nan"), "sigma_max": float("nan"), "mean_fprime": float("nan"),
             "growth_bound": float("nan")}


def decay_and_summary(fit: dict, stats: dict, profile: pd.DataFrame, gap: pd.DataFrame, floor: float, *,
                      n_sentences: int, n_losses: int, loss: float, parameter: str = "all"):
    """The one-row ``decay`` and ``summary`` frames of a report unit.

    ``fit`` from :func:`fit_decay`, ``stats`` from :func:`recurrence_stats`; ``parameter``:
    whose gap curve gives tau_10 and tau_1.
    """
    decay = pd.DataFrame([{**fit, **stats, "floor": floor, "reach": reach(profile, floor)}])
    summary = pd.DataFrame([{
        "beta": fit["beta"], "half_life": fit["half_life"],
        "tau_10": smallest_tau(gap, 0.10, parameter), "tau_1": smallest_tau(gap, 0.01, parameter),
        "spectral_radius": stats["spectral_radius"], "sigma_max": stats["sigma_max"],
        "mean_fprime": stats["mean_fprime"], "reach": decay["reach"].iloc[0],
        "n_sentences": n_sentences, "n_losses": n_losses, "mean_loss": loss / max(n_losses, 1),
    }])
    return decay, summary
