"""Vanishing profile: the distribution over losses of ‖δ(t, t−k)‖ against lag k, with the fitted decay."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import style as st
from ..frames import columns

NAME = "profile"
CAPTION = ("Vanishing profile: distribution over losses of ||delta(t, t-k)|| against lag k (median, "
           "quartiles, mean; log scale), with the fitted geometric decay beta^k.")
FRAMES = ("profile", "decay")

PROFILE_COLUMNS = columns("profile", without=("rel_mean",))
DECAY_COLUMNS = columns("decay")


@st.styled
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
        Dataset colours shared by the report's figures (see :func:`gradlab.report.style.dataset_palette`);
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
    others = [c for c in st.cells_of(profile) if c != "elman"]
    profile = st.by_cell(profile)
    if not st.check_frame(profile, "profile", PROFILE_COLUMNS):
        return None
    decay = st.by_cell(decay)
    has_decay = st.check_frame(decay, "decay", DECAY_COLUMNS)
    datasets, palette = st.dataset_levels(profile, datasets, palette)
    states = st.levels(profile, "state", states, "states")
    data = st.select(profile, datasets, states)
    data = data[data["n"] >= min_n].sort_values("lag")
    fits = st.select(decay, datasets, states) if has_decay else None

    fig, axes = st.figure(*st.grid(len(states)), sharex=True, sharey=True)
    for ax, state in zip(axes.flat, states):
        ax.set_yscale("log")
        notes = []
        for dataset in datasets:
            sub = data[(data["dataset"] == dataset) & (data["state"] == state)]
            if sub.empty:
                continue
            colour = palette[dataset]
            lag = sub["lag"].to_numpy(dtype=float)
            band = ax.fill_between(lag, st.positive(sub["q25"]), st.positive(sub["q75"]), color=colour, alpha=0.2,
                                   linewidth=0)
            st.tag(band, "band", dataset)
            st.line(ax, sub.assign(median=st.positive(sub["median"])), "lag", "median", colour=colour, role="median",
                  dataset=dataset, linewidth=2)
            st.line(ax, sub.assign(mean=st.positive(sub["mean"])), "lag", "mean", colour=colour, role="mean",
                  dataset=dataset, linewidth=1.4, linestyle="--")
            if fits is not None:
                row = fits[(fits["dataset"] == dataset) & (fits["state"] == state)]
                if not row.empty and np.isfinite(row["slope"].iloc[0]) and np.isfinite(row["intercept"].iloc[0]):
                    slope, intercept = float(row["slope"].iloc[0]), float(row["intercept"].iloc[0])
                    k = np.linspace(lag.min(), lag.max(), 50)
                    fit_line, = ax.plot(k, np.exp(intercept + slope * k), color=colour, linestyle=":", linewidth=1.6)
                    st.tag(fit_line, "fit", dataset)
                    notes.append((colour, rf"$\beta$ = {st.fmt(row['beta'].iloc[0])}, "
                                          rf"$t_{{1/2}}$ = {st.fmt(row['half_life'].iloc[0])}"))
        for i, (colour, text) in enumerate(reversed(notes)):
            ax.text(0.03, 0.04 + 0.075 * i, text, transform=ax.transAxes, fontsize=8, color=colour, ha="left",
                    va="bottom", bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=1))
        ax.set_title(f"state: {st.wrap(state, 60)}", fontsize=10)
        ax.set_xlabel("lag k (steps back from the loss)")
        ax.set_ylabel(r"$\|\delta(t,\,t-k)\|$ over losses t")
    st.hide_unused(axes, len(states))

    st.dataset_legend(fig, datasets, palette)
    grey = "0.3"
    style = [Line2D([], [], color=grey, linewidth=2, label="median"),
             Patch(facecolor=grey, alpha=0.25, label="q25–q75"),
             Line2D([], [], color=grey, linewidth=1.4, linestyle="--", label="mean")]
    if fits is not None:
        style.append(Line2D([], [], color=grey, linewidth=1.6, linestyle=":", label="fit of log mean\n"
                                                                                   r"$\beta = e^{\mathrm{slope}}$"))
    st.style_legend(fig, style)
    st.suptitle(fig, title or r"Vanishing profile: $\|\delta(t, t-k)\| = \|\partial J(t) / \partial\, net_{in}(t-k)\|$"
                            " against lag k",
              "\n".join(filter(None, (
                  f"{', '.join(others)}: the signal is " r"$\|\partial J(t) / \partial h(t-k)\|$" if others else "",
                  f"lags reached by fewer than {min_n} losses not drawn" if min_n > 1 else ""))) or None)
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette) -> Figure | None:
    return plot_profile(frames.get("profile"), frames.get("decay"), palette=palette)
