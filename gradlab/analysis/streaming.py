"""Corpus-size analysis: statistics computed per partition of sentences and merged exactly.

The in-memory path (:func:`gradlab.analysis.analyse`) keeps one row per (sentence, t, k),
which caps a corpus at what fits in memory. Here every partition of sentences gives a
:class:`PartitionStats` — per-lag counts, sums, sums of squares and fixed log-spaced
histograms of ||delta(t, t-k)||, per-(t, k) sums for the heatmap, the per-lag summed
gradients of the parameters truncation acts on (G_U[k] and G_V[k] of the Elman RNN; every
recurrent and input parameter of a GRU, LSTM or linear :class:`~gradlab.CellModel`), the full
and block-scheme gradients, the dependency signal summed by lag (Elman only) — and partitions
merge by addition. Memory follows the partition size, K, H
and |V|, never the corpus size.

Counts and histograms merge exactly; float sums are merged in partition order, so a
corpus gives the same bytes however its partitions were scheduled (in this process or on
Dask) and equals the in-memory results to rounding. Quantiles are read from the
histograms: the geometric centre of the bin that holds it (interpolated between two bins'
centres, with pandas' weights, when its two order statistics fall in different bins), so it
is within half a bin (a factor 10^(1/(2 * BINS_PER_DECADE)), about 3.7 %) of the exact
quantile, for values between 1e-80 and 1e8.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cellmodel import CellModel
from ..engine import contributions, forward, gradient, state_derivative
from ..schemes import Full, parse_scheme
from .gap import gap_table
from .study import _NO_STATS, decay_and_summary
from .vanishing import fit_decay, recurrence_stats, signal_norm

__all__ = ["PartitionStats", "partition_stats", "merge", "frames_from_stats", "BINS_PER_DECADE", "LOG10_RANGE",
           "quantile_resolution", "partitions"]

#: Histogram bins per decade of ||delta||, and the decades they cover (values outside go to the
#: under/overflow bins; exact zeros are counted apart).
BINS_PER_DECADE = 32
LOG10_RANGE = (-80.0, 8.0)
_N_BINS = int(round((LOG10_RANGE[1] - LOG10_RANGE[0]) * BINS_PER_DECADE))


def quantile_resolution() -> float:
    """The largest ratio between a histogram quantile and the exact one (half a bin in log scale)."""
    return float(10.0 ** (0.5 / BINS_PER_DECADE))


def _bin_index(values: np.ndarray) -> np.ndarray:
    """Histogram column of each value: 0 = exact zero, 1 = underflow, 2.._N_BINS+1 the bins, last = overflow."""
    out = np.zeros(values.shape, dtype=np.int64)
    pos = values > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.floor((np.log10(values[pos]) - LOG10_RANGE[0]) * BINS_PER_DECADE).astype(np.int64)
    out[pos] = np.clip(b, -1, _N_BINS) + 2
    out[~np.isfinite(values)] = _N_BINS + 2      # inf / NaN: overflow, so they stay visible in the counts
    return out


def _bin_value(col: int) -> float:
    """The value a quantile in histogram column ``col`` reads as (the bin's geometric centre)."""
    if col == 0:
        return 0.0
    if col == 1:
        return 10.0 ** LOG10_RANGE[0]
    if col == _N_BINS + 2:
        return np.inf
    return 10.0 ** (LOG10_RANGE[0] + (col - 2 + 0.5) / BINS_PER_DECADE)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b along axis 0 where either may have fewer rows (rows missing are zero)."""
    if a.shape[0] < b.shape[0]:
        a, b = b, a
    out = a.copy()
    out[: b.shape[0]] += b
    return out


@dataclass
class PartitionStats:
    """Everything the aggregated report needs from a set of sentences; merge with :func:`merge`.

    Attributes
    ----------
    max_lag : int
    n_sentences, n_losses, n_tokens : int
    loss : float
        Summed loss.
    count, total, total_sq : (K+1,) arrays
        Per lag k: how many losses reach it, sum and sum of squares of ||delta(t, t-k)||.
    hist : int64 (K+1, n_bins + 3)
        Per lag: exact zeros, underflow, the log-spaced bins, overflow.
    heat_count, heat_total : (T_max, K+1) arrays
        Per (t, k): count and sum of ||delta(t, t-k)||.
    lag_sums : dict of str to (K+1, *shape) arrays
        Per-lag summed gradients G_theta[k] of the parameters truncation acts on
        (``Contributions.lag_sums()``: U and V of the Elman RNN, V left out without
        ``with_V``; a cell's recurrent and input parameters, input ones left out without
        ``with_V``).
    exact : dict of str to arrays
        The output layer's gradient (W; a cell's W and b), the same under every scheme.
    full : dict of arrays
        The full-BPTT gradient of the partition's losses, every parameter.
    blocks : dict of str to dict of arrays
        Each block scheme's gradient.
    fprime_sum : float
        Sum of f'(net_in) over every token and unit (the mean f' of the report; Elman only, NaN
        for other cells).
    dep_count, dep_signal, dep_signal_rel : (n_dep_lags,) arrays
        Dependencies by lag: how many, sum of ||delta(dependent, source)|| and of that over
        ||delta(dependent, dependent)|| (dependencies whose dependent step has no loss are
        left out).
    """

    max_lag: int
    n_sentences: int = 0
    n_losses: int = 0
    n_tokens: int = 0
    loss: float = 0.0
    count: np.ndarray = None
    total: np.ndarray = None
    total_sq: np.ndarray = None
    hist: np.ndarray = None
    heat_count: np.ndarray = None
    heat_total: np.ndarray = None
    lag_sums: dict = field(default_factory=dict)
    exact: dict = field(default_factory=dict)
    full: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)
    fprime_sum: float = 0.0
    dep_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dep_signal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dep_signal_rel: np.ndarray = field(default_factory=lambda: np.zeros(0))


def partitions(n: int, size: int) -> list[tuple[int, int]]:
    """Contiguous sentence ranges [lo, hi) of at most ``size`` sentences covering 0..n."""
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"partition_size must be an integer >= 1; received {size!r}")
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def partition_stats(model, batch, *, max_lag: int, block_schemes=(), deps: pd.DataFrame | None = None,
                    with_V: bool = True) -> PartitionStats:
    """The mergeable statistics of one partition (a batch of sentences).

    Parameters
    ----------
    model : RNN or CellModel
        A GRU, LSTM, linear (or other registered) :class:`~gradlab.CellModel` gives the
        statistics of ||dJ(t)/dh(t-k)|| and of its own parameters, as
        :func:`gradlab.analysis.analyse` does.
    batch : Batch
    max_lag : int
        K.
    block_schemes : iterable of Scheme or str
    deps : DataFrame, optional
        The batch's dependencies (sentence, source, dependent, lag, in batch
        coordinates); their signal is summed by lag (lags beyond K included). Elman only.
    with_V : bool
        Keep the per-lag sums of the input parameters (G_V[k] of the Elman RNN: |V| H (K+1)
        floats), needed for their gap curves and "all".
    """
    K = int(max_lag)
    cell = isinstance(model, CellModel)
    if cell and deps is not None:
        raise ValueError(f"partition_stats: the dependency signal is measured for the Elman RNN only; for a "
                         f"{model.cell.name!r} model pass deps=None")
    if cell:
        from .. import cell_engine
        c = cell_engine.contributions(model, batch, K)
        grad = cell_engine.gradient
        inputs = () if with_V else model.cell.with_role("input")
        lag_sums = {n: G for n, G in c.lag_sums().items() if n not in inputs}
        exact = c.G_out
    else:
        c = contributions(model, batch, K, G_V=with_V, V_norm=False)
        grad = gradient
        lag_sums, exact = c.lag_sums(), {"W": c.G_W}
    st = PartitionStats(K)
    st.n_sentences = int(batch.n_sentences)
    st.n_losses = int(c.n_losses)
    st.n_tokens = int(batch.n_tokens if hasattr(batch, "n_tokens") else batch.ids.size)
    st.loss = float(c.loss)
    norms = signal_norm(c)
    st.count = np.bincount(c.lag, minlength=K + 1).astype(np.int64)
    st.total = np.bincount(c.lag, weights=norms, minlength=K + 1)
    st.total_sq = np.bincount(c.lag, weights=norms * norms, minlength=K + 1)
    cols = _bin_index(norms)
    st.hist = np.bincount(c.lag * (_N_BINS + 3) + cols, minlength=(K + 1) * (_N_BINS + 3)) \
        .reshape(K + 1, _N_BINS + 3).astype(np.int64)
    T = int(c.t.max()) + 1 if c.t.size else 0
    heat_cell = c.t * (K + 1) + c.lag
    st.heat_count = np.bincount(heat_cell, minlength=T * (K + 1)).reshape(T, K + 1).astype(np.int64)
    st.heat_total = np.bincount(heat_cell, weights=norms, minlength=T * (K + 1)).reshape(T, K + 1)
    st.lag_sums, st.exact = lag_sums, exact
    st.full = grad(model, batch, Full()).as_dict()
    for scheme in block_schemes:
        scheme = parse_scheme(scheme)
        st.blocks[scheme.label] = grad(model, batch, scheme).as_dict()
    if cell:
        st.fprime_sum = float("nan")
    else:
        s = forward(model, batch).s
        st.fprime_sum = float(state_derivative(s, model.activation).sum())
    if deps is not None and len(deps):
        from .deps import dependency_signal
        sig = dependency_signal(model, batch, deps).dropna(subset=["signal"])
        lags = sig["lag"].to_numpy(np.int64)
        n = int(lags.max()) + 1 if lags.size else 0
        st.dep_count = np.bincount(lags, minlength=n).astype(np.int64)
        st.dep_signal = np.bincount(lags, weights=sig["signal"].to_numpy(float), minlength=n)
        st.dep_signal_rel = np.bincount(lags, weights=sig["signal_rel"].to_numpy(float), minlength=n)
    return st


def merge(a: PartitionStats, b: PartitionStats) -> PartitionStats:
    """The statistics of both partitions' sentences (b's added to a's; neither is changed)."""
    if a.max_lag != b.max_lag:
        raise ValueError(f"cannot merge statistics of max_lag {a.max_lag} and {b.max_lag}")
    if set(a.blocks) != set(b.blocks) or set(a.lag_sums) != set(b.lag_sums) or set(a.exact) != set(b.exact):
        raise ValueError("cannot merge statistics computed with different block schemes, with_V or models")
    return PartitionStats(
        a.max_lag, a.n_sentences + b.n_sentences, a.n_losses + b.n_losses, a.n_tokens + b.n_tokens,
        a.loss + b.loss, a.count + b.count, a.total + b.total, a.total_sq + b.total_sq, a.hist + b.hist,
        _add_padded(a.heat_count, b.heat_count), _add_padded(a.heat_total, b.heat_total),
        {k: a.lag_sums[k] + b.lag_sums[k] for k in a.lag_sums}, {k: a.exact[k] + b.exact[k] for k in a.exact},
        {k: a.full[k] + b.full[k] for k in a.full},
        {s: {k: a.blocks[s][k] + b.blocks[s][k] for k in a.blocks[s]} for s in a.blocks},
        a.fprime_sum + b.fprime_sum,
        _add_padded(a.dep_count, b.dep_count), _add_padded(a.dep_signal, b.dep_signal),
        _add_padded(a.dep_signal_rel, b.dep_signal_rel))


def _quantile(hist_row: np.ndarray, q: float) -> float:
    """The q-quantile (as pandas' linear interpolation ranks it) read from one lag's histogram."""
    n = int(hist_row.sum())
    if n == 0:
        return np.nan
    rank = q * (n - 1)                     # 0-based position of the quantile among the sorted values
    cum = np.cumsum(hist_row)
    lo = int(np.searchsorted(cum, np.floor(rank) + 1))
    hi = int(np.searchsorted(cum, np.ceil(rank) + 1))
    if lo == hi:
        return _bin_value(lo)
    # the two order statistics sit in neighbouring bins: interpolate between their centres
    frac = rank - np.floor(rank)
    return float((1 - frac) * _bin_value(lo) + frac * _bin_value(hi))


def frames_from_stats(st: PartitionStats, model, *, floor: float = 1e-3, max_tau: int | None = None) -> dict:
    """The report's frames from merged statistics (columns as :func:`gradlab.analysis.analyse` gives them).

    Returns
    -------
    dict of DataFrame
        profile (quantiles from the histograms), heatmap, decay, gap, summary, and
        dependency_kept when dependencies were measured.
    """
    K = st.max_lag
    lags = np.arange(K + 1)
    keep = st.count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = st.total / st.count
    profile = pd.DataFrame({
        "lag": lags[keep], "n": st.count[keep], "mean": mean[keep],
        "median": [_quantile(st.hist[k], 0.5) for k in lags[keep]],
        "q25": [_quantile(st.hist[k], 0.25) for k in lags[keep]],
        "q75": [_quantile(st.hist[k], 0.75) for k in lags[keep]],
    })
    base = profile["mean"].iloc[0] if len(profile) else np.nan
    profile["rel_mean"] = profile["mean"] / base if base else np.nan
    tt, kk = np.nonzero(st.heat_count)
    heat = pd.DataFrame({"t": tt.astype(np.int64), "lag": kk.astype(np.int64),
                         "mean": st.heat_total[tt, kk] / st.heat_count[tt, kk]})
    fit = fit_decay(profile)
    if isinstance(model, CellModel):
        stats = _NO_STATS
    else:
        stats = recurrence_stats(model, mean_fprime=st.fprime_sum / max(st.n_tokens * model.hidden_size, 1))
    max_tau = K if max_tau is None else min(max_tau, K)
    names = model.cell.names
    # without the input parameters' sums (with_V=False) only the recurrent curves are exact
    complete = set(model.cell.truncated) <= set(st.lag_sums)
    sums = {n: st.lag_sums[n] if n in st.lag_sums else np.broadcast_to(0.0, (K + 1,) + st.full[n].shape)
            for n in model.cell.truncated}
    gap = gap_table(sums, st.exact, st.full, st.blocks, names, beta=fit["beta"], max_tau=max_tau)
    if not complete:
        gap = gap[gap["parameter"].isin(list(st.lag_sums))].reset_index(drop=True)
    decay, summary = decay_and_summary(fit, stats, profile, gap, floor, n_sentences=st.n_sentences,
                                       n_losses=st.n_losses, loss=st.loss,
                                       parameter="all" if complete else next(iter(st.lag_sums)))
    out = {"profile": profile, "heatmap": heat, "decay": decay, "gap": gap}
    if st.dep_count.size:
        from .deps import dependency_kept_from_sums
        out["dependency_kept"] = dependency_kept_from_sums(st.dep_signal, K)
    out["summary"] = summary
    return out
