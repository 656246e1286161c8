"""TBPTT truncation gap of a study's model at initialisation, midway and at the end of training."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from .gap import plot_gap
from .snapshot_profile import first_model, snapshot_title

NAME = "snapshot_gap"
CAPTION = "TBPTT truncation gap (all parameters) at initialisation, midway and at the end of training."
FRAMES = ("snapshots_gap",)


def plot_snapshot_gap(gap: pd.DataFrame) -> Figure | None:
    if gap is None or gap.empty:
        return None
    return plot_gap(first_model(gap), parameters=["all"], title=snapshot_title(gap, "TBPTT gap"))


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_snapshot_gap(frames.get("snapshots_gap"))
