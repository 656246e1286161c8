"""Training curves of a study: train and dev loss per epoch."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import style as st

NAME = "training_curves"
CAPTION = "Train (solid) and dev (dashed) loss per epoch; one line per seed, a colour per scheme."
FRAMES = ("history",)


@st.whitegrid
def plot_training_curves(history: pd.DataFrame) -> Figure | None:
    """Train (solid) and dev (dashed) loss per epoch; a panel per (hidden size, learning rate), a colour per scheme,
    one line per seed."""
    if history is None or history.empty:
        return None
    history = st.cell_schemes(history)
    groups = list(history.groupby(["hidden_size", "learning_rate"], sort=False))
    fig, axes = st.run_figure(*st.grid(len(groups)))
    palette = st.category_palette(list(dict.fromkeys(history["scheme"])))
    for ax, ((h, lr), g) in zip(axes.flat, groups):
        for (scheme, seed), r in g.groupby(["scheme", "seed"], sort=False):
            ax.plot(r["epoch"] + 1, r["train_loss"], color=palette[scheme], lw=1.4)
            if "dev_loss" in r:
                ax.plot(r["epoch"] + 1, r["dev_loss"], color=palette[scheme], lw=1.4, ls="--")
        ax.set_title(f"H = {h}, lr = {lr:g}", fontsize=10)
        ax.set_xlabel("epochs trained")
        ax.set_ylabel("mean loss per word")
    st.hide_unused(axes, len(groups))
    st.legend(fig, st.line_handles(palette) + [Line2D([], [], color="0.3", label="train"),
                                               Line2D([], [], color="0.3", ls="--", label="dev")], "scheme")
    fig.suptitle("Training curves (one line per seed)")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_training_curves(frames.get("history"))
