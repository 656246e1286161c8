"""Annotated dependencies: the signal the dependent loss sends back to its source, and the share TBPTT(τ) keeps."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import style as st
from ..frames import columns

NAME = "dependencies"
CAPTION = ("Annotated dependencies: the signal the dependent loss sends back to the position that "
           "determines it, by lag, and the share of it that TBPTT(tau) keeps.")
FRAMES = ("dependencies", "dependency_kept")
#: Added to the caption of a report with cells other than the Elman one.
CELLS_NOTE = "The dependency signal is measured for the Elman cell only: the other cells have no rows here."

DEPENDENCY_COLUMNS = columns("dependencies")
KEPT_COLUMNS = columns("dependency_kept")
#: Seed of every random choice in the figure (the jitter).
JITTER_SEED = 0


@st.styled
def plot_dependencies(dependencies: pd.DataFrame, dependency_kept: pd.DataFrame | None = None, *,
                      datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                      palette: Mapping[str, object] | None = None, title: str | None = None) -> Figure | None:
    """Annotated dependencies: the signal the dependent loss sends back to the source.

    One row of panels per model state, one colour per dataset. Left: signal_rel =
    ‖δ(dependent, source)‖ / ‖δ(dependent, dependent)‖ against the lag dependent − source, one point
    per dependency (jittered) and the mean per lag as a line, log y axis. Right: the
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
        Dataset colours shared by the report's figures (see :func:`gradlab.report.style.dataset_palette`);
        default: a palette of this figure's datasets.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when both frames are empty (data without annotated dependencies).
    """
    dependencies, dependency_kept = st.by_cell(dependencies), st.by_cell(dependency_kept)
    has_dep = st.check_frame(dependencies, "dependencies", DEPENDENCY_COLUMNS)
    has_kept = st.check_frame(dependency_kept, "dependency_kept", KEPT_COLUMNS)
    if not has_dep and not has_kept:
        return None
    both = pd.concat([f[["dataset", "state"]] for f, ok in ((dependencies, has_dep), (dependency_kept, has_kept))
                      if ok])
    datasets, palette = st.dataset_levels(both, datasets, palette)
    states = st.levels(both, "state", states, "states")
    deps = st.select(dependencies, datasets, states) if has_dep else None
    kept = st.select(dependency_kept, datasets, states).sort_values("tau") if has_kept else None

    fig, axes = st.figure(len(states), 2)
    for r, state in enumerate(states):
        left, right = axes[r]
        left.set_title(f"signal at the source  ·  state:\n{st.wrap(state, 44)}", fontsize=10)
        right.set_title(f"share kept by TBPTT(τ)  ·  state:\n{st.wrap(state, 44)}", fontsize=10)
        sub = deps[deps["state"] == state] if deps is not None else None
        if sub is None or sub.empty:
            st.note(left, "no dependency rows")
        else:
            sub = sub.assign(signal_rel=st.positive(sub["signal_rel"]))
            left.set_yscale("log")
            # the jitter comes from a fixed seed, so the same rows always give the same figure bytes
            rng = np.random.default_rng(JITTER_SEED)
            for dataset in datasets:
                pts = sub[sub["dataset"] == dataset]
                if not pts.empty:
                    left.scatter(pts["lag"].to_numpy(dtype=float) + rng.uniform(-0.15, 0.15, len(pts)),
                                 pts["signal_rel"].to_numpy(dtype=float), s=2.5 ** 2, color=palette[dataset],
                                 alpha=0.35, linewidths=0, rasterized=True)
            means = sub.groupby(["dataset", "lag"], sort=True)["signal_rel"].mean().reset_index()
            for dataset in datasets:
                m = means[means["dataset"] == dataset]
                if not m.empty:
                    st.line(left, m, "lag", "signal_rel", colour=palette[dataset], role="mean", dataset=dataset,
                          linewidth=2, marker="o", markersize=4)
            left.set_xlabel("lag dependent − source (steps)")
            left.set_ylabel(r"$\|\delta(\mathrm{dependent}, \mathrm{source})\| \,/\, "
                            r"\|\delta(\mathrm{dependent}, \mathrm{dependent})\|$")
        ksub = kept[kept["state"] == state] if kept is not None else None
        if ksub is None or ksub.empty:
            st.note(right, "no kept-share rows")
        else:
            for dataset in datasets:
                k = ksub[ksub["dataset"] == dataset]
                if not k.empty:
                    st.line(right, k, "tau", "kept_share", colour=palette[dataset], role="kept", dataset=dataset,
                          linewidth=2, marker="o", markersize=3.5, drawstyle="steps-post")
            right.set_ylim(-0.03, 1.03)
            right.set_xlabel(st.TAU_LABEL)
            right.set_ylabel("share of dependency signal kept")
    st.dataset_legend(fig, datasets, palette)
    if has_dep:
        st.style_legend(fig, [Line2D([], [], color="0.3", marker="o", linestyle="none", alpha=0.4, markersize=4,
                                   label="one dependency"),
                            Line2D([], [], color="0.3", marker="o", linewidth=2, markersize=4,
                                   label="mean per lag")])
    st.suptitle(fig, title or "Dependencies: what the dependent loss sends back to its source, "
                              "and what TBPTT(τ) keeps")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette) -> Figure | None:
    if "dependencies" not in frames:   # no dependency rows: the kept shares alone are not drawn
        return None
    return plot_dependencies(frames["dependencies"], frames.get("dependency_kept"), palette=palette)
