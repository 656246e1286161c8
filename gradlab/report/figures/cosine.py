"""Direction of the truncated gradient: cosine(g_τ, g_full) against τ (the gap figure's panels)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.figure import Figure

from .gap import plot_tbptt

NAME = "cosine"
CAPTION = "cos(g_tau, g_full) of the corpus gradient."
FRAMES = ("gap",)


def plot_cosine(gap: pd.DataFrame, *, datasets: Sequence[str] | None = None, states: Sequence[str] | None = None,
                palette: Mapping[str, object] | None = None, parameters: Sequence[str] | None = None,
                title: str | None = None) -> Figure | None:
    """Direction of the truncated gradient: cosine(g_τ, g_full) against τ.

    Same layout as :func:`gradlab.report.figures.gap.plot_gap` (parameters as columns, states as rows, one
    colour per dataset), linear y axis with the ideal value 1 as a dotted line. Only TBPTT rows.

    Parameters
    ----------
    gap : DataFrame
        The ``gap`` report frame.
    datasets, states, parameters : sequence of str, optional
        Levels to draw, in this order.
    palette : mapping of str to colour, optional
        Dataset colours shared by the report's figures (see :func:`gradlab.report.style.dataset_palette`);
        default: a palette of this figure's datasets.
    title : str, optional
        Replaces the default figure title.

    Returns
    -------
    Figure or None
        ``None`` when ``gap`` has no TBPTT rows.
    """
    return plot_tbptt(gap, "cosine", datasets=datasets, states=states, palette=palette, parameters=parameters,
                      title=title)


def draw(frames: Mapping[str, pd.DataFrame], palette) -> Figure | None:
    return plot_cosine(frames.get("gap"), palette=palette)
