"""Decay summary: fitted β, half-life and reach beside the properties of U, per dataset × state."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from .. import style as st
from ..frames import columns

NAME = "decay"
CAPTION = ("Fitted per-step decay factor beta and half-life, the reach above the floor, mean f', and U's "
           "spectral radius, largest singular value and the growth bound sigma_max * max f'.")
FRAMES = ("decay",)
#: Added to the caption of a report with cells other than the Elman one.
CELLS_NOTE = "U's statistics (spectral radius, sigma_max, mean f', growth bound) are the Elman cell's only."

DECAY_COLUMNS = columns("decay")


_DECAY_PANELS = (
    ("beta", r"decay factor per step $\beta = e^{\mathrm{slope}}$", 1.0),
    ("half_life", r"half-life $\ln 2 / (-\ln \beta)$ (steps)", None),
    ("reach", "reach: largest lag with\nrel. mean ≥ floor (steps)", None),
    ("mean_fprime", r"mean $f'(net_{in})$ over tokens", None),
    ("spectral_radius", r"spectral radius $\rho(U)$", 1.0),
    ("sigma_max", r"largest singular value $\sigma_{\max}(U)$", 1.0),
    ("growth_bound", "growth bound per step\n" r"$\sigma_{\max}(U) \cdot \max f'$", 1.0),
)


@st.styled
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
        Dataset colours shared by the report's figures (see :func:`gradlab.report.style.dataset_palette`);
        default: a palette of this figure's datasets.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``decay`` is empty.
    """
    elman_only = any(c != "elman" for c in st.cells_of(decay))
    decay = st.by_cell(decay)
    if not st.check_frame(decay, "decay", DECAY_COLUMNS):
        return None
    datasets, palette = st.dataset_levels(decay, datasets, palette)
    states = st.levels(decay, "state", states, "states")
    data = st.select(decay, datasets, states)
    width = max(3.6, 0.9 + 0.45 * len(states) * len(datasets))
    fig, axes = st.figure(2, 4, size=(width, 3.2))
    slot = 0.8 / len(datasets)  # seaborn's dodge: bars of one x share 0.8 units
    for ax, (column, label, one) in zip(axes.flat, _DECAY_PANELS):
        values = data[column].to_numpy(dtype=float)
        plotted = data.assign(**{column: np.where(np.isfinite(values), values, np.nan)})
        if plotted[column].notna().any():
            sns.barplot(data=plotted, x="state", y=column, hue="dataset", order=states, hue_order=datasets,
                        palette={d: palette[d] for d in datasets}, saturation=1, errorbar=None, legend=False,
                        ax=ax)
            ax.set_xticks(range(len(states)), [st.wrap(state, 24) for state in states])
            present = [d for d in datasets if plotted.loc[plotted["dataset"] == d, column].notna().any()]
            for dataset, container in zip(present, ax.containers):
                st.tag(container, column, dataset)
                ax.bar_label(container, fmt="%.3g", fontsize=7, padding=1)
        trans = blended_transform_factory(ax.transData, ax.transAxes)
        for _, row in data[np.isinf(values)].iterrows():
            x = states.index(row["state"]) - 0.4 + slot * (datasets.index(row["dataset"]) + 0.5)
            text = ax.text(x, 0.9, "∞", transform=trans, ha="center", va="center", fontsize=12,
                           color=palette[row["dataset"]])
            st.tag(text, f"inf:{column}", row["dataset"])
        if one is not None:
            st.tag(ax.axhline(one, **st.REF_STYLE), "ref", "1")
        finite = [v for v in values if np.isfinite(v)] + ([one] if one is not None else [])
        top = max(finite) if finite else 0.0
        ax.set_xlim(-0.5, len(states) - 0.5)
        ax.set_ylim(0, 1.2 * top if top > 0 else 1.0)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    st.hide_unused(axes, len(_DECAY_PANELS))
    st.dataset_legend(fig, datasets, palette, patches=True)
    floors = sorted({st.fmt(f) for f in data["floor"]})
    st.suptitle(fig, title or "Decay of the error signal with lag, and the recurrent matrix U",
              f"β: least-squares fit of ln mean ‖δ(t, t−k)‖ against k;  reach floor = {', '.join(floors)}"
              + ("\nmean f′, ρ(U), σ_max(U) and the growth bound: Elman cell only (no bars for the other cells)"
                 if elman_only else ""))
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette) -> Figure | None:
    return plot_decay(frames.get("decay"), palette=palette)
