"""Per-sentence truncation gap: distribution over sentences of the relative error against τ."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import style as st
from ..frames import columns

NAME = "gap_sentences"
CAPTION = ("The same relative error per sentence (each sentence's own losses): median and "
           "quantile bands over sentences.")
FRAMES = ("gap_sentences",)

GAP_SENTENCE_COLUMNS = columns("gap_sentences")


@st.styled
def plot_gap_sentences(gap_sentences: pd.DataFrame, *, parameter: str = "all",
                       datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                       palette: Mapping[str, object] | None = None, references: Sequence[float] = st.REFERENCES,
                       title: str | None = None) -> Figure | None:
    """Per-sentence truncation gap: distribution over sentences of the relative error against τ.

    One panel per model state, one colour per dataset, log y axis: the median over sentences
    (solid), the q25–q75 band (dark shade) and the q05–q95 band (light shade), with the 10%
    and 1% reference levels. Sentences no longer than τ have error 0 (full BPTT); they pull
    the lower quantiles to the bottom of the axis.

    Parameters
    ----------
    gap_sentences : DataFrame
        The ``gap_sentences`` report frame.
    parameter : str
        Which parameter's error to show (default ``"all"``: U, V and W together).
    datasets, states : sequence of str, optional
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
        ``None`` when ``gap_sentences`` is empty.
    """
    gap_sentences = st.by_cell(gap_sentences)
    if not st.check_frame(gap_sentences, "gap_sentences", GAP_SENTENCE_COLUMNS):
        return None
    allowed = [str(p) for p in pd.unique(gap_sentences["parameter"].astype(str))]
    if parameter not in allowed:
        raise ValueError(f"parameter must be one of {allowed} (the parameters in the gap_sentences frame); "
                         f"received {parameter!r}")
    datasets, palette = st.dataset_levels(gap_sentences, datasets, palette)
    states = st.levels(gap_sentences, "state", states, "states")
    data = st.select(gap_sentences, datasets, states)
    data = data[data["parameter"].astype(str) == parameter]
    quantiles = (data.groupby(["dataset", "state", "tau"], sort=True)["rel_error"]
                 .quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack().reset_index())
    quantiles.columns = ["dataset", "state", "tau", "q05", "q25", "q50", "q75", "q95"]

    fig, axes = st.figure(*st.grid(len(states)), sharex=True, sharey=True)
    for ax, state in zip(axes.flat, states):
        ax.set_yscale("log")
        for dataset in datasets:
            sub = quantiles[(quantiles["dataset"] == dataset) & (quantiles["state"] == state)].sort_values("tau")
            if sub.empty:
                continue
            colour = palette[dataset]
            tau = sub["tau"].to_numpy(dtype=float)
            st.tag(ax.fill_between(tau, sub["q05"], sub["q95"], color=colour, alpha=0.1, linewidth=0), "band90",
                   dataset)
            st.tag(ax.fill_between(tau, sub["q25"], sub["q75"], color=colour, alpha=0.25, linewidth=0), "band", dataset)
            st.line(ax, sub.assign(q50=st.positive(sub["q50"])), "tau", "q50", colour=colour, role="median",
                  dataset=dataset, linewidth=2)
        st.references(ax, references)
        ax.set_title(f"parameter {parameter}  ·  state:\n{st.wrap(state, 44)}", fontsize=10)
        ax.set_xlabel(st.TAU_LABEL)
        ax.set_ylabel(st.REL_ERROR_LABEL + "\nper sentence")
    st.hide_unused(axes, len(states))
    st.dataset_legend(fig, datasets, palette)
    grey = "0.3"
    st.style_legend(fig, [Line2D([], [], color=grey, linewidth=2, label="median over\nsentences"),
                        Patch(facecolor=grey, alpha=0.35, label="q25–q75"),
                        Patch(facecolor=grey, alpha=0.12, label="q05–q95"),
                        Line2D([], [], **st.REF_STYLE, label="reference\nlevels")])
    st.suptitle(fig, title or "What truncation loses, sentence by sentence: distribution of the relative error")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette) -> Figure | None:
    return plot_gap_sentences(frames.get("gap_sentences"), palette=palette)
