"""Annotated dependencies in a study's training snapshots: the signal by lag, and the share TBPTT(τ) keeps."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...analysis.outcomes import tau_of_scheme
from .. import style as st
from ..frames import STUDY, columns

NAME = "snapshot_dependencies"
CAPTION = ("Annotated dependencies at initialisation, after half the epochs and at the end of training, for "
           "TBPTT(τ) and full BPTT (mean over seeds; first hidden size and learning rate): the relative signal "
           "‖δ(dependent, source)‖ / ‖δ(dependent, dependent)‖ the dependent loss sends back to its source, by lag, "
           "and the share of the dependency signal TBPTT(τ) keeps (a dot: the scheme's own τ). TBPTT(τ) sends "
           "none of the signal of a dependency with lag > τ. A suite: one row per task and distribution, the "
           "kept share at the end.")
FRAMES = ("snapshots_dependency_signal", "snapshots_dependency_kept")

SIGNAL_COLUMNS = columns("snapshots_dependency_signal", STUDY)
KEPT_COLUMNS = columns("snapshots_dependency_kept", STUDY)
SNAPSHOT_ORDER = ("init", "mid", "end")


def _first_config(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the first hidden size and learning rate (every seed)."""
    first = frame[["hidden_size", "learning_rate"]].iloc[0]
    return frame[(frame["hidden_size"] == first["hidden_size"]) & (frame["learning_rate"] == first["learning_rate"])]


def _rows(frame: pd.DataFrame) -> list[dict]:
    """The (part, distribution) selections of a suite's frame in their order; one empty selection for a study."""
    keys = [c for c in ("part", "distribution") if c in frame.columns]
    if not keys:
        return [{}]
    return [dict(zip(keys, k)) for k in frame[keys].drop_duplicates().itertuples(index=False)]


def _sel(frame: pd.DataFrame | None, sel: dict, snapshot: str) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame()
    keep = frame["snapshot"] == snapshot
    for k, v in sel.items():
        keep &= frame[k] == v
    return frame[keep]


def plot_snapshot_dependencies(signal: pd.DataFrame | None, kept: pd.DataFrame | None) -> Figure | None:
    """Signal by lag and kept share against τ at init / mid / end, one colour per scheme.

    A study: two rows (signal by lag; kept share), one column per snapshot. A suite (frames with ``part`` and
    ``distribution``): one row per task and distribution, the signal at each snapshot and the kept share at
    the end. ``None`` when neither frame has rows (no annotated dependencies).
    """
    has_sig = st.check_frame(signal, "snapshots_dependency_signal", SIGNAL_COLUMNS)
    has_kept = st.check_frame(kept, "snapshots_dependency_kept", KEPT_COLUMNS)
    if not has_sig and not has_kept:
        return None
    signal = _first_config(signal) if has_sig else None
    kept = _first_config(kept) if has_kept else None
    both = pd.concat([f for f in (signal, kept) if f is not None])
    snapshots = [s for s in SNAPSHOT_ORDER if s in set(both["snapshot"])]
    # the measure is about truncation: TBPTT(tau) and full BPTT (block and adaptive schemes are in the tables)
    schemes = [s for s in st.scheme_order(both["scheme"]) if np.isfinite(tau_of_scheme(s)) or s == "full"]
    if not schemes:
        return None
    palette = st.category_palette(schemes)
    groups = _rows(both)
    if groups == [{}]:
        panels = [[({}, "signal", s) for s in snapshots], [({}, "kept", s) for s in snapshots]]
    else:
        panels = [[(g, "signal", s) for s in snapshots] + [(g, "kept", snapshots[-1])] for g in groups]
    fig, axes = st.run_figure(len(panels), len(panels[0]), w=3.4, h=2.7)
    for r, row in enumerate(panels):
        for c, (sel, kind, snapshot) in enumerate(row):
            ax = axes[r, c]
            where = " / ".join(str(v) for v in sel.values())
            ax.set_title(" · ".join(x for x in (where, f"{kind} at {snapshot}") if x), fontsize=9)
            sub = _sel(signal if kind == "signal" else kept, sel, snapshot)
            if sub.empty:
                st.note(ax, "no rows")
                continue
            x, y = ("lag", "signal_rel") if kind == "signal" else ("tau", "kept_share")
            means = sub.groupby(["scheme", x], sort=True)[y].mean().reset_index()
            for scheme in schemes:
                m = means[means["scheme"] == scheme]
                if m.empty:
                    continue
                values = st.positive(m[y]) if kind == "signal" else m[y].to_numpy(dtype=float)
                ax.plot(m[x].to_numpy(dtype=float), values, color=palette[scheme], lw=1.3,
                        drawstyle="default" if kind == "signal" else "steps-post")
                tau = tau_of_scheme(scheme)
                if kind == "kept" and np.isfinite(tau) and (m[x] == tau).any():
                    ax.plot([tau], m.loc[m[x] == tau, y].to_numpy(dtype=float)[:1], "o", color=palette[scheme], ms=4)
            if kind == "signal":
                ax.set_yscale("log")
                ax.set_xlabel("lag dependent − source (steps)")
                ax.set_ylabel("mean relative signal")
            else:
                ax.set_ylim(-0.03, 1.03)
                ax.set_xlabel(st.TAU_LABEL, fontsize=8)
                ax.set_ylabel("share of dependency signal kept")
    st.legend(fig, st.line_handles(palette), "scheme")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_snapshot_dependencies(frames.get("snapshots_dependency_signal"),
                                      frames.get("snapshots_dependency_kept"))
