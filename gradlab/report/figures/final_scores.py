"""Final scores of a study's runs: dev loss and accuracy per eval task for each scheme."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import style as st

NAME = "final_scores"
CAPTION = "Final dev loss and accuracy per eval task for each scheme (mean ± sd over seeds)."
FRAMES = ("summary",)


def plot_final_scores(summary: pd.DataFrame) -> Figure | None:
    """Final dev loss and accuracy per eval task for each scheme: mean ± sd over seeds, a colour per
    (hidden size, learning rate)."""
    if summary is None or summary.empty:
        return None
    summary = st.cell_schemes(summary)
    metrics = ["dev_loss"] + [c for c in summary.columns if c.startswith("accuracy_")]
    metrics = [m for m in metrics if m in summary and summary[m].notna().any()]
    if not metrics:
        return None
    return _draw(summary, metrics)


@st.whitegrid
def _draw(summary: pd.DataFrame, metrics: list) -> Figure:
    fig, axes = st.run_figure(1, len(metrics), w=max(4.2, 0.7 * summary["scheme"].nunique() + 1.5))
    schemes = list(dict.fromkeys(summary["scheme"]))
    combos = list(dict.fromkeys(zip(summary["hidden_size"], summary["learning_rate"])))
    colours = dict(zip(combos, sns.color_palette("deep", len(combos))))
    width = 0.8 / len(combos)
    for ax, metric in zip(axes.flat, metrics):
        for j, combo in enumerate(combos):
            g = summary[(summary["hidden_size"] == combo[0]) & (summary["learning_rate"] == combo[1])]
            s = g.groupby("scheme")[metric].agg(["mean", "std"]).reindex(schemes)
            x = np.arange(len(schemes)) - 0.4 + width * (j + 0.5)
            ax.errorbar(x, s["mean"], yerr=s["std"].fillna(0), fmt="o", color=colours[combo], capsize=3)
        ax.set_xticks(np.arange(len(schemes)), schemes, rotation=30, ha="right")
        ax.set_title(metric, fontsize=10)
    st.legend(fig, [Line2D([], [], color=c, marker="o", ls="", label=f"H = {h}, lr = {lr:g}")
                    for (h, lr), c in colours.items()], "model")
    fig.suptitle("Final dev loss and accuracy per scheme (mean ± sd over seeds)")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_final_scores(frames.get("summary"))
