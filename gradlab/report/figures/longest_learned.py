"""Longest distance learned against τ, over a suite's studies."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...analysis.outcomes import LEARNED_THRESHOLD, longest_learned, pool_sparse, seed_interval, tau_of_scheme
from .. import style as st

NAME = "longest_learned"
CAPTION = (f"Longest distance learned (the largest with accuracy >= {LEARNED_THRESHOLD}) "
           "against tau, mean over seeds with its 95% band; dotted: full BPTT; dashed: tau + 1, the "
           "longest distance whose cause the window reaches.")
FRAMES = ("by_distance",)


def plot_longest_learned(frames: Mapping[str, pd.DataFrame]) -> Figure | None:
    """Longest distance learned (the largest with accuracy >= 0.9) against tau, per task; full BPTT dotted."""
    bd = frames.get("by_distance")
    if bd is None or not len(bd):
        return None
    ll = longest_learned(pool_sparse(bd))
    ll["tau"] = ll["scheme"].map(tau_of_scheme)
    parts, dists = st.facets(ll)
    palette = st.category_palette(dists)
    fig, axes = st.run_figure(1, len(parts), w=3.6, h=3.0)
    for ax, part in zip(axes[0], parts):
        sub = ll if part is None else ll[ll["part"] == part]
        taus = sorted(sub["tau"].dropna().unique())
        for dist in dists:
            d = sub if dist is None else sub[sub["distribution"] == dist]
            tb = d[d["tau"].notna()]
            stats_ = [seed_interval(tb.loc[tb["tau"] == t, "longest_learned"]) for t in taus]
            ax.plot(taus, [s[0] for s in stats_], "o-", color=palette[dist], ms=4)
            ax.fill_between(taus, np.maximum([s[1] for s in stats_], 0), [s[2] for s in stats_], color=palette[dist],
                            alpha=0.15)
            full = d.loc[d["scheme"] == "full", "longest_learned"]
            if len(full):
                ax.axhline(full.mean(), color=palette[dist], ls=":", lw=1)
        if taus:
            ax.plot(taus, np.asarray(taus) + 1, color="0.5", ls="--", lw=1, label="window: tau + 1")
        ax.set_xlabel("tau of TBPTT(tau)")
        ax.set_ylabel("longest distance learned")
        ax.set_title(part or "", fontsize=10)
    st.legend(fig, st.line_handles(palette), "training distances")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_longest_learned(frames)
