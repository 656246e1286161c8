"""What every figure of gradlab shares: figure and panel sizes, palettes, legends, reference lines, labels.

Figures are made with :class:`matplotlib.figure.Figure` directly, not through pyplot, so no backend is
selected, no global figure registry fills up, and the caller only has to drop its reference (or pass the
figure to :func:`gradlab.report.html.write_figure`, which closes it).

Conventions of the report's figures (one module each in :mod:`gradlab.report.figures`):

- one colour per dataset: pass ``palette=dataset_palette(<all datasets of the report>)`` to every figure so
  that a dataset has the same colour everywhere, also in figures that show only some datasets (without it,
  each figure colours its own datasets in order of first appearance, or in the order given by
  ``datasets=``); the first figure legend lists exactly the datasets drawn, the second (where there is one)
  explains line styles;
- model states are facets (panel rows or columns), or the x axis of the bar charts; a report of several
  cells (its tables have a ``cell`` column) facets by cell and state together (:func:`by_cell`: the panels
  of one state's cells side by side, each titled with its cell), so that every figure compares the cells;
- ``datasets=`` / ``states=`` select and order the levels to draw; an unknown level is an error naming the
  allowed values;
- **an empty frame gives** ``None`` (there is nothing to draw: the page leaves the figure out), a frame that
  lacks a contract column (:func:`gradlab.report.frames.columns`) raises ``ValueError`` naming the columns;
- artists that carry data have hidden labels ``"_<role>|<dataset>"`` (for example
  ``"_estimate|agreement:distance=8"``), so tests and notebooks can find them; hidden labels never appear in
  legends.

Zeros on a log axis (for example a relative error of exactly 0 once τ covers the whole sentence) cannot be
drawn; matplotlib clips them to the bottom of the axis.

The figures of studies and suites colour schemes or distributions with :func:`category_palette` and list
them with :func:`legend`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from functools import wraps

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from ..analysis.outcomes import tau_of_scheme
from ..cells import ELMAN, cell

__all__ = ["dataset_palette", "category_palette", "styled", "whitegrid", "figure", "legend", "line_handles",
           "dataset_legend", "style_legend", "references", "wrap", "PANEL_SIZE", "REFERENCES", "REF_STYLE"]

#: Parameters in the order their panels appear; others follow in order of appearance.
PARAMETER_ORDER = ELMAN.names + ("all",)

#: Inches per panel (width, height).
PANEL_SIZE = (4.3, 3.3)

#: Reference levels of the relative error drawn as horizontal lines (10% and 1%).
REFERENCES = (0.10, 0.01)

REF_STYLE = dict(color="0.35", linestyle=":", linewidth=1.2, zorder=1)
NOTE_STYLE = dict(ha="center", va="center", fontsize=10, color="0.4")

TAU_LABEL = r"truncation $\tau$ (TBPTT keeps lags $0 \ldots \tau$)"
REL_ERROR_LABEL = r"relative error $\|g_\tau - g_{\mathrm{full}}\| \,/\, \|g_{\mathrm{full}}\|$"


# --------------------------------------------------------------------------- style contexts

def styled(func: Callable) -> Callable:
    """Build the figure inside seaborn's whitegrid style and notebook context, without touching global state."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
            return func(*args, **kwargs)

    return wrapper


def whitegrid(func: Callable) -> Callable:
    """Build the figure inside seaborn's whitegrid style (matplotlib's font sizes), without global state."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        with sns.axes_style("whitegrid"):
            return func(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- frames and levels

def check_frame(frame, name: str, columns: Sequence[str]) -> bool:
    """Raise if ``frame`` is not a DataFrame with ``columns``; return whether it has rows (None: no rows)."""
    if frame is None:
        return False
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (the '{name}' report frame); "
                        f"received {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame is missing column(s) {missing}; expected at least {list(columns)}, "
                         f"received {list(frame.columns)}. Pass the frame the analysis produced, unchanged.")
    return len(frame) > 0


def levels(frame: pd.DataFrame, column: str, wanted: Sequence[str] | None, argument: str) -> list[str]:
    """Levels of ``column`` in order of first appearance, or ``wanted`` after checking it."""
    present = [str(v) for v in pd.unique(frame[column].astype(str))]
    if wanted is None:
        return present
    if isinstance(wanted, str):
        wanted = [wanted]
    unknown = [w for w in wanted if w not in present]
    if unknown:
        raise ValueError(f"{argument} names {unknown}, which the frame does not hold; allowed values: {present}")
    return list(wanted)


#: Joins a row's cell and state into the level its figure facets by (:func:`by_cell`).
CELL_STATE = "{cell} cell\n{state}"


def by_cell(frame):
    """``frame`` with its cell in its state column ("lstm cell\\ninit:..."), when it has a ``cell`` column.

    Every figure facets by state; a report of several cells (or of one cell other than the Elman
    one) writes a ``cell`` column, and this makes each cell x state its own facet, so every figure
    shows the cells side by side (in the order of the rows: a state's cells next to each other).
    A frame without the column (an Elman report), or None, is returned as it is. An "init" state's
    ``activation=`` item is shown only for the cells that take one (Elman, rnn): the gated and linear
    cells ignore it.
    """
    if not isinstance(frame, pd.DataFrame) or "cell" not in frame.columns:
        return frame
    state = [CELL_STATE.format(cell=c, state=s if cell(c).activations else _NO_ACTIVATION.sub("", s).rstrip(":"))
             for c, s in zip(frame["cell"].astype(str), frame["state"].astype(str))]
    return frame.assign(state=state)


#: The ``activation=`` item of a state label (the first item after "init:" or a later one).
_NO_ACTIVATION = re.compile(r"(?<=:)activation=[^,]*,?|,activation=[^,]*")



def cell_schemes(frame):
    """A study's frame with its cell in its scheme column ("lstm · tbptt:3") when it has a ``cell`` column, so that
    the figures that colour runs by scheme colour each cell's runs apart; other frames (and None) as they are."""
    if not isinstance(frame, pd.DataFrame) or "cell" not in frame.columns:
        return frame
    return frame.assign(scheme=[f"{c} · {s}" for c, s in zip(frame["cell"].astype(str), frame["scheme"].astype(str))])


def cells_of(*frames) -> list[str]:
    """The cells of a report's frames, in order of first appearance ([] for an Elman report)."""
    found = [str(c) for f in frames if isinstance(f, pd.DataFrame) and "cell" in f.columns for c in f["cell"]]
    return list(dict.fromkeys(found))


def select(frame: pd.DataFrame, datasets: list[str], states: list[str]) -> pd.DataFrame:
    """Rows of ``datasets`` and ``states`` (the dataset and state columns as text)."""
    frame = frame.assign(dataset=frame["dataset"].astype(str), state=frame["state"].astype(str))
    return frame[frame["dataset"].isin(datasets) & frame["state"].isin(states)]


def parameters_of(frame: pd.DataFrame, wanted: Sequence[str] | None) -> list[str]:
    """Parameters to draw: ``wanted`` after checking it, or the frame's in :data:`PARAMETER_ORDER`."""
    present = [str(p) for p in pd.unique(frame["parameter"].astype(str))]
    if wanted is not None:
        return levels(frame.assign(parameter=frame["parameter"].astype(str)), "parameter", wanted, "parameters")
    return [p for p in PARAMETER_ORDER if p in present] + [p for p in present if p not in PARAMETER_ORDER]


def row_parameters(frame: pd.DataFrame, states: list[str], wanted: Sequence[str] | None) -> dict[str, list]:
    """The parameter panels of each state's row: {state: [parameter or None]}, all rows as long.

    Rows of one cell share the report's parameters (:func:`parameters_of`). When the rows hold
    different cells (an Elman U, V against an LSTM's weight_ih_l0, weight_hh_l0, ...), each row
    shows its own cell's parameters, "all" in the last column for every row, and None where a row
    has fewer panels than the widest (left empty).
    """
    frame = frame.assign(parameter=frame["parameter"].astype(str))
    if wanted is not None:
        shared = parameters_of(frame, wanted)
        return {s: list(shared) for s in states}
    rows = {s: parameters_of(frame[frame["state"] == s], None) for s in states}
    if len({tuple(r) for r in rows.values()}) <= 1:
        shared = parameters_of(frame, None)
        return {s: list(shared) for s in states}
    width = max(len(r) for r in rows.values())
    out = {}
    for s, r in rows.items():
        last = ["all"] if "all" in r else []
        body = [p for p in r if p != "all"]
        out[s] = body + [None] * (width - len(body) - len(last)) + last
    return out


# --------------------------------------------------------------------------- colours

def dataset_palette(datasets: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per dataset, in this order: pass it as ``palette=`` to every figure of a report.

    Parameters
    ----------
    datasets : sequence of str
        All dataset labels of the report, in the order they should be listed.

    Returns
    -------
    dict of str to RGB tuple
        seaborn's colour-blind-safe palette for up to 10 datasets, evenly spaced hues beyond.
    """
    datasets = list(dict.fromkeys(str(d) for d in datasets))
    colours = sns.color_palette("colorblind" if len(datasets) <= 10 else "husl", len(datasets))
    return dict(zip(datasets, colours))


def category_palette(names: Sequence) -> dict:
    """One colour per name (schemes, distributions) from matplotlib's tab10, in this order."""
    names = list(names)
    return dict(zip(names, sns.color_palette("tab10", max(len(names), 1))))


def dataset_levels(frame: pd.DataFrame, datasets: Sequence[str] | None,
                   palette: Mapping[str, object] | None) -> tuple[list[str], dict]:
    """Datasets to draw and their colours.

    Without ``datasets=``, the frame's datasets, in the palette's order when one is given
    (so that a figure of a subset lists them as the others do).
    """
    found = levels(frame, "dataset", datasets, "datasets")
    if palette is None:
        return found, dataset_palette(found)
    missing = [d for d in found if d not in palette]
    if missing:
        raise ValueError(f"palette has no colour for dataset(s) {missing}; it covers {list(palette)}. "
                         "Build it with dataset_palette(<all datasets of the report>).")
    if datasets is None:
        rank = {d: i for i, d in enumerate(palette)}
        found = sorted(found, key=rank.__getitem__)
    return found, dict(palette)


# --------------------------------------------------------------------------- figure and panels

def figure(nrows: int, ncols: int, *, sharex=False, sharey=False, size=PANEL_SIZE, extra_width=2.2,
           extra_height=0.6):
    """A constrained-layout figure with an (nrows, ncols) array of axes and room for legends and titles."""
    fig = Figure(figsize=(size[0] * ncols + extra_width, size[1] * nrows + extra_height), layout="constrained")
    # An Agg canvas of its own (no pyplot, no global backend): without one, every text
    # measurement (seaborn's tick-label overlap check, constrained layout) redraws the figure.
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False)
    return fig, axes


def grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    """(rows, columns) of a grid of ``n`` panels at most ``max_cols`` wide."""
    ncols = min(n, max_cols)
    return math.ceil(n / ncols), ncols


def tag(artist, role: str, dataset: str = "") -> None:
    """Give ``artist`` the hidden label ``_role|dataset`` (``_role`` without a dataset)."""
    artist.set_label(f"_{role}|{dataset}" if dataset else f"_{role}")


def line(ax, data: pd.DataFrame, x: str, y: str, *, colour, role: str, dataset: str, **kwargs) -> None:
    """One line of ``data`` (already one row per x), tagged ``_role|dataset``."""
    n_before = len(ax.lines)
    sns.lineplot(data=data, x=x, y=y, color=colour, estimator=None, errorbar=None, sort=True, legend=False, ax=ax,
                 **kwargs)
    for drawn in ax.lines[n_before:]:
        tag(drawn, role, dataset)


def references(ax, values: Sequence[float]) -> None:
    """Horizontal reference lines (10%, 1% error) with their labels at the right edge."""
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for level in values:
        drawn = ax.axhline(level, **REF_STYLE)
        tag(drawn, "ref", f"{level:g}")
        ax.text(0.995, level, f"{level:.0%}", transform=trans, ha="right", va="bottom", fontsize=8, color="0.35")


def note(ax, text: str) -> None:
    """A grey note in the middle of an empty panel."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, **NOTE_STYLE)
    ax.set_xticks([])
    ax.set_yticks([])


def hide_unused(axes, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def suptitle(fig: Figure, title: str, subtitle: str | None = None) -> None:
    fig.suptitle(title if subtitle is None else f"{title}\n{subtitle}", fontsize=12)


# --------------------------------------------------------------------------- legends and text

def wrap(label: str, width: int = 36) -> str:
    """A long label (a canonical dataset or state text) broken after commas into lines of about ``width``
    (each of its own lines, when it has some: a cell's label, :data:`CELL_STATE`)."""
    if "\n" in label:
        return "\n".join(wrap(part, width) for part in label.split("\n"))
    if len(label) <= width:
        return label
    lines, current = [], ""
    for part in label.split(","):
        piece = part if not current else "," + part
        if current and len(current) + len(piece) > width:
            lines.append(current + ",")
            current = part
        else:
            current += piece
    # a piece without commas (a long file path) is cut every ``width`` characters
    return "\n".join(chunk for text in lines + [current] for chunk in
                     (text[i:i + width] for i in range(0, len(text), width)))


def legend(fig: Figure, handles: list, title: str, *, where: str = "upper", title_fontsize=None) -> None:
    """A figure legend outside the panels, on the right (``where``: upper or lower)."""
    fig.legend(handles=handles, title=title, loc=f"outside right {where}", fontsize=9, title_fontsize=title_fontsize,
               frameon=False)


def line_handles(palette: Mapping) -> list:
    """Legend entries of a palette: one line per name in its colour."""
    return [Line2D([], [], color=c, lw=2, label=s) for s, c in palette.items()]


def dataset_legend(fig: Figure, datasets: Sequence[str], palette: dict, *, patches=False) -> None:
    """The legend of the datasets drawn (lines, or patches for bars)."""
    if patches:
        handles = [Patch(facecolor=palette[d], label=wrap(d)) for d in datasets]
    else:
        handles = [Line2D([], [], color=palette[d], linewidth=2.2, label=wrap(d)) for d in datasets]
    legend(fig, handles, "dataset", title_fontsize=10)


def style_legend(fig: Figure, handles: list, title: str = "shown") -> None:
    """The legend of line styles, below the dataset legend."""
    legend(fig, handles, title, where="lower", title_fontsize=10)


def positive(values) -> np.ndarray:
    """Values as float, with non-positive and non-finite ones as NaN (not drawable on a log axis)."""
    arr = np.asarray(values, dtype=float)
    return np.where(np.isfinite(arr) & (arr > 0), arr, np.nan)


def fmt(value) -> str:
    """A number in 3 significant digits, n/a for NaN and ∞ for infinity."""
    value = float(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞"
    return f"{value:.3g}"


def run_figure(nrows: int, ncols: int, w: float = 4.2, h: float = 3.2):
    """A figure of a study's or suite's panels (``w`` x ``h`` inches each), with room for the legend and title."""
    return figure(nrows, ncols, size=(w, h), extra_width=2.4, extra_height=0.8)


def scheme_order(schemes) -> list:
    """Training schemes by their τ (TBPTT(τ) first, by τ), the others after them by name."""
    def key(s):
        t = tau_of_scheme(s)
        return (0, t, s) if np.isfinite(t) else (1, 0.0, s)
    return sorted(dict.fromkeys(schemes), key=key)


def facets(frame) -> tuple[list, list]:
    """The parts and distributions of a suite's frame in their order ([None] where a column is absent)."""
    return tuple(list(dict.fromkeys(frame[c])) if c in frame else [None] for c in ("part", "distribution"))
