"""(t, k) heatmap of the mean ‖δ(t, t−k)‖ over sentences."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .. import style as st
from ..frames import columns

NAME = "heatmap"
CAPTION = "Mean ||delta(t, t-k)|| over sentences for every loss step t and lag k."
FRAMES = ("heatmap",)

HEATMAP_COLUMNS = columns("heatmap")


@st.styled
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
    heatmap = st.by_cell(heatmap)
    if not st.check_frame(heatmap, "heatmap", HEATMAP_COLUMNS):
        return None
    if not isinstance(max_facets, (int, np.integer)) or max_facets < 1:
        raise ValueError(f"max_facets must be a positive integer; received {max_facets!r}")
    datasets = st.levels(heatmap, "dataset", datasets, "datasets")
    states = st.levels(heatmap, "state", states, "states")
    total = len(datasets) * len(states)
    if len(states) > max_facets:
        states = states[:max_facets]
    datasets = datasets[:max(1, max_facets // len(states))]
    data = st.select(heatmap, datasets, states)
    values = st.positive(data["mean"])
    finite = values[np.isfinite(values)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size else LogNorm(vmin=1e-3, vmax=1.0)
    t_max, lag_max = int(data["t"].max()), int(data["lag"].max())

    fig, axes = st.figure(len(datasets), len(states), size=(4.0, 3.2), extra_width=1.2)
    mesh = None
    for r, dataset in enumerate(datasets):
        for c, state in enumerate(states):
            ax = axes[r, c]
            sub = data[(data["dataset"] == dataset) & (data["state"] == state)]
            ax.set_title(f"{st.wrap(dataset, 48)}\n{st.wrap(state, 48)}", fontsize=9)
            if sub.empty:
                st.note(ax, "no data")
                continue
            grid = (sub.assign(mean=st.positive(sub["mean"]))
                    .pivot_table(index="lag", columns="t", values="mean", aggfunc="mean")
                    .reindex(index=range(lag_max + 1), columns=range(t_max + 1)))
            # pcolormesh, as seaborn.heatmap does inside, but without the full figure redraw that
            # seaborn.heatmap runs on every call; rasterized: thousands of cells become one image
            # in the SVG rather than one path each.
            mesh = ax.pcolormesh(np.arange(t_max + 2) - 0.5, np.arange(lag_max + 2) - 0.5,
                                 np.ma.masked_invalid(grid.to_numpy(dtype=float)), cmap="viridis", norm=norm,
                                 rasterized=True)
            st.tag(mesh, "heatmap", dataset)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            ax.grid(False)
            ax.set_xlabel("t (position of the loss)" if r == len(datasets) - 1 else "")
            ax.set_ylabel("lag k" if c == 0 else "")
            ax.tick_params(labelsize=8)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, label=r"mean $\|\delta(t,\,t-k)\|$ over sentences (log scale)", shrink=0.9)
    shown = len(datasets) * len(states)
    st.suptitle(fig, title or r"Error signal by loss position t and lag k: mean $\|\delta(t, t-k)\|$",
              None if shown == total else f"showing {shown} of {total} dataset × state panels "
                                          f"(max_facets = {max_facets})")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette) -> Figure | None:
    return plot_heatmap(frames.get("heatmap"))
