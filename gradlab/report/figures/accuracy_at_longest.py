"""Accuracy at the longest distance per scheme, over a suite's studies."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...analysis.outcomes import accuracy_at_longest, pool_sparse
from .. import style as st

NAME = "accuracy_at_longest"
CAPTION = ("Accuracy at the longest distance per scheme: mean over seeds with its 95% interval, "
           "one colour per distribution of training distances.")
FRAMES = ("by_distance",)


def plot_accuracy_at_longest(frames: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Accuracy at the largest distance per scheme (mean over seeds, 95% interval), one panel per task."""
    bd = frames.get("by_distance")
    if bd is None or not len(bd):
        return None
    acc = accuracy_at_longest(pool_sparse(bd))
    parts, dists = st.facets(acc)
    schemes = st.scheme_order(acc["scheme"])
    palette = st.category_palette(dists)
    fig, axes = st.run_figure(len(parts), 1, w=max(4.0, 0.55 * len(schemes) + 1.5), h=2.8)
    for ax, part in zip(axes[:, 0], parts):
        sub = acc if part is None else acc[acc["part"] == part]
        for j, dist in enumerate(dists):
            d = sub if dist is None else sub[sub["distribution"] == dist]
            x = np.array([schemes.index(s) for s in d["scheme"]]) + (j - (len(dists) - 1) / 2) * 0.22
            err = np.vstack([d["mean"] - d["ci_low"], d["ci_high"] - d["mean"]]).astype(float)
            ax.errorbar(x, d["mean"], yerr=np.nan_to_num(err), fmt="o", ms=4, color=palette[dist], capsize=2)
        ax.set_xticks(range(len(schemes)), schemes, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("accuracy at longest")
        dmax = int(sub["distance"].max()) if len(sub) else 0
        ax.set_title(f"{part or ''} (distance {dmax})", fontsize=10)
    st.legend(fig, st.line_handles(palette), "training distances")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_accuracy_at_longest(frames)
