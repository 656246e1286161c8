"""Figures of the gradlab report, one function per figure.

Every ``plot_*`` function takes the tidy frames of the analysis as they are (columns as in
the report-frame contract: ``dataset`` and ``state`` first), builds a
:class:`matplotlib.figure.Figure` and returns it. Nothing is shown and nothing is saved
here: :func:`gradlab.report.html.write_figure` saves a figure when asked. Figures are made
with :class:`matplotlib.figure.Figure` directly, not through pyplot, so no backend is
selected, no global figure registry fills up, and the caller only has to drop its
reference (or pass the figure to ``write_figure``, which closes it).

Conventions shared by all figures

- one colour per dataset: pass ``palette=dataset_palette(<all datasets of the report>)`` to
  every figure so that a dataset has the same colour everywhere, also in figures that show
  only some datasets (without it, each figure colours its own datasets in order of first
  appearance, or in the order given by ``datasets=``); the first figure legend lists
  exactly the datasets drawn, the second (where there is one) explains line styles;
- model states are facets (panel rows or columns), or the x axis of the bar charts;
- ``datasets=`` / ``states=`` select and order the levels to draw; an unknown level is an
  error naming the allowed values;
- **an empty frame gives** ``None`` (there is nothing to draw: the report leaves the figure
  out), a frame that lacks a contract column raises ``ValueError`` naming the columns;
- artists that carry data have hidden labels ``"_<role>|<dataset>"`` (for example
  ``"_estimate|agreement:distance=8"``), so tests and notebooks can find them; hidden labels
  never appear in legends.

Zeros on a log axis (for example a relative error of exactly 0 once τ covers the whole
sentence) cannot be drawn; matplotlib clips them to the bottom of the axis.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import wraps

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

from ..cells import ELMAN

__all__ = [
    "dataset_palette",
    "plot_profile",
    "plot_heatmap",
    "plot_gap",
    "plot_cosine",
    "plot_gap_sentences",
    "plot_blocks",
    "plot_dependencies",
    "plot_decay",
]

#: Parameters in the order their panels appear; others follow in order of appearance.
PARAMETER_ORDER = ELMAN.names + ("all",)

#: Inches per panel (width, height).
PANEL_SIZE = (4.3, 3.3)

#: Reference levels of the relative error drawn as horizontal lines (10% and 1%).
REFERENCES = (0.10, 0.01)

_REF_STYLE = dict(color="0.35", linestyle=":", linewidth=1.2, zorder=1)
_NOTE_STYLE = dict(ha="center", va="center", fontsize=10, color="0.4")

# Contract columns each figure reads.
_PROFILE_COLUMNS = ("dataset", "state", "lag", "n", "mean", "median", "q25", "q75")
_HEATMAP_COLUMNS = ("dataset", "state", "t", "lag", "mean")
_DECAY_COLUMNS = ("dataset", "state", "beta", "half_life", "slope", "intercept", "spectral_radius", "sigma_max",
                  "mean_fprime", "growth_bound", "floor", "reach")
#: Seed of every random choice in a figure (the dependency plot's jitter).
JITTER_SEED = 0
_GAP_COLUMNS = ("dataset", "state", "scheme", "family", "tau", "parameter", "rel_error", "cosine", "estimate")
_GAP_SENTENCE_COLUMNS = ("dataset", "state", "sentence", "tau", "parameter", "rel_error", "cosine")
_DEPENDENCY_COLUMNS = ("dataset", "state", "sentence", "source", "target", "distance", "signal", "signal_rel")
_KEPT_COLUMNS = ("dataset", "state", "tau", "kept_share")

_TAU_LABEL = r"truncation $\tau$ (TBPTT keeps lags $0 \ldots \tau$)"
_REL_ERROR_LABEL = r"relative error $\|g_\tau - g_{\mathrm{full}}\| \,/\, \|g_{\mathrm{full}}\|$"


# --------------------------------------------------------------------------- helpers

def _styled(func: Callable) -> Callable:
    """Build the figure inside seaborn's style and context, without touching global state."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
            return func(*args, **kwargs)

    return wrapper


def _check_frame(frame, name: str, columns: Sequence[str]) -> bool:
    """Raise if ``frame`` is not a DataFrame with ``columns``; return whether it has rows."""
    if frame is None:
        return False
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (the '{name}' report frame); "
                        f"received {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame is missing column(s) {missing}; expected at least {list(columns)}, "
                         f"received {list(frame.columns)}. Pass the frame the analysis produced, unchanged.")
    return len(frame) > 0


def _levels(frame: pd.DataFrame, column: str, wanted: Sequence[str] | None, argument: str) -> list[str]:
    """Levels of ``column`` in order of first appearance, or ``wanted`` after checking it."""
    present = [str(v) for v in pd.unique(frame[column].astype(str))]
    if wanted is None:
        return present
    if isinstance(wanted, str):
        wanted = [wanted]
    unknown = [w for w in wanted if w not in present]
    if unknown:
        raise ValueError(f"{argument} names {unknown}, which the frame does not hold; allowed values: {present}")
    return list(wanted)


def _select(frame: pd.DataFrame, datasets: list[str], states: list[str]) -> pd.DataFrame:
    frame = frame.assign(dataset=frame["dataset"].astype(str), state=frame["state"].astype(str))
    return frame[frame["dataset"].isin(datasets) & frame["state"].isin(states)]


def _parameters(frame: pd.DataFrame, wanted: Sequence[str] | None) -> list[str]:
    present = [str(p) for p in pd.unique(frame["parameter"].astype(str))]
    if wanted is not None:
        return _levels(frame.assign(parameter=frame["parameter"].astype(str)), "parameter", wanted, "parameters")
    return [p for p in PARAMETER_ORDER if p in present] + [p for p in present if p not in PARAMETER_ORDER]


def dataset_palette(datasets: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per dataset, in this order: pass it as ``palette=`` to every figure of a report.

    Parameters
    ----------
    datasets : sequence of str
        All dataset labels of the report, in the order they should be listed.

    Returns
    -------
    dict of str to RGB tuple
        seaborn's colour-blind-safe palette for up to 10 datasets, evenly spaced hues beyond.
    """
    datasets = list(dict.fromkeys(str(d) for d in datasets))
    colours = sns.color_palette("colorblind" if len(datasets) <= 10 else "husl", len(datasets))
    return dict(zip(datasets, colours))


def _dataset_levels(frame: pd.DataFrame, datasets: Sequence[str] | None,
                    palette: Mapping[str, object] | None) -> tuple[list[str], dict]:
    """Datasets to draw and their colours.

    Without ``datasets=``, the frame's datasets, in the palette's order when one is given
    (so that a figure of a subset lists them as the others do).
    """
    levels = _levels(frame, "dataset", datasets, "datasets")
    if palette is None:
        return levels, dataset_palette(levels)
    missing = [d for d in levels if d not in palette]
    if missing:
        raise ValueError(f"palette has no colour for dataset(s) {missing}; it covers {list(palette)}. "
                         "Build it with dataset_palette(<all datasets of the report>).")
    if datasets is None:
        rank = {d: i for i, d in enumerate(palette)}
        levels = sorted(levels, key=rank.__getitem__)
    return levels, dict(palette)


def _figure(nrows: int, ncols: int, *, sharex=False, sharey=False, size=PANEL_SIZE, extra_width=2.2):
    """A constrained-layout figure with an (nrows, ncols) array of axes and room for legends."""
    fig = Figure(figsize=(size[0] * ncols + extra_width, size[1] * nrows + 0.6), layout="constrained")
    # An Agg canvas of its own (no pyplot, no global backend): without one, every text
    # measurement (seaborn's tick-label overlap check, constrained layout) redraws the figure.
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False)
    return fig, axes


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    ncols = min(n, max_cols)
    return math.ceil(n / ncols), ncols


def _tag(artist, role: str, dataset: str = "") -> None:
    artist.set_label(f"_{role}|{dataset}" if dataset else f"_{role}")


def _line(ax, data: pd.DataFrame, x: str, y: str, *, colour, role: str, dataset: str, **kwargs) -> None:
    """One line of ``data`` (already one row per x), tagged ``_role|dataset``."""
    n_before = len(ax.lines)
    sns.lineplot(data=data, x=x, y=y, color=colour, estimator=None, errorbar=None, sort=True, legend=False, ax=ax,
                 **kwargs)
    for line in ax.lines[n_before:]:
        _tag(line, role, dataset)


def _references(ax, levels: Sequence[float]) -> None:
    """Horizontal reference lines (10%, 1% error) with their labels at the right edge."""
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for level in levels:
        line = ax.axhline(level, **_REF_STYLE)
        _tag(line, "ref", f"{level:g}")
        ax.text(0.995, level, f"{level:.0%}", transform=trans, ha="right", va="bottom", fontsize=8, color="0.35")


def _wrap(label: str, width: int = 36) -> str:
    """A long label (a canonical dataset or state text) broken after commas into lines of about ``width``."""
    if len(label) <= width:
        return label
    lines, line = [], ""
    for part in label.split(","):
        piece = part if not line else "," + part
        if line and len(line) + len(piece) > width:
            lines.append(line + ",")
            line = part
        else:
            line += piece
    # a piece without commas (a long file path) is cut every ``width`` characters
    return "\n".join(chunk for text in lines + [line] for chunk in
                     (text[i:i + width] for i in range(0, len(text), width)))


def _dataset_legend(fig: Figure, datasets: Sequence[str], palette: dict, *, patches=False) -> None:
    if patches:
        handles = [Patch(facecolor=palette[d], label=_wrap(d)) for d in datasets]
    else:
        handles = [Line2D([], [], color=palette[d], linewidth=2.2, label=_wrap(d)) for d in datasets]
    fig.legend(handles=handles, title="dataset", loc="outside right upper", fontsize=9, title_fontsize=10,
               frameon=False)


def _style_legend(fig: Figure, handles: list, title: str = "shown") -> None:
    fig.legend(handles=handles, title=title, loc="outside right lower", fontsize=9, title_fontsize=10, frameon=False)


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, **_NOTE_STYLE)
    ax.set_xticks([])
    ax.set_yticks([])


def _hide_unused(axes, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def _suptitle(fig: Figure, title: str, subtitle: str | None = None) -> None:
    fig.suptitle(title if subtitle is None else f"{title}\n{subtitle}", fontsize=12)


def _positive(values) -> np.ndarray:
    """Values as float, with non-positive and non-finite ones as NaN (not drawable on a log axis)."""
    arr = np.asarray(values, dtype=float)
    return np.where(np.isfinite(arr) & (arr > 0), arr, np.nan)


# --------------------------------------------------------------------------- (1) vanishing profile

@_styled
def plot_profile(profile: pd.DataFrame, decay: pd.DataFrame | None = None, *,
                 datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                 palette: Mapping[str, object] | None = None, min_n: int = 1,
                 title: str | None = None) -> Figure | None:
    """Vanishing profile: the distribution over losses of ‖δ(t, t−k)‖ against lag k.

    One panel per model state, one colour per dataset: the median (solid), the
    interquartile band q25–q75 (shaded) and the mean (dashed), on a log y axis. With the
    ``decay`` frame, the least-squares fit of log mean ‖δ‖ against k is drawn dotted,
    exp(intercept + slope·k), and each panel lists β and the half-life per dataset.

    Parameters
    ----------
    profile : DataFrame
        The ``profile`` report frame (dataset, state, lag, n, mean, median, q25, q75, ...).
    decay : DataFrame, optional
        The ``decay`` report frame; adds the fitted decay lines and the β annotation.
    datasets, states : sequence of str, optional
        Levels to draw, in this order (default: all, in order of first appearance).
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`dataset_palette`);
        default: a palette of this figure's datasets.
    min_n : int
        Lags reached by fewer than ``min_n`` losses are not drawn (their quantiles are noise).
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``profile`` is empty.
    """
    if not _check_frame(profile, "profile", _PROFILE_COLUMNS):
        return None
    has_decay = _check_frame(decay, "decay", _DECAY_COLUMNS)
    datasets, palette = _dataset_levels(profile, datasets, palette)
    states = _levels(profile, "state", states, "states")
    data = _select(profile, datasets, states)
    data = data[data["n"] >= min_n].sort_values("lag")
    fits = _select(decay, datasets, states) if has_decay else None

    fig, axes = _figure(*_grid(len(states)), sharex=True, sharey=True)
    for ax, state in zip(axes.flat, states):
        ax.set_yscale("log")
        notes = []
        for dataset in datasets:
            sub = data[(data["dataset"] == dataset) & (data["state"] == state)]
            if sub.empty:
                continue
            colour = palette[dataset]
            lag = sub["lag"].to_numpy(dtype=float)
            band = ax.fill_between(lag, _positive(sub["q25"]), _positive(sub["q75"]), color=colour, alpha=0.2,
                                   linewidth=0)
            _tag(band, "band", dataset)
            _line(ax, sub.assign(median=_positive(sub["median"])), "lag", "median", colour=colour, role="median",
                  dataset=dataset, linewidth=2)
            _line(ax, sub.assign(mean=_positive(sub["mean"])), "lag", "mean", colour=colour, role="mean",
                  dataset=dataset, linewidth=1.4, linestyle="--")
            if fits is not None:
                row = fits[(fits["dataset"] == dataset) & (fits["state"] == state)]
                if not row.empty and np.isfinite(row["slope"].iloc[0]) and np.isfinite(row["intercept"].iloc[0]):
                    slope, intercept = float(row["slope"].iloc[0]), float(row["intercept"].iloc[0])
                    k = np.linspace(lag.min(), lag.max(), 50)
                    fit_line, = ax.plot(k, np.exp(intercept + slope * k), color=colour, linestyle=":", linewidth=1.6)
                    _tag(fit_line, "fit", dataset)
                    notes.append((colour, rf"$\beta$ = {_fmt(row['beta'].iloc[0])}, "
                                          rf"$t_{{1/2}}$ = {_fmt(row['half_life'].iloc[0])}"))
        for i, (colour, text) in enumerate(reversed(notes)):
            ax.text(0.03, 0.04 + 0.075 * i, text, transform=ax.transAxes, fontsize=8, color=colour, ha="left",
                    va="bottom", bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=1))
        ax.set_title(f"state: {_wrap(state, 60)}", fontsize=10)
        ax.set_xlabel("lag k (steps back from the loss)")
        ax.set_ylabel(r"$\|\delta(t,\,t-k)\|$ over losses t")
    _hide_unused(axes, len(states))

    _dataset_legend(fig, datasets, palette)
    grey = "0.3"
    style = [Line2D([], [], color=grey, linewidth=2, label="median"),
             Patch(facecolor=grey, alpha=0.25, label="q25–q75"),
             Line2D([], [], color=grey, linewidth=1.4, linestyle="--", label="mean")]
    if fits is not None:
        style.append(Line2D([], [], color=grey, linewidth=1.6, linestyle=":", label="fit of log mean\n"
                                                                                   r"$\beta = e^{\mathrm{slope}}$"))
    _style_legend(fig, style)
    _suptitle(fig, title or r"Vanishing profile: $\|\delta(t, t-k)\| = \|\partial J(t) / \partial\, net_{in}(t-k)\|$"
                            " against lag k",
              None if min_n <= 1 else f"lags reached by fewer than {min_n} losses not drawn")
    return fig


def _fmt(value) -> str:
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞"
    return f"{value:.3g}"


# --------------------------------------------------------------------------- (2) heatmap

@_styled
def plot_heatmap(heatmap: pd.DataFrame, *, datasets: Sequence[str] | None = None,
                 states: Sequence[str] | None = None, max_facets: int = 12, title: str | None = None) -> Figure | None:
    """(t, k) heatmap of the mean ‖δ(t, t−k)‖ over sentences, on a shared log colour scale.

    One panel per dataset (rows) × state (columns); x is the position t of the loss, y the
    lag k (k ≤ t, so the upper-left triangle is empty). Cells with a zero or missing mean are
    left blank. At most ``max_facets`` panels are drawn: all states are kept and datasets
    beyond ``max_facets // n_states`` are dropped (the figure title says how many are shown).

    Parameters
    ----------
    heatmap : DataFrame
        The ``heatmap`` report frame (dataset, state, t, lag, mean).
    datasets, states : sequence of str, optional
        Levels to draw, in this order (default: all, in order of first appearance).
    max_facets : int
        Largest number of panels.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``heatmap`` is empty.
    """
    if not _check_frame(heatmap, "heatmap", _HEATMAP_COLUMNS):
        return None
    if not isinstance(max_facets, (int, np.integer)) or max_facets < 1:
        raise ValueError(f"max_facets must be a positive integer; received {max_facets!r}")
    datasets = _levels(heatmap, "dataset", datasets, "datasets")
    states = _levels(heatmap, "state", states, "states")
    total = len(datasets) * len(states)
    if len(states) > max_facets:
        states = states[:max_facets]
    datasets = datasets[:max(1, max_facets // len(states))]
    data = _select(heatmap, datasets, states)
    values = _positive(data["mean"])
    finite = values[np.isfinite(values)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size else LogNorm(vmin=1e-3, vmax=1.0)
    t_max, lag_max = int(data["t"].max()), int(data["lag"].max())

    fig, axes = _figure(len(datasets), len(states), size=(4.0, 3.2), extra_width=1.2)
    mesh = None
    for r, dataset in enumerate(datasets):
        for c, state in enumerate(states):
            ax = axes[r, c]
            sub = data[(data["dataset"] == dataset) & (data["state"] == state)]
            ax.set_title(f"{_wrap(dataset, 48)}\n{_wrap(state, 48)}", fontsize=9)
            if sub.empty:
                _note(ax, "no data")
                continue
            grid = (sub.assign(mean=_positive(sub["mean"]))
                    .pivot_table(index="lag", columns="t", values="mean", aggfunc="mean")
                    .reindex(index=range(lag_max + 1), columns=range(t_max + 1)))
            # pcolormesh, as seaborn.heatmap does inside, but without the full figure redraw that
            # seaborn.heatmap runs on every call; rasterized: thousands of cells become one image
            # in the SVG rather than one path each.
            mesh = ax.pcolormesh(np.arange(t_max + 2) - 0.5, np.arange(lag_max + 2) - 0.5,
                                 np.ma.masked_invalid(grid.to_numpy(dtype=float)), cmap="viridis", norm=norm,
                                 rasterized=True)
            _tag(mesh, "heatmap", dataset)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            ax.grid(False)
            ax.set_xlabel("t (position of the loss)" if r == len(datasets) - 1 else "")
            ax.set_ylabel("lag k" if c == 0 else "")
            ax.tick_params(labelsize=8)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, label=r"mean $\|\delta(t,\,t-k)\|$ over sentences (log scale)", shrink=0.9)
    shown = len(datasets) * len(states)
    _suptitle(fig, title or r"Error signal by loss position t and lag k: mean $\|\delta(t, t-k)\|$",
              None if shown == total else f"showing {shown} of {total} dataset × state panels "
                                          f"(max_facets = {max_facets})")
    return fig


# --------------------------------------------------------------------------- (3), (4) truncation gap

def _gap_grid(gap: pd.DataFrame, datasets, states, palette, parameters):
    datasets, palette = _dataset_levels(gap, datasets, palette)
    states = _levels(gap, "state", states, "states")
    data = _select(gap, datasets, states)
    data = data[data["family"].astype(str) == "tbptt"].assign(parameter=lambda d: d["parameter"].astype(str))
    if data.empty:
        return None
    parameters = _parameters(data, parameters)
    data = data.sort_values("tau")
    return datasets, states, palette, parameters, data


def _gap_axes(axes, states, parameters, xlabel=_TAU_LABEL, ylabel=_REL_ERROR_LABEL):
    """Panels of a states (rows) x parameters (columns) grid; axis labels on the outer panels only."""
    for r, state in enumerate(states):
        for c, parameter in enumerate(parameters):
            ax = axes[r, c]
            ax.set_title(f"parameter {parameter}  ·  state:\n{_wrap(state, 44)}", fontsize=10)
            yield ax, state, parameter
            # after the caller has drawn: seaborn sets the labels to column names
            ax.set_xlabel(xlabel if r == len(states) - 1 else "")
            ax.set_ylabel(ylabel if c == 0 else "")


@_styled
def plot_gap(gap: pd.DataFrame, *, datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
             palette: Mapping[str, object] | None = None, parameters: Sequence[str] | None = None,
             references: Sequence[float] = REFERENCES, show_estimate: bool = True,
             title: str | None = None) -> Figure | None:
    """Truncation gap: relative error of the TBPTT(τ) corpus gradient against τ.

    One panel per parameter (U, V, all; columns) and model state (rows), one colour per
    dataset, log y axis. Solid: measured ‖g_τ − g_full‖/‖g_full‖; dashed: the estimate
    β^(τ+1) that the fitted decay gives (``estimate`` column; not a bound: trained models
    can lie above it); dotted grey: the 10% and 1%
    reference levels. Only ``family == "tbptt"`` rows are drawn (block schemes:
    :func:`plot_blocks`).

    Parameters
    ----------
    gap : DataFrame
        The ``gap`` report frame.
    datasets, states, parameters : sequence of str, optional
        Levels to draw, in this order (default: all; parameters U, V, W, all first).
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`dataset_palette`);
        default: a palette of this figure's datasets.
    references : sequence of float
        Relative-error levels drawn as horizontal lines.
    show_estimate : bool
        Draw the β^(τ+1) estimate.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``gap`` has no TBPTT rows.
    """
    if not _check_frame(gap, "gap", _GAP_COLUMNS):
        return None
    found = _gap_grid(gap, datasets, states, palette, parameters)
    if found is None:
        return None
    datasets, states, palette, parameters, data = found
    fig, axes = _figure(len(states), len(parameters), sharex=True, sharey=True)
    for ax, state, parameter in _gap_axes(axes, states, parameters):
        ax.set_yscale("log")
        for dataset in datasets:
            sub = data[(data["dataset"] == dataset) & (data["state"] == state) & (data["parameter"] == parameter)]
            if sub.empty:
                continue
            _line(ax, sub.assign(rel_error=_positive(sub["rel_error"])), "tau", "rel_error", colour=palette[dataset],
                  role="rel_error", dataset=dataset, linewidth=2, marker="o", markersize=3.5)
            if show_estimate and np.isfinite(sub["estimate"].to_numpy(dtype=float)).any():
                _line(ax, sub.assign(estimate=_positive(sub["estimate"])), "tau", "estimate",
                      colour=palette[dataset], role="estimate", dataset=dataset, linewidth=1.4, linestyle="--")
        _references(ax, references)
    _dataset_legend(fig, datasets, palette)
    style = [Line2D([], [], color="0.3", linewidth=2, marker="o", markersize=3.5, label="measured")]
    if show_estimate:
        style.append(Line2D([], [], color="0.3", linewidth=1.4, linestyle="--",
                            label=r"estimate $\beta^{\tau+1}$ (fitted decay; not a bound)"))
    style.append(Line2D([], [], **_REF_STYLE, label="reference\nlevels"))
    _style_legend(fig, style)
    _suptitle(fig, title or "What truncation loses: relative error of the TBPTT(τ) gradient (corpus)")
    return fig


@_styled
def plot_cosine(gap: pd.DataFrame, *, datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                palette: Mapping[str, object] | None = None, parameters: Sequence[str] | None = None,
                title: str | None = None) -> Figure | None:
    """Direction of the truncated gradient: cosine(g_τ, g_full) against τ.

    Same layout as :func:`plot_gap` (parameters as columns, states as rows, one colour per
    dataset), linear y axis with the ideal value 1 as a dotted line. Only TBPTT rows.

    Parameters
    ----------
    gap : DataFrame
        The ``gap`` report frame.
    datasets, states, parameters : sequence of str, optional
        Levels to draw, in this order.
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`dataset_palette`);
        default: a palette of this figure's datasets.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``gap`` has no TBPTT rows.
    """
    if not _check_frame(gap, "gap", _GAP_COLUMNS):
        return None
    found = _gap_grid(gap, datasets, states, palette, parameters)
    if found is None:
        return None
    datasets, states, palette, parameters, data = found
    fig, axes = _figure(len(states), len(parameters), sharex=True, sharey=True)
    ylabel = r"cosine$(g_\tau,\, g_{\mathrm{full}})$"
    for ax, state, parameter in _gap_axes(axes, states, parameters, ylabel=ylabel):
        for dataset in datasets:
            sub = data[(data["dataset"] == dataset) & (data["state"] == state) & (data["parameter"] == parameter)]
            if not sub.empty:
                _line(ax, sub, "tau", "cosine", colour=palette[dataset], role="cosine", dataset=dataset,
                      linewidth=2, marker="o", markersize=3.5)
        _tag(ax.axhline(1.0, **_REF_STYLE), "ref", "1")
    _dataset_legend(fig, datasets, palette)
    _suptitle(fig, title or "Direction kept by truncation: cosine between the TBPTT(τ) and the full gradient")
    return fig


# --------------------------------------------------------------------------- (5) per-sentence gap

@_styled
def plot_gap_sentences(gap_sentences: pd.DataFrame, *, parameter: str = "all",
                       datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                       palette: Mapping[str, object] | None = None, references: Sequence[float] = REFERENCES,
                       title: str | None = None) -> Figure | None:
    """Per-sentence truncation gap: distribution over sentences of the relative error against τ.

    One panel per model state, one colour per dataset, log y axis: the median over sentences
    (solid), the q25–q75 band (dark shade) and the q05–q95 band (light shade), with the 10%
    and 1% reference levels. Sentences no longer than τ have error 0 (full BPTT); they pull
    the lower quantiles to the bottom of the axis.

    Parameters
    ----------
    gap_sentences : DataFrame
        The ``gap_sentences`` report frame.
    parameter : str
        Which parameter's error to show (default ``"all"``: U, V and W together).
    datasets, states : sequence of str, optional
        Levels to draw, in this order.
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`dataset_palette`);
        default: a palette of this figure's datasets.
    references : sequence of float
        Relative-error levels drawn as horizontal lines.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``gap_sentences`` is empty.
    """
    if not _check_frame(gap_sentences, "gap_sentences", _GAP_SENTENCE_COLUMNS):
        return None
    allowed = [str(p) for p in pd.unique(gap_sentences["parameter"].astype(str))]
    if parameter not in allowed:
        raise ValueError(f"parameter must be one of {allowed} (the parameters in the gap_sentences frame); "
                         f"received {parameter!r}")
    datasets, palette = _dataset_levels(gap_sentences, datasets, palette)
    states = _levels(gap_sentences, "state", states, "states")
    data = _select(gap_sentences, datasets, states)
    data = data[data["parameter"].astype(str) == parameter]
    quantiles = (data.groupby(["dataset", "state", "tau"], sort=True)["rel_error"]
                 .quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack().reset_index())
    quantiles.columns = ["dataset", "state", "tau", "q05", "q25", "q50", "q75", "q95"]

    fig, axes = _figure(*_grid(len(states)), sharex=True, sharey=True)
    for ax, state in zip(axes.flat, states):
        ax.set_yscale("log")
        for dataset in datasets:
            sub = quantiles[(quantiles["dataset"] == dataset) & (quantiles["state"] == state)].sort_values("tau")
            if sub.empty:
                continue
            colour = palette[dataset]
            tau = sub["tau"].to_numpy(dtype=float)
            _tag(ax.fill_between(tau, sub["q05"], sub["q95"], color=colour, alpha=0.1, linewidth=0), "band90", dataset)
            _tag(ax.fill_between(tau, sub["q25"], sub["q75"], color=colour, alpha=0.25, linewidth=0), "band", dataset)
            _line(ax, sub.assign(q50=_positive(sub["q50"])), "tau", "q50", colour=colour, role="median",
                  dataset=dataset, linewidth=2)
        _references(ax, references)
        ax.set_title(f"parameter {parameter}  ·  state:\n{_wrap(state, 44)}", fontsize=10)
        ax.set_xlabel(_TAU_LABEL)
        ax.set_ylabel(_REL_ERROR_LABEL + "\nper sentence")
    _hide_unused(axes, len(states))
    _dataset_legend(fig, datasets, palette)
    grey = "0.3"
    _style_legend(fig, [Line2D([], [], color=grey, linewidth=2, label="median over\nsentences"),
                        Patch(facecolor=grey, alpha=0.35, label="q25–q75"),
                        Patch(facecolor=grey, alpha=0.12, label="q05–q95"),
                        Line2D([], [], **_REF_STYLE, label="reference\nlevels")])
    _suptitle(fig, title or "What truncation loses, sentence by sentence: distribution of the relative error")
    return fig


# --------------------------------------------------------------------------- (6) block schemes

@_styled
def plot_blocks(gap: pd.DataFrame, *, datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                palette: Mapping[str, object] | None = None, parameters: Sequence[str] | None = None,
                references: Sequence[float] = REFERENCES, title: str | None = None) -> Figure | None:
    """Block schemes: relative error of each scheme's corpus gradient, one bar per dataset.

    One panel per parameter (columns) and model state (rows); bars grouped by scheme label
    (``block:k1,k2``: blocks of k1 steps carried back to k2 − k1 steps before the block; the
    chunked scheme "detach every h steps" is ``block:h,h``), coloured by dataset, log y
    axis, with the 10% and 1% reference levels. Only ``family == "block"`` rows are drawn.

    Parameters
    ----------
    gap : DataFrame
        The ``gap`` report frame.
    datasets, states, parameters : sequence of str, optional
        Levels to draw, in this order.
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`dataset_palette`);
        default: a palette of this figure's datasets.
    references : sequence of float
        Relative-error levels drawn as horizontal lines.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``gap`` has no block-scheme rows.
    """
    if not _check_frame(gap, "gap", _GAP_COLUMNS):
        return None
    datasets, palette = _dataset_levels(gap, datasets, palette)
    states = _levels(gap, "state", states, "states")
    data = _select(gap, datasets, states)
    data = data[data["family"].astype(str) == "block"].assign(parameter=lambda d: d["parameter"].astype(str),
                                                                scheme=lambda d: d["scheme"].astype(str))
    if data.empty:
        return None
    parameters = _parameters(data, parameters)
    schemes = [str(s) for s in pd.unique(data["scheme"])]
    width = max(PANEL_SIZE[0], 0.5 + 0.35 * len(schemes) * max(1, len(datasets)) / 2)
    fig, axes = _figure(len(states), len(parameters), sharey=True, size=(width, PANEL_SIZE[1] + 0.4))
    ylabel = r"relative error $\|g - g_{\mathrm{full}}\| \,/\, \|g_{\mathrm{full}}\|$"
    for ax, state, parameter in _gap_axes(axes, states, parameters, xlabel="block scheme", ylabel=ylabel):
        sub = data[(data["state"] == state) & (data["parameter"] == parameter)]
        sub = sub.assign(rel_error=_positive(sub["rel_error"]))
        ax.set_yscale("log")
        if sub["rel_error"].notna().any():
            sns.barplot(data=sub, x="scheme", y="rel_error", hue="dataset", order=schemes, hue_order=datasets,
                        palette={d: palette[d] for d in datasets}, saturation=1, errorbar=None, legend=False,
                        ax=ax)
            for dataset, container in zip([d for d in datasets if d in set(sub["dataset"])], ax.containers):
                _tag(container, "bars", dataset)
        else:
            _note(ax, "no data")
        _references(ax, references)
        ax.tick_params(axis="x", labelrotation=30)
    _dataset_legend(fig, datasets, palette, patches=True)
    _suptitle(fig, title or "Block schemes: relative error of the gradient against full BPTT (corpus)",
              "block:k1,k2 = blocks of k1 steps, each loss carried back k2 − k1 steps before its block; "
              "block:h,h = detach every h steps")
    return fig


# --------------------------------------------------------------------------- (7) dependencies

@_styled
def plot_dependencies(dependencies: pd.DataFrame, dependency_kept: pd.DataFrame | None = None, *,
                      datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                      palette: Mapping[str, object] | None = None, title: str | None = None) -> Figure | None:
    """Annotated dependencies: the signal the dependent loss sends back to the source.

    One row of panels per model state, one colour per dataset. Left: signal_rel =
    ‖δ(target, source)‖ / ‖δ(target, target)‖ against the distance target − source, one point
    per dependency (jittered) and the mean per distance as a line, log y axis. Right: the
    share of the total dependency signal that TBPTT(τ) keeps, against τ (dependencies
    farther than τ contribute nothing).

    Parameters
    ----------
    dependencies : DataFrame
        The ``dependencies`` report frame.
    dependency_kept : DataFrame, optional
        The ``dependency_kept`` report frame; its panel says "no data" when it is missing.
    datasets, states : sequence of str, optional
        Levels to draw, in this order.
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`dataset_palette`);
        default: a palette of this figure's datasets.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when both frames are empty (data without annotated dependencies).
    """
    has_dep = _check_frame(dependencies, "dependencies", _DEPENDENCY_COLUMNS)
    has_kept = _check_frame(dependency_kept, "dependency_kept", _KEPT_COLUMNS)
    if not has_dep and not has_kept:
        return None
    both = pd.concat([f[["dataset", "state"]] for f, ok in ((dependencies, has_dep), (dependency_kept, has_kept))
                      if ok])
    datasets, palette = _dataset_levels(both, datasets, palette)
    states = _levels(both, "state", states, "states")
    deps = _select(dependencies, datasets, states) if has_dep else None
    kept = _select(dependency_kept, datasets, states).sort_values("tau") if has_kept else None

    fig, axes = _figure(len(states), 2)
    for r, state in enumerate(states):
        left, right = axes[r]
        left.set_title(f"signal at the source  ·  state:\n{_wrap(state, 44)}", fontsize=10)
        right.set_title(f"share kept by TBPTT(τ)  ·  state:\n{_wrap(state, 44)}", fontsize=10)
        sub = deps[deps["state"] == state] if deps is not None else None
        if sub is None or sub.empty:
            _note(left, "no dependency rows")
        else:
            sub = sub.assign(signal_rel=_positive(sub["signal_rel"]))
            left.set_yscale("log")
            # the jitter comes from a fixed seed, so the same rows always give the same figure bytes
            rng = np.random.default_rng(JITTER_SEED)
            for dataset in datasets:
                pts = sub[sub["dataset"] == dataset]
                if not pts.empty:
                    left.scatter(pts["distance"].to_numpy(dtype=float) + rng.uniform(-0.15, 0.15, len(pts)),
                                 pts["signal_rel"].to_numpy(dtype=float), s=2.5 ** 2, color=palette[dataset],
                                 alpha=0.35, linewidths=0, rasterized=True)
            means = sub.groupby(["dataset", "distance"], sort=True)["signal_rel"].mean().reset_index()
            for dataset in datasets:
                m = means[means["dataset"] == dataset]
                if not m.empty:
                    _line(left, m, "distance", "signal_rel", colour=palette[dataset], role="mean", dataset=dataset,
                          linewidth=2, marker="o", markersize=4)
            left.set_xlabel("distance target − source (steps)")
            left.set_ylabel(r"$\|\delta(\mathrm{target}, \mathrm{source})\| \,/\, "
                            r"\|\delta(\mathrm{target}, \mathrm{target})\|$")
        ksub = kept[kept["state"] == state] if kept is not None else None
        if ksub is None or ksub.empty:
            _note(right, "no kept-share rows")
        else:
            for dataset in datasets:
                k = ksub[ksub["dataset"] == dataset]
                if not k.empty:
                    _line(right, k, "tau", "kept_share", colour=palette[dataset], role="kept", dataset=dataset,
                          linewidth=2, marker="o", markersize=3.5, drawstyle="steps-post")
            right.set_ylim(-0.03, 1.03)
            right.set_xlabel(_TAU_LABEL)
            right.set_ylabel("share of dependency signal kept")
    _dataset_legend(fig, datasets, palette)
    if has_dep:
        _style_legend(fig, [Line2D([], [], color="0.3", marker="o", linestyle="none", alpha=0.4, markersize=4,
                                   label="one dependency"),
                            Line2D([], [], color="0.3", marker="o", linewidth=2, markersize=4,
                                   label="mean per distance")])
    _suptitle(fig, title or "Dependencies: what the dependent loss sends back to its source, and what TBPTT(τ) keeps")
    return fig


# --------------------------------------------------------------------------- (8) decay summary

_DECAY_PANELS = (
    ("beta", r"decay factor per step $\beta = e^{\mathrm{slope}}$", 1.0),
    ("half_life", r"half-life $\ln 2 / (-\ln \beta)$ (steps)", None),
    ("reach", "reach: largest lag with\nrel. mean ≥ floor (steps)", None),
    ("mean_fprime", r"mean $f'(net_{in})$ over tokens", None),
    ("spectral_radius", r"spectral radius $\rho(U)$", 1.0),
    ("sigma_max", r"largest singular value $\sigma_{\max}(U)$", 1.0),
    ("growth_bound", "growth bound per step\n" r"$\sigma_{\max}(U) \cdot \max f'$", 1.0),
)


@_styled
def plot_decay(decay: pd.DataFrame, *, datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
               palette: Mapping[str, object] | None = None, title: str | None = None) -> Figure | None:
    """Decay summary: fitted β, half-life and reach beside the properties of U, per dataset × state.

    Seven bar panels with the model state on the x axis and one bar per dataset: β (per-step
    decay factor of the mean ‖δ‖), half-life, reach (largest lag whose relative mean stays
    above the floor), mean f′, spectral radius ρ(U), σ_max(U) and the growth bound
    σ_max(U)·max f′. A dotted line marks 1 where it separates decay from growth. An infinite
    half-life (β ≥ 1) is written as ∞ above its slot; values are printed on the bars.

    Parameters
    ----------
    decay : DataFrame
        The ``decay`` report frame (one row per dataset × state).
    datasets, states : sequence of str, optional
        Levels to draw, in this order.
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`dataset_palette`);
        default: a palette of this figure's datasets.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``decay`` is empty.
    """
    if not _check_frame(decay, "decay", _DECAY_COLUMNS):
        return None
    datasets, palette = _dataset_levels(decay, datasets, palette)
    states = _levels(decay, "state", states, "states")
    data = _select(decay, datasets, states)
    width = max(3.6, 0.9 + 0.45 * len(states) * len(datasets))
    fig, axes = _figure(2, 4, size=(width, 3.2))
    slot = 0.8 / len(datasets)  # seaborn's dodge: bars of one x share 0.8 units
    for ax, (column, label, one) in zip(axes.flat, _DECAY_PANELS):
        values = data[column].to_numpy(dtype=float)
        plotted = data.assign(**{column: np.where(np.isfinite(values), values, np.nan)})
        if plotted[column].notna().any():
            sns.barplot(data=plotted, x="state", y=column, hue="dataset", order=states, hue_order=datasets,
                        palette={d: palette[d] for d in datasets}, saturation=1, errorbar=None, legend=False,
                        ax=ax)
            ax.set_xticks(range(len(states)), [_wrap(state, 24) for state in states])
            present = [d for d in datasets if plotted.loc[plotted["dataset"] == d, column].notna().any()]
            for dataset, container in zip(present, ax.containers):
                _tag(container, column, dataset)
                ax.bar_label(container, fmt="%.3g", fontsize=7, padding=1)
        trans = blended_transform_factory(ax.transData, ax.transAxes)
        for _, row in data[np.isinf(values)].iterrows():
            x = states.index(row["state"]) - 0.4 + slot * (datasets.index(row["dataset"]) + 0.5)
            text = ax.text(x, 0.9, "∞", transform=trans, ha="center", va="center", fontsize=12,
                           color=palette[row["dataset"]])
            _tag(text, f"inf:{column}", row["dataset"])
        if one is not None:
            _tag(ax.axhline(one, **_REF_STYLE), "ref", "1")
        finite = [v for v in values if np.isfinite(v)] + ([one] if one is not None else [])
        top = max(finite) if finite else 0.0
        ax.set_xlim(-0.5, len(states) - 0.5)
        ax.set_ylim(0, 1.2 * top if top > 0 else 1.0)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    _hide_unused(axes, len(_DECAY_PANELS))
    _dataset_legend(fig, datasets, palette, patches=True)
    floors = sorted({_fmt(f) for f in data["floor"]})
    _suptitle(fig, title or "Decay of the error signal with lag, and the recurrent matrix U",
              f"β: least-squares fit of ln mean ‖δ(t, t−k)‖ against k;  reach floor = {', '.join(floors)}")
    return fig
