"""Vanishing profile of a study's model at initialisation, midway and at the end of training."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from .profile import plot_profile

NAME = "snapshot_profile"
CAPTION = ("Vanishing profile of the model at initialisation, after half the epochs and at the end "
           "(first hidden size, learning rate and seed), per scheme.")
FRAMES = ("snapshots_profile", "snapshots_decay")


def first_model(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the first (hidden size, learning rate, seed) of a snapshots frame (one state per scheme @ time)."""
    first = frame[["hidden_size", "learning_rate", "seed"]].iloc[0]
    keep = (frame["hidden_size"] == first["hidden_size"]) & (frame["learning_rate"] == first["learning_rate"]) \
        & (frame["seed"] == first["seed"])
    out = frame[keep].drop(columns=["run", "hidden_size", "scheme", "learning_rate", "seed"])
    return out.rename(columns={"gap_scheme": "scheme"})


def snapshot_title(frame: pd.DataFrame, what: str) -> str:
    f = frame.iloc[0]
    return f"{what} at init, mid and end of training (H = {f['hidden_size']}, lr = {f['learning_rate']:g}, " \
           f"seed {f['seed']})"


def plot_snapshot_profile(profile: pd.DataFrame, decay: pd.DataFrame | None = None) -> Figure | None:
    if profile is None or profile.empty:
        return None
    return plot_profile(first_model(profile), None if decay is None else first_model(decay),
                        title=snapshot_title(profile, "Vanishing profile"))


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_snapshot_profile(frames.get("snapshots_profile"), frames.get("snapshots_decay"))
