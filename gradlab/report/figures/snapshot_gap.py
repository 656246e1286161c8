"""TBPTT truncation gap of a study's model at initialisation, midway and at the end of training."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from .. import style as st
from .gap import plot_gap
from .snapshot_profile import first_model, snapshot_title

NAME = "snapshot_gap"
CAPTION = "TBPTT truncation gap (all parameters) at initialisation, midway and at the end of training."
FRAMES = ("snapshots_gap",)


def plot_snapshot_gap(gap: pd.DataFrame) -> Figure | None:
    """The gap of all parameters together, a row per scheme @ snapshot; in a study of cells, a column per cell."""
    if gap is None or gap.empty:
        return None
    data, parameters = first_model(gap), ["all"]
    cells = st.cells_of(data)
    if cells:      # the cells side by side: each column one cell's gap of all its parameters
        data = data[data["parameter"].astype(str) == "all"]
        data = data.assign(parameter="all · " + data["cell"].astype(str) + " cell").drop(columns="cell")
        parameters = [f"all · {c} cell" for c in cells]
    return plot_gap(data, parameters=parameters, title=snapshot_title(gap, "TBPTT gap"))


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_snapshot_gap(frames.get("snapshots_gap"))
