"""Accuracy of a study's language models on the standard agreement test sets (``agreement_sets.csv``): by
attractors per scheme, and original vs nonsense ("colorless green") sentences beside the published figures."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ...data.readers import PUBLISHED_AGREEMENT
from .. import style as st
from ..frames import STUDY, columns

NAME = "agreement_sets"
CAPTION = ("Agreement accuracy of the language models on the standard test sets (P(correct verb form) > P(wrong "
           "form) after the prefix; items with both forms in the vocabulary): left, by number of attractors "
           "(4: four or more) on each set; right, Gulordava et al.'s original vs nonsense ('generated') sentences. "
           "Mean over seeds, bars: min-max. Grey lines: the published accuracies (Gulordava et al. 2018, "
           "supplementary material, English: LSTM 80.5 % original / 71.8 % generated; simple RNN 73.2 % / "
           "64.2 %); dotted: 0.5.")
FRAMES = ("agreement_sets",)
#: Attractor counts from this one on are pooled ("4+", as Linzen et al. report them).
MAX_ATTRACTORS = 4
_PUBLISHED_STYLE = {"LSTM": "--", "simple RNN": "-."}


def per_run(frame: pd.DataFrame, by: list) -> pd.DataFrame:
    """Accuracy per run and ``by`` (pooled items: sum n_correct / sum n), with the run's scheme, seed and
    (in a suite) part."""
    keys = [c for c in ("part", "distribution") if c in frame] + ["scheme", "hidden_size", "learning_rate",
                                                                   "seed", "test_set"] + by
    g = frame.groupby(keys, sort=False)[["n", "n_correct"]].sum().reset_index()
    g["accuracy"] = g["n_correct"] / g["n"].where(g["n"] > 0)
    return g


def _bars(s: pd.DataFrame) -> list:
    """Error bars from mean to min and max (>= 0: the mean of equal values can differ from them by rounding)."""
    return [(s["mean"] - s["min"]).clip(lower=0).fillna(0), (s["max"] - s["mean"]).clip(lower=0).fillna(0)]


def _label(frame: pd.DataFrame) -> pd.Series:
    """The line of a row: its scheme, prefixed by its part (and H, lr) where a frame holds several."""
    label = frame["scheme"].astype(str)
    for col, fmt in (("learning_rate", "lr {:g}"), ("hidden_size", "H {}"), ("part", "{}")):
        if col in frame and frame[col].nunique() > 1:
            label = frame[col].map(fmt.format) + ": " + label
    return label


@st.whitegrid
def plot_agreement_sets(frame: pd.DataFrame) -> Figure | None:
    """Accuracy by attractors per scheme (a panel per test set) and original vs generated per scheme (a panel
    for every set with both types), each with mean over seeds and min-max bars."""
    if frame is None or frame.empty:
        return None
    missing = [c for c in columns("agreement_sets", STUDY, without=("run", "mean_loss")) if c not in frame]
    if missing:
        raise ValueError(f"agreement_sets frame lacks column(s) {missing}")
    frame = st.cell_schemes(frame).assign(n_attractors=np.minimum(frame["n_attractors"], MAX_ATTRACTORS))
    sets = list(dict.fromkeys(frame["test_set"]))
    typed = [s for s in sets if frame.loc[frame["test_set"] == s, "type"].nunique() > 1]
    n_panels = len(sets) + len(typed)
    fig, axes = st.run_figure(1, n_panels, w=4.4, h=3.4)
    frame = frame.assign(line=_label(frame))
    lines = sorted(dict.fromkeys(frame["line"]),
                   key=lambda s: (st.scheme_order(frame["scheme"]).index(frame.loc[frame["line"] == s,
                                                                                   "scheme"].iloc[0]), s))
    palette = st.category_palette(lines)
    axes = list(axes.flat)
    for ax, test_set in zip(axes, sets):
        r = per_run(frame[frame["test_set"] == test_set], ["n_attractors"])
        r["line"] = _label(r)
        for name in lines:
            s = r[r["line"] == name].groupby("n_attractors")["accuracy"].agg(["mean", "min", "max"]).reset_index()
            if s.empty:
                continue
            x = s["n_attractors"].to_numpy()
            ax.errorbar(x, s["mean"], yerr=_bars(s), color=palette[name],
                        marker="o", ms=3, lw=1.4, capsize=2, label=f"_accuracy|{test_set}|{name}")
        ax.axhline(0.5, color="0.5", ls=":", lw=1)
        ticks = sorted(r["n_attractors"].unique())
        ax.set_xticks(ticks, [f"{t}+" if t == MAX_ATTRACTORS else str(t) for t in ticks])
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{test_set}: by attractors", fontsize=10)
        ax.set_xlabel("attractors")
        ax.set_ylabel("accuracy")
    for ax, test_set in zip(axes[len(sets):], typed):
        r = per_run(frame[frame["test_set"] == test_set], ["type"])
        r["line"] = _label(r)
        types = [t for t in ("original", "generated") if t in set(r["type"])] + \
            sorted(set(r["type"]) - {"original", "generated"})
        width = 0.8 / max(len(lines), 1)
        for j, name in enumerate(lines):
            s = r[r["line"] == name].groupby("type")["accuracy"].agg(["mean", "min", "max"]).reindex(types)
            x = np.arange(len(types)) - 0.4 + width * (j + 0.5)
            ax.errorbar(x, s["mean"], yerr=_bars(s), fmt="o",
                        color=palette[name], capsize=2, label=f"_accuracy|{test_set}|{name}")
        for s_name, t, model, acc in PUBLISHED_AGREEMENT:
            if s_name == test_set and t in types:
                i = types.index(t)
                kind = "LSTM" if model.startswith("LSTM") else "simple RNN"
                ax.hlines(acc, i - 0.45, i + 0.45, color="0.35", ls=_PUBLISHED_STYLE[kind], lw=1.2,
                          label=f"_published|{t}|{kind}")
        ax.axhline(0.5, color="0.5", ls=":", lw=1)
        ax.set_xticks(np.arange(len(types)), types)
        ax.set_xlim(-0.6, len(types) - 0.4)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{test_set}: original vs nonsense", fontsize=10)
        ax.set_ylabel("accuracy")
    st.legend(fig, st.line_handles(palette), "scheme")
    st.legend(fig, [Line2D([], [], color="0.35", ls=ls, label=f"{k} (Gulordava et al. 2018)")
                    for k, ls in _PUBLISHED_STYLE.items()], "published", where="lower")
    fig.suptitle("Agreement on the standard test sets (mean over seeds, bars: min-max)")
    return fig


def draw(frames: Mapping[str, pd.DataFrame], palette=None) -> Figure | None:
    return plot_agreement_sets(frames.get("agreement_sets"))
