"""Block schemes: relative error of each scheme's corpus gradient against full BPTT."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .. import style as st
from .gap import GAP_COLUMNS, gap_axes

NAME = "blocks"
CAPTION = ("Block schemes (chunked 'detach every h steps', Mikolov's -bptt/-bptt-block): relative error "
           "against full BPTT.")
FRAMES = ("gap",)


@st.styled
def plot_blocks(gap: pd.DataFrame, *, datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                palette: Mapping[str, object] | None = None, parameters: Sequence[str] | None = None,
                references: Sequence[float] = st.REFERENCES, title: str | None = None) -> Figure | None:
    """Block schemes: relative error of each scheme's corpus gradient, one bar per dataset.

    One panel per parameter (columns) and model state (rows; with a ``cell`` column, per cell and state,
    each row with its cell's parameters); bars grouped by scheme label
    (``block:k1,k2``: blocks of k1 steps carried back to k2 − k1 steps before the block; the
    chunked scheme "detach every h steps" is ``block:h,h``), coloured by dataset, log y
    axis, with the 10% and 1% reference levels. Only ``family == "block"`` rows are drawn.

    Parameters
    ----------
    gap : DataFrame
        The ``gap`` report frame.
    datasets, states, parameters : sequence of str, optional
        Levels to draw, in this order.
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`gradlab.report.style.dataset_palette`);
        default: a palette of this figure's datasets.
    references : sequence of float
        Relative-error levels drawn as horizontal lines.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``gap`` has no block-scheme rows.
    """
    if not st.check_frame(gap, "gap", GAP_COLUMNS):
        return None
    gap = st.by_cell(gap)
    datasets, palette = st.dataset_levels(gap, datasets, palette)
    states = st.levels(gap, "state", states, "states")
    data = st.select(gap, datasets, states)
    data = data[data["family"].astype(str) == "block"].assign(parameter=lambda d: d["parameter"].astype(str),
                                                                scheme=lambda d: d["scheme"].astype(str))
    if data.empty:
        return None
    parameters = st.row_parameters(data, states, parameters)
    schemes = [str(s) for s in pd.unique(data["scheme"])]
    width = max(st.PANEL_SIZE[0], 0.5 + 0.35 * len(schemes) * max(1, len(datasets)) / 2)
    fig, axes = st.figure(len(states), len(parameters[states[0]]), sharey=True,
                          size=(width, st.PANEL_SIZE[1] + 0.4))
    ylabel = r"relative error $\|g - g_{\mathrm{full}}\| \,/\, \|g_{\mathrm{full}}\|$"
    for ax, state, parameter in gap_axes(axes, states, parameters, xlabel="block scheme", ylabel=ylabel):
        sub = data[(data["state"] == state) & (data["parameter"] == parameter)]
        sub = sub.assign(rel_error=st.positive(sub["rel_error"]))
        ax.set_yscale("log")
        if sub["rel_error"].notna().any():
            sns.barplot(data=sub, x="scheme", y="rel_error", hue="dataset", order=schemes, hue_order=datasets,
                        palette={d: palette[d] for d in datasets}, saturation=1, errorbar=None, legend=False,
                        ax=ax)
            for dataset, container in zip([d for d in datasets if d in set(sub["dataset"])], ax.containers):
                st.tag(container, "bars", dataset)
        else:
            st.note(ax, "no data")
        st.references(ax, references)
        ax.tick_params(axis="x", labelrotation=30)
    st.dataset_legend(fig, datasets, palette, patches=True)
    st.suptitle(fig, title or "Block schemes: relative error of the gradient against full BPTT (corpus)",
              "block:k1,k2 = blocks of k1 steps, each loss carried back k2 − k1 steps before its block; "
              "block:h,h = detach every h steps")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette) -> Figure | None:
    return plot_blocks(frames.get("gap"), palette=palette)
