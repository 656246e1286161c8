"""Truncation gap: relative error of the TBPTT(τ) corpus gradient against τ; and the panel builder it shares
with the cosine figure (:mod:`.cosine`) and the block-scheme bars (:mod:`.blocks`)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import style as st
from ..frames import columns

NAME = "gap"
CAPTION = ("Truncation gap of TBPTT(tau): ||g_tau - g_full|| / ||g_full|| of the corpus gradient for U, V and "
           "all parameters, with the estimate beta^(tau+1) from the fitted decay (dashed; an estimate, not a bound).")
FRAMES = ("gap",)
#: Added to the caption of a report with cells other than the Elman one.
CELLS_NOTE = "Each row shows its cell's own parameters (PyTorch's names for GRU and LSTM) and all of them together."

GAP_COLUMNS = columns("gap")

#: What the TBPTT panels can show of the gap frame: column -> (log y axis, y label, default title).
MEASURES = {
    "rel_error": (True, st.REL_ERROR_LABEL,
                  "What truncation loses: relative error of the TBPTT(τ) gradient (corpus)"),
    "cosine": (False, r"cosine$(g_\tau,\, g_{\mathrm{full}})$",
               "Direction kept by truncation: cosine between the TBPTT(τ) and the full gradient"),
}


def gap_axes(axes, states, parameters, xlabel=st.TAU_LABEL, ylabel=st.REL_ERROR_LABEL):
    """Panels of a states (rows) x parameters (columns) grid; axis labels on the outer panels only.

    ``parameters``: the columns, or {state: its row's columns} (:func:`gradlab.report.style.row_parameters`;
    a None column is an empty panel, hidden)."""
    for r, state in enumerate(states):
        row = parameters[state] if isinstance(parameters, Mapping) else parameters
        for c, parameter in enumerate(row):
            ax = axes[r, c]
            if parameter is None:
                ax.set_visible(False)
                continue
            ax.set_title(f"parameter {parameter}  ·  state:\n{st.wrap(state, 44)}", fontsize=10)
            yield ax, state, parameter
            # after the caller has drawn: seaborn sets the labels to column names
            ax.set_xlabel(xlabel if r == len(states) - 1 else "")
            ax.set_ylabel(ylabel if c == 0 else "")


@st.styled
def plot_tbptt(gap: pd.DataFrame, measure: str, *, datasets: Sequence[str] | None = None,
               states: Sequence[str] | None = None, palette: Mapping[str, object] | None = None,
               parameters: Sequence[str] | None = None, references: Sequence[float] = st.REFERENCES,
               show_estimate: bool = True, title: str | None = None) -> Figure | None:
    """One measured column of the gap frame's TBPTT rows against τ: :func:`plot_gap` and :func:`plot_cosine`.

    One panel per parameter (columns) and model state (rows; with a ``cell`` column, per cell and state,
    each row with its cell's parameters: :func:`gradlab.report.style.row_parameters`), one colour per
    dataset. ``measure``
    ``"rel_error"``: log y axis, the estimate β^(τ+1) dashed (``show_estimate``), the ``references``
    levels dotted and a legend of the line styles; ``"cosine"``: linear y axis with the ideal value 1
    dotted (``references`` and ``show_estimate`` do not apply).
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {list(MEASURES)}; received {measure!r}")
    log, ylabel, default_title = MEASURES[measure]
    if not st.check_frame(gap, "gap", GAP_COLUMNS):
        return None
    gap = st.by_cell(gap)
    datasets, palette = st.dataset_levels(gap, datasets, palette)
    states = st.levels(gap, "state", states, "states")
    data = st.select(gap, datasets, states)
    data = data[data["family"].astype(str) == "tbptt"].assign(parameter=lambda d: d["parameter"].astype(str))
    if data.empty:
        return None
    parameters = st.row_parameters(data, states, parameters)
    data = data.sort_values("tau")
    show_estimate = show_estimate and log

    fig, axes = st.figure(len(states), len(parameters[states[0]]), sharex=True, sharey=True)
    for ax, state, parameter in gap_axes(axes, states, parameters, ylabel=ylabel):
        if log:
            ax.set_yscale("log")
        for dataset in datasets:
            sub = data[(data["dataset"] == dataset) & (data["state"] == state) & (data["parameter"] == parameter)]
            if sub.empty:
                continue
            shown = sub.assign(**{measure: st.positive(sub[measure])}) if log else sub
            st.line(ax, shown, "tau", measure, colour=palette[dataset], role=measure, dataset=dataset, linewidth=2,
                    marker="o", markersize=3.5)
            if show_estimate and np.isfinite(sub["estimate"].to_numpy(dtype=float)).any():
                st.line(ax, sub.assign(estimate=st.positive(sub["estimate"])), "tau", "estimate",
                        colour=palette[dataset], role="estimate", dataset=dataset, linewidth=1.4, linestyle="--")
        if log:
            st.references(ax, references)
        else:
            st.tag(ax.axhline(1.0, **st.REF_STYLE), "ref", "1")
    st.dataset_legend(fig, datasets, palette)
    if log:
        style = [Line2D([], [], color="0.3", linewidth=2, marker="o", markersize=3.5, label="measured")]
        if show_estimate:
            style.append(Line2D([], [], color="0.3", linewidth=1.4, linestyle="--",
                                label=r"estimate $\beta^{\tau+1}$ (fitted decay; not a bound)"))
        style.append(Line2D([], [], **st.REF_STYLE, label="reference\nlevels"))
        st.style_legend(fig, style)
    st.suptitle(fig, title or default_title)
    return fig


def plot_gap(gap: pd.DataFrame, *, datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
             palette: Mapping[str, object] | None = None, parameters: Sequence[str] | None = None,
             references: Sequence[float] = st.REFERENCES, show_estimate: bool = True,
             title: str | None = None) -> Figure | None:
    """Truncation gap: relative error of the TBPTT(τ) corpus gradient against τ.

    One panel per parameter (U, V, all; columns) and model state (rows), one colour per
    dataset, log y axis. Solid: measured ‖g_τ − g_full‖/‖g_full‖; dashed: the estimate
    β^(τ+1) that the fitted decay gives (``estimate`` column; not a bound: trained models
    can lie above it); dotted grey: the 10% and 1%
    reference levels. Only ``family == "tbptt"`` rows are drawn (block schemes:
    :func:`gradlab.report.figures.blocks.plot_blocks`).

    Parameters
    ----------
    gap : DataFrame
        The ``gap`` report frame.
    datasets, states, parameters : sequence of str, optional
        Levels to draw, in this order (default: all; parameters U, V, W, all first).
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`gradlab.report.style.dataset_palette`);
        default: a palette of this figure's datasets.
    references : sequence of float
        Relative-error levels drawn as horizontal lines.
    show_estimate : bool
        Draw the β^(τ+1) estimate.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``gap`` has no TBPTT rows.
    """
    return plot_tbptt(gap, "rel_error", datasets=datasets, states=states, palette=palette, parameters=parameters,
                      references=references, show_estimate=show_estimate, title=title)


def draw(frames: Mapping[str, pd.DataFrame], palette) -> Figure | None:
    return plot_gap(frames.get("gap"), palette=palette)
