"""Figures and findings of a study suite (``gradlab train`` on a suite spec), from its combined CSVs.

Everything here reads the suite's tidy frames (``by_distance``, ``snapshots_gap``) and
computes from them: the findings text holds no number that is not in a CSV.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..analysis.outcomes import (LEARNED_THRESHOLD, accuracy_at_longest, accuracy_by_distance, longest_learned,
                                 seed_interval, tau_of_scheme)
from .train_plots import _figure, _legend, _line_handles, _palette

__all__ = ["plot_accuracy_at_longest", "plot_accuracy_by_distance_ci", "plot_longest_learned", "findings",
           "SUITE_FIGURES"]


def _scheme_order(schemes) -> list:
    def key(s):
        t = tau_of_scheme(s)
        return (0, t, s) if np.isfinite(t) else (1, 0.0, s)
    return sorted(dict.fromkeys(schemes), key=key)


def _facets(frame) -> tuple[list, list]:
    """The parts and distributions of a suite's frame in their order ([None] where a column is absent)."""
    return tuple(list(dict.fromkeys(frame[c])) if c in frame else [None] for c in ("part", "distribution"))


def plot_accuracy_at_longest(frames: dict) -> Figure | None:
    """Accuracy at the largest distance per scheme (mean over seeds, 95% interval), one panel per task."""
    bd = frames.get("by_distance")
    if bd is None or not len(bd):
        return None
    acc = accuracy_at_longest(bd)
    parts, dists = _facets(acc)
    schemes = _scheme_order(acc["scheme"])
    palette = _palette(dists)
    fig, axes = _figure(len(parts), 1, w=max(4.0, 0.55 * len(schemes) + 1.5), h=2.8)
    for ax, part in zip(axes[:, 0], parts):
        sub = acc if part is None else acc[acc["part"] == part]
        for j, dist in enumerate(dists):
            d = sub if dist is None else sub[sub["distribution"] == dist]
            x = np.array([schemes.index(s) for s in d["scheme"]]) + (j - (len(dists) - 1) / 2) * 0.22
            err = np.vstack([d["mean"] - d["ci_low"], d["ci_high"] - d["mean"]]).astype(float)
            ax.errorbar(x, d["mean"], yerr=np.nan_to_num(err), fmt="o", ms=4, color=palette[dist], capsize=2)
        ax.set_xticks(range(len(schemes)), schemes, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("accuracy at longest")
        dmax = int(sub["distance"].max()) if len(sub) else 0
        ax.set_title(f"{part or ''} (distance {dmax})", fontsize=10)
    _legend(fig, _line_handles(palette), "training distances")
    return fig


def plot_accuracy_by_distance_ci(frames: dict) -> Figure | None:
    """Accuracy by distance per scheme, mean over seeds with its 95% band; rows: tasks, columns: distributions."""
    bd = frames.get("by_distance")
    if bd is None or not len(bd):
        return None
    acc = accuracy_by_distance(bd)
    parts, dists = _facets(acc)
    schemes = _scheme_order(acc["scheme"])
    palette = _palette(schemes)
    fig, axes = _figure(len(parts), len(dists), w=3.4, h=2.6)
    for i, part in enumerate(parts):
        for j, dist in enumerate(dists):
            ax = axes[i, j]
            sub = acc
            if part is not None:
                sub = sub[sub["part"] == part]
            if dist is not None:
                sub = sub[sub["distribution"] == dist]
            for scheme in schemes:
                d = sub[sub["scheme"] == scheme].sort_values("distance")
                if not len(d):
                    continue
                ax.plot(d["distance"], d["mean"], color=palette[scheme], lw=1.2)
                ax.fill_between(d["distance"], d["ci_low"].clip(0, 1), d["ci_high"].clip(0, 1), color=palette[scheme],
                                alpha=0.12)
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(" / ".join(str(x) for x in (part, dist) if x is not None), fontsize=9)
            ax.set_xlabel("distance (words)")
            ax.set_ylabel("accuracy")
    _legend(fig, _line_handles(palette), "scheme")
    return fig


def plot_longest_learned(frames: dict) -> Figure | None:
    """Longest distance learned (the largest with accuracy >= 0.9) against tau, per task; full BPTT dotted."""
    bd = frames.get("by_distance")
    if bd is None or not len(bd):
        return None
    ll = longest_learned(bd)
    ll["tau"] = ll["scheme"].map(tau_of_scheme)
    parts, dists = _facets(ll)
    palette = _palette(dists)
    fig, axes = _figure(1, len(parts), w=3.6, h=3.0)
    for ax, part in zip(axes[0], parts):
        sub = ll if part is None else ll[ll["part"] == part]
        taus = sorted(sub["tau"].dropna().unique())
        for dist in dists:
            d = sub if dist is None else sub[sub["distribution"] == dist]
            tb = d[d["tau"].notna()]
            stats_ = [seed_interval(tb.loc[tb["tau"] == t, "longest_learned"]) for t in taus]
            ax.plot(taus, [s[0] for s in stats_], "o-", color=palette[dist], ms=4)
            ax.fill_between(taus, np.maximum([s[1] for s in stats_], 0), [s[2] for s in stats_], color=palette[dist],
                            alpha=0.15)
            full = d.loc[d["scheme"] == "full", "longest_learned"]
            if len(full):
                ax.axhline(full.mean(), color=palette[dist], ls=":", lw=1)
        if taus:
            ax.plot(taus, np.asarray(taus) + 1, color="0.5", ls="--", lw=1, label="window: tau + 1")
        ax.set_xlabel("tau of TBPTT(tau)")
        ax.set_ylabel("longest distance learned")
        ax.set_title(part or "", fontsize=10)
    _legend(fig, _line_handles(palette), "training distances")
    return fig


SUITE_FIGURES = [
    ("accuracy_at_longest", "Accuracy at the longest distance per scheme: mean over seeds with its 95% interval, "
                            "one colour per distribution of training distances.", plot_accuracy_at_longest),
    ("accuracy_by_distance_ci", "Accuracy at the dependent step by distance, per scheme: mean over seeds with its "
                                "95% band; rows: tasks, columns: how the training distances are spread.",
     plot_accuracy_by_distance_ci),
    ("longest_learned", f"Longest distance learned (the largest with accuracy >= {LEARNED_THRESHOLD}) "
                        "against tau, mean over seeds with its 95% band; dotted: full BPTT; dashed: tau + 1, the "
                        "longest distance whose cause the window reaches.", plot_longest_learned),
]


def _fmt_ci(mean, lo, hi, n) -> str:
    if not np.isfinite(lo):
        return f"{mean:.2f} (n = {n})"
    return f"{mean:.2f} (95% CI {lo:.2f}-{hi:.2f}, n = {n} seeds)"


def findings(frames: dict) -> list[str]:
    """Paragraphs computed from the suite's CSVs: per task and distribution, what full BPTT and each scheme learn.

    For each part and distribution: full BPTT's accuracy at the longest distance; the
    schemes whose mean accuracy there is at least 0.9; for every TBPTT(tau), the mean
    longest distance learned and whether it is past the window (> tau + 1 words, the
    longest distance whose cause the gradient reaches); the tau adaptive schemes ended
    with (``history``); and, where snapshots exist, the relative error of the TBPTT(tau)
    gradient at the end of full-BPTT training.
    """
    bd = frames.get("by_distance")
    if bd is None or not len(bd):
        return []
    acc = accuracy_at_longest(bd)
    ll = longest_learned(bd)
    ll["tau"] = ll["scheme"].map(tau_of_scheme)
    gap = frames.get("snapshots_gap")
    keys = [c for c in ("part", "distribution") if c in acc.columns]
    out = []
    for key, a in acc.groupby(keys, sort=False) if keys else [((), acc)]:
        key = key if isinstance(key, tuple) else (key,)
        sel = dict(zip(keys, key))
        where = ", ".join(f"{k} {v}" for k, v in sel.items())
        dist = int(a["distance"].max())
        text = [f"{where}: at the longest distance ({dist} words)"]
        full = a[a["scheme"] == "full"]
        if len(full):
            f = full.iloc[0]
            text.append(f"full BPTT reaches accuracy {_fmt_ci(f['mean'], f['ci_low'], f['ci_high'], f['n_seeds'])}")
        good = [s for s in _scheme_order(a["scheme"]) if a.loc[a["scheme"] == s, "mean"].iloc[0] >= 0.9]
        text.append("schemes with mean accuracy >= 0.9 there: " + (", ".join(good) if good else "none"))
        l = ll.copy()
        for k, v in sel.items():
            l = l[l[k] == v]
        beyond, within = [], []
        for tau in sorted(l["tau"].dropna().unique()):
            m, lo, hi, n = seed_interval(l.loc[l["tau"] == tau, "longest_learned"])
            (beyond if m > tau + 1 else within).append(f"tau = {int(tau)}: {m:.1f}")
        if beyond:
            text.append("truncated training learned past its window (mean longest distance learned > tau + 1) for "
                        + "; ".join(beyond))
        if within:
            text.append("it did not for " + "; ".join(within))
        hist = frames.get("history")
        if hist is not None and "tau" in hist.columns:
            h = hist
            for k, v in sel.items():
                h = h[h[k] == v]
            h = h[h["scheme"].str.startswith("adaptive") & h["tau"].notna()]
            if len(h):
                last = h.sort_values("epoch").groupby(["scheme", "seed"])["tau"].last()
                for scheme, taus in last.groupby(level=0):
                    acc_a = a.loc[a["scheme"] == scheme, "mean"]
                    text.append(f"{scheme} ended with tau = {taus.mean():.1f} (mean over seeds; range "
                                f"{int(taus.min())}-{int(taus.max())})"
                                + (f" and accuracy {acc_a.iloc[0]:.2f} at the longest distance" if len(acc_a) else ""))
        if gap is not None and len(gap):
            g = gap
            for k, v in sel.items():
                g = g[g[k] == v]
            g = g[(g["scheme"] == "full") & (g["snapshot"] == "end") & (g["parameter"] == "all")
                  & (g["gap_scheme"].str.startswith("tbptt:"))]
            if len(g):
                rel = g.groupby("tau")["rel_error"].mean()
                shown = [f"tau = {int(t)}: {r:.2f}" for t, r in rel.items() if t in (0, 1, 3, 5, 10)]
                if shown:
                    text.append("relative error of the TBPTT(tau) gradient against full BPTT's, for the model full "
                                "BPTT trained (mean over seeds): " + "; ".join(shown))
        out.append("; ".join(text) + ".")
    return out
