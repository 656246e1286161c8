"""Accuracy of a study's models against the dependency distance."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from .. import style as st

NAME = "accuracy_by_distance"
CAPTION = ("Accuracy against dependency distance on the dev data for each scheme: mean over "
           "seeds with the min-max band (dotted: chance for agreement and number). A scheme that learns a dependency "
           "longer than its tau keeps its accuracy above chance at those distances.")
FRAMES = ("by_distance",)


@st.whitegrid
def plot_accuracy_by_distance(by_distance: pd.DataFrame) -> Figure | None:
    """Accuracy against dependency distance: mean over seeds (line) with min-max band, a colour per scheme;
    a panel per (eval task, hidden size, learning rate)."""
    if by_distance is None or by_distance.empty:
        return None
    by_distance = st.cell_schemes(by_distance)
    groups = list(by_distance.groupby(["task", "hidden_size", "learning_rate"], sort=False))
    fig, axes = st.run_figure(*st.grid(len(groups)))
    palette = st.category_palette(list(dict.fromkeys(by_distance["scheme"])))
    for ax, ((task, h, lr), g) in zip(axes.flat, groups):
        for scheme, r in g.groupby("scheme", sort=False):
            s = r.groupby("distance")["accuracy"].agg(["mean", "min", "max", "std", "count"]).reset_index()
            ax.plot(s["distance"], s["mean"], color=palette[scheme], marker="o", ms=3, lw=1.6)
            ax.fill_between(s["distance"], s["min"], s["max"], color=palette[scheme], alpha=0.15, lw=0)
        if task in ("agreement", "number"):  # two choices: chance is 0.5
            ax.axhline(0.5, color="0.5", ls=":", lw=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{task}: H = {h}, lr = {lr:g}", fontsize=10)
        ax.set_xlabel("dependency distance (words)")
        ax.set_ylabel("accuracy")
    st.hide_unused(axes, len(groups))
    st.legend(fig, st.line_handles(palette), "scheme")
    fig.suptitle("Accuracy by dependency distance (mean over seeds, band: min-max)")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_accuracy_by_distance(frames.get("by_distance"))
