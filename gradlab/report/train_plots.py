"""Figures of a training study (``gradlab train``): curves, accuracy by distance, final scores, snapshots."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import plots

__all__ = ["plot_training_curves", "plot_accuracy_by_distance", "plot_final_scores", "FIGURES",
           "TRAIN_COLUMN_DOCS"]

_RUN = {"run": "run name h<H>_<scheme>_lr<lr>_seed<seed>", "hidden_size": "hidden size H",
        "scheme": "training scheme as written in the spec", "learning_rate": "initial learning rate",
        "seed": "seed of the initial model and of the sentence order"}

TRAIN_COLUMN_DOCS = {
    "history": {**_RUN, "epoch": "epoch (from 0)", "lr": "learning rate of the epoch",
                "train_loss": "mean loss per predicted word over the epoch", "dev_loss": "dev mean loss after it",
                "dev_accuracy": "dev accuracy on the training task"},
    "evaluation": {**_RUN, "task": "eval task", "mean_loss": "mean loss per loss of the eval task",
                   "accuracy": "accuracy (agreement: P(verb) > P(inflected verb); number: argmax = label)"},
    "by_distance": {**_RUN, "task": "eval task", "distance": "dependency distance in words", "lag": "distance - 1",
                    "n": "items", "accuracy": "accuracy", "mean_loss": "mean loss of the items"},
    "by_attractors": {**_RUN, "task": "eval task", "n_attractors": "attractors between subject and verb",
                      "n": "items", "accuracy": "accuracy", "mean_loss": "mean loss"},
    "snapshots_profile": {**_RUN, "state": "scheme @ snapshot", "snapshot": "init, mid (epochs // 2) or end",
                          "lag": "lag k", "mean": "mean ||delta(t, t-k)||", "median": "median"},
    "snapshots_gap": {**_RUN, "state": "scheme @ snapshot", "tau": "truncation",
                      "rel_error": "||g_tau - g_full|| / ||g_full||"},
    "snapshots_decay": {**_RUN, "state": "scheme @ snapshot", "beta": "fitted per-step decay"},
    "summary": {**_RUN, "dev_loss": "final dev loss", "accuracy_<task>": "final accuracy per eval task"},
    "timings": {**_RUN, "status": "reused (finished by an earlier invocation) or computed (trained now)",
                "train_seconds": "training seconds (Trainer)", "wall_seconds": "seconds of this invocation",
                "resumed_from_update": "update the run resumed from (0: from the start)"},
}


def _figure(nrows, ncols, w=4.2, h=3.2):
    fig = Figure(figsize=(w * ncols + 2.4, h * nrows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _palette(schemes):
    return dict(zip(schemes, sns.color_palette("tab10", max(len(schemes), 1))))


def _legend(fig, handles, title):
    fig.legend(handles=handles, title=title, loc="outside right upper", fontsize=9, frameon=False)


def _line_handles(palette):
    from matplotlib.lines import Line2D
    return [Line2D([], [], color=c, lw=2, label=s) for s, c in palette.items()]


def plot_training_curves(history: pd.DataFrame) -> Figure | None:
    """Train (solid) and dev (dashed) loss per epoch; a panel per (hidden size, learning rate), a colour per scheme,
    one line per seed."""
    if history is None or history.empty:
        return None
    with sns.axes_style("whitegrid"):
        groups = list(history.groupby(["hidden_size", "learning_rate"], sort=False))
        nrows, ncols = math.ceil(len(groups) / 3), min(len(groups), 3)
        fig, axes = _figure(nrows, ncols)
        palette = _palette(list(dict.fromkeys(history["scheme"])))
        for ax, ((h, lr), g) in zip(axes.flat, groups):
            for (scheme, seed), r in g.groupby(["scheme", "seed"], sort=False):
                ax.plot(r["epoch"] + 1, r["train_loss"], color=palette[scheme], lw=1.4)
                if "dev_loss" in r:
                    ax.plot(r["epoch"] + 1, r["dev_loss"], color=palette[scheme], lw=1.4, ls="--")
            ax.set_title(f"H = {h}, lr = {lr:g}", fontsize=10)
            ax.set_xlabel("epochs trained")
            ax.set_ylabel("mean loss per word")
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        from matplotlib.lines import Line2D
        _legend(fig, _line_handles(palette) + [Line2D([], [], color="0.3", label="train"),
                                              Line2D([], [], color="0.3", ls="--", label="dev")], "scheme")
        fig.suptitle("Training curves (one line per seed)")
    return fig


def plot_accuracy_by_distance(by_distance: pd.DataFrame) -> Figure | None:
    """Accuracy against dependency distance: mean over seeds (line) with min-max band, a colour per scheme;
    a panel per (eval task, hidden size, learning rate)."""
    if by_distance is None or by_distance.empty:
        return None
    with sns.axes_style("whitegrid"):
        groups = list(by_distance.groupby(["task", "hidden_size", "learning_rate"], sort=False))
        nrows, ncols = math.ceil(len(groups) / 3), min(len(groups), 3)
        fig, axes = _figure(nrows, ncols)
        palette = _palette(list(dict.fromkeys(by_distance["scheme"])))
        for ax, ((task, h, lr), g) in zip(axes.flat, groups):
            for scheme, r in g.groupby("scheme", sort=False):
                s = r.groupby("distance")["accuracy"].agg(["mean", "min", "max", "std", "count"]).reset_index()
                ax.plot(s["distance"], s["mean"], color=palette[scheme], marker="o", ms=3, lw=1.6)
                ax.fill_between(s["distance"], s["min"], s["max"], color=palette[scheme], alpha=0.15, lw=0)
            if task in ("agreement", "number"):  # two choices: chance is 0.5
                ax.axhline(0.5, color="0.5", ls=":", lw=1)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{task}: H = {h}, lr = {lr:g}", fontsize=10)
            ax.set_xlabel("dependency distance (words)")
            ax.set_ylabel("accuracy")
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        _legend(fig, _line_handles(palette), "scheme")
        fig.suptitle("Accuracy by dependency distance (mean over seeds, band: min-max)")
    return fig


def plot_final_scores(summary: pd.DataFrame) -> Figure | None:
    """Final dev loss and accuracy per eval task for each scheme: mean ± sd over seeds, a colour per
    (hidden size, learning rate)."""
    if summary is None or summary.empty:
        return None
    metrics = ["dev_loss"] + [c for c in summary.columns if c.startswith("accuracy_")]
    metrics = [m for m in metrics if m in summary and summary[m].notna().any()]
    if not metrics:
        return None
    with sns.axes_style("whitegrid"):
        fig, axes = _figure(1, len(metrics), w=max(4.2, 0.7 * summary["scheme"].nunique() + 1.5))
        schemes = list(dict.fromkeys(summary["scheme"]))
        combos = list(dict.fromkeys(zip(summary["hidden_size"], summary["learning_rate"])))
        colours = dict(zip(combos, sns.color_palette("deep", len(combos))))
        width = 0.8 / len(combos)
        for ax, metric in zip(axes.flat, metrics):
            for j, combo in enumerate(combos):
                g = summary[(summary["hidden_size"] == combo[0]) & (summary["learning_rate"] == combo[1])]
                s = g.groupby("scheme")[metric].agg(["mean", "std"]).reindex(schemes)
                x = np.arange(len(schemes)) - 0.4 + width * (j + 0.5)
                ax.errorbar(x, s["mean"], yerr=s["std"].fillna(0), fmt="o", color=colours[combo], capsize=3)
            ax.set_xticks(np.arange(len(schemes)), schemes, rotation=30, ha="right")
            ax.set_title(metric, fontsize=10)
        from matplotlib.lines import Line2D
        _legend(fig, [Line2D([], [], color=c, marker="o", ls="", label=f"H = {h}, lr = {lr:g}")
                      for (h, lr), c in colours.items()], "model")
        fig.suptitle("Final dev loss and accuracy per scheme (mean ± sd over seeds)")
    return fig


def _first_model(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the first (hidden size, learning rate, seed) of a snapshots frame (one state per scheme @ time)."""
    first = frame[["hidden_size", "learning_rate", "seed"]].iloc[0]
    keep = (frame["hidden_size"] == first["hidden_size"]) & (frame["learning_rate"] == first["learning_rate"]) \
        & (frame["seed"] == first["seed"])
    out = frame[keep].drop(columns=["run", "hidden_size", "scheme", "learning_rate", "seed"])
    return out.rename(columns={"gap_scheme": "scheme"})


def _snap_title(frame, what):
    f = frame.iloc[0]
    return f"{what} at init, mid and end of training (H = {f['hidden_size']}, lr = {f['learning_rate']:g}, " \
           f"seed {f['seed']})"


def plot_snapshot_profile(profile: pd.DataFrame, decay: pd.DataFrame | None = None) -> Figure | None:
    if profile is None or profile.empty:
        return None
    return plots.plot_profile(_first_model(profile), None if decay is None else _first_model(decay),
                              title=_snap_title(profile, "Vanishing profile"))


def plot_snapshot_gap(gap: pd.DataFrame) -> Figure | None:
    if gap is None or gap.empty:
        return None
    return plots.plot_gap(_first_model(gap), parameters=["all"], title=_snap_title(gap, "TBPTT gap"))


#: (name, caption, builder(frames)) in page order; a builder returns None when its data is absent.
FIGURES = [
    ("training_curves", "Train (solid) and dev (dashed) loss per epoch; one line per seed, a colour per scheme.",
     lambda f: plot_training_curves(f.get("history"))),
    ("accuracy_by_distance", "Accuracy against dependency distance on the dev data for each scheme: mean over "
                             "seeds with the min-max band (dotted: chance for agreement and number). A scheme that learns a dependency "
                             "longer than its tau keeps its accuracy above chance at those distances.",
     lambda f: plot_accuracy_by_distance(f.get("by_distance"))),
    ("final_scores", "Final dev loss and accuracy per eval task for each scheme (mean ± sd over seeds).",
     lambda f: plot_final_scores(f.get("summary"))),
    ("snapshot_profile", "Vanishing profile of the model at initialisation, after half the epochs and at the end "
                         "(first hidden size, learning rate and seed), per scheme.",
     lambda f: plot_snapshot_profile(f.get("snapshots_profile"), f.get("snapshots_decay"))),
    ("snapshot_gap", "TBPTT truncation gap (all parameters) at initialisation, midway and at the end of training.",
     lambda f: plot_snapshot_gap(f.get("snapshots_gap"))),
]
