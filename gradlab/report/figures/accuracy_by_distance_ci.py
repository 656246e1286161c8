"""Accuracy by distance per scheme with its 95% band, over a suite's studies."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from ...analysis.outcomes import accuracy_by_distance
from .. import style as st

NAME = "accuracy_by_distance_ci"
CAPTION = ("Accuracy at the dependent step by distance, per scheme: mean over seeds with its "
           "95% band; rows: tasks, columns: how the training distances are spread.")
FRAMES = ("by_distance",)


def plot_accuracy_by_distance_ci(frames: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Accuracy by distance per scheme, mean over seeds with its 95% band; rows: tasks, columns: distributions."""
    bd = frames.get("by_distance")
    if bd is None or not len(bd):
        return None
    acc = accuracy_by_distance(bd)
    parts, dists = st.facets(acc)
    schemes = st.scheme_order(acc["scheme"])
    palette = st.category_palette(schemes)
    fig, axes = st.run_figure(len(parts), len(dists), w=3.4, h=2.6)
    for i, part in enumerate(parts):
        for j, dist in enumerate(dists):
            ax = axes[i, j]
            sub = acc
            if part is not None:
                sub = sub[sub["part"] == part]
            if dist is not None:
                sub = sub[sub["distribution"] == dist]
            for scheme in schemes:
                d = sub[sub["scheme"] == scheme].sort_values("distance")
                if not len(d):
                    continue
                ax.plot(d["distance"], d["mean"], color=palette[scheme], lw=1.2)
                ax.fill_between(d["distance"], d["ci_low"].clip(0, 1), d["ci_high"].clip(0, 1), color=palette[scheme],
                                alpha=0.12)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(" / ".join(str(x) for x in (part, dist) if x is not None), fontsize=9)
            ax.set_xlabel("distance (words)")
            ax.set_ylabel("accuracy")
    st.legend(fig, st.line_handles(palette), "scheme")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_accuracy_by_distance_ci(frames)
