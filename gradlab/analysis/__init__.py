"""Measures built on the engine: vanishing profiles, truncation gaps, dependencies.

Every function takes engine results (or tidy frames) and returns tidy
DataFrames; :func:`analyse` runs them all for one dataset and model state.
"""
from .deps import dependency_kept, dependency_signal
from .gap import smallest_tau, truncation_gap
from .states import ModelState, parse_state
from .study import analyse
from .vanishing import fit_decay, lag_heatmap, reach, recurrence_stats, vanishing_profile

__all__ = ["vanishing_profile", "lag_heatmap", "fit_decay", "reach", "recurrence_stats", "truncation_gap",
           "smallest_tau", "dependency_signal", "dependency_kept", "ModelState", "parse_state", "analyse"]
