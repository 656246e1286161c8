"""Findings of a study suite: paragraphs computed from its combined CSVs (``by_distance``, ``snapshots_gap``,
``history``, ``snapshots_dependency_kept``, ``snapshots_dependency_signal``); the text holds no number that is
not in a CSV."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..analysis.outcomes import MIN_ITEMS, accuracy_at_longest, longest_learned, pool_sparse, seed_interval, tau_of_scheme
from .style import scheme_order

__all__ = ["findings", "agreement_set_findings"]


def _fmt_ci(mean, lo, hi, n) -> str:
    if not np.isfinite(lo):
        return f"{mean:.2f} (n = {n})"
    return f"{mean:.2f} (95% CI {lo:.2f}-{hi:.2f}, n = {n} seeds)"


def findings(frames: Mapping[str, pd.DataFrame]) -> list[str]:
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
        return agreement_set_findings(frames)
    bd = pool_sparse(bd, MIN_ITEMS)
    acc = accuracy_at_longest(bd)
    ll = longest_learned(bd)
    ll["tau"] = ll["scheme"].map(tau_of_scheme)
    keys = [c for c in ("part", "distribution") if c in acc.columns]
    if "task" in acc.columns and acc.groupby(keys or (lambda _: 0))["task"].nunique().max() > 1:
        keys.append("task")      # a part evaluated on several tasks (lm: lm and agreement): one paragraph each
    out = []
    for key, a in acc.groupby(keys, sort=False) if keys else [((), acc)]:
        key = key if isinstance(key, tuple) else (key,)
        sel = dict(zip(keys, key))
        where = ", ".join(f"{k} {v}" for k, v in sel.items())
        dist = int(a["distance"].max())
        tail = _select(bd, sel)
        tail = None if tail is None else tail[tail["pooled"] & (tail["distance"] == dist)]
        if tail is not None and len(tail):
            items = int(tail.groupby("run")["n"].first().iloc[0]) if "run" in tail else int(tail["n"].iloc[0])
            text = [f"{where}: at the longest distances ({dist} words and more, pooled to {items} dev items; "
                    f"fewer than {MIN_ITEMS} items at any single one of them)"]
        else:
            text = [f"{where}: at the longest distance ({dist} words)"]
        full = a[a["scheme"] == "full"]
        if len(full):
            f = full.iloc[0]
            text.append(f"full BPTT reaches accuracy {_fmt_ci(f['mean'], f['ci_low'], f['ci_high'], f['n_seeds'])}")
        good = [s for s in scheme_order(a["scheme"]) if a.loc[a["scheme"] == s, "mean"].iloc[0] >= 0.9]
        text.append("schemes with mean accuracy >= 0.9 there: " + (", ".join(good) if good else "none"))
        l = _select(ll, sel)     # every group of acc has its runs in ll
        beyond, within = [], []
        for tau in sorted(l["tau"].dropna().unique()):
            m, lo, hi, n = seed_interval(l.loc[l["tau"] == tau, "longest_learned"])
            (beyond if m > tau + 1 else within).append(f"tau = {int(tau)}: {m:.1f}")
        if beyond:
            text.append("truncated training learned past its window (mean longest distance learned > tau + 1) for "
                        + "; ".join(beyond))
        if within:
            text.append("it did not for " + "; ".join(within))
        h = _select(frames.get("history"), sel)     # per run, not per eval task: no task column
        if h is not None and "tau" in h.columns:
            h = h[h["scheme"].str.startswith("adaptive") & h["tau"].notna()]
            if len(h):
                last = h.sort_values("epoch").groupby(["scheme", "seed"])["tau"].last()
                for scheme, taus in last.groupby(level=0):
                    acc_a = a.loc[a["scheme"] == scheme, "mean"]
                    text.append(f"{scheme} ended with tau = {taus.mean():.1f} (mean over seeds; range "
                                f"{int(taus.min())}-{int(taus.max())})"
                                + (f" and accuracy {acc_a.iloc[0]:.2f} at the longest distance" if len(acc_a) else ""))
        g = _select(frames.get("snapshots_gap"), sel)
        if g is not None:
            g = g[(g["scheme"] == "full") & (g["snapshot"] == "end") & (g["parameter"] == "all")
                  & (g["gap_scheme"].str.startswith("tbptt:"))]
            if len(g):
                rel = g.groupby("tau")["rel_error"].mean()
                shown = [f"tau = {int(t)}: {r:.2f}" for t, r in rel.items() if t in (0, 1, 3, 5, 10)]
                if shown:
                    text.append("relative error of the TBPTT(tau) gradient against full BPTT's, for the model full "
                                "BPTT trained (mean over seeds): " + "; ".join(shown))
        text += _dependency_findings(frames, sel, l)
        out.append("; ".join(text) + ".")
    return out + agreement_set_findings(frames)


def agreement_set_findings(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """One paragraph per standard agreement test set of ``agreement_sets.csv``: each scheme's accuracy (per
    sentence type where the set has several; by attractors 0 and the largest) with its 95% interval over seeds,
    beside the published figures (Gulordava et al. 2018) of :data:`gradlab.data.readers.PUBLISHED_AGREEMENT`."""
    from ..data.readers import PUBLISHED_AGREEMENT
    from .figures.agreement_sets import MAX_ATTRACTORS, per_run
    frame = frames.get("agreement_sets")
    if frame is None or not len(frame):
        return []
    frame = frame.assign(n_attractors=np.minimum(frame["n_attractors"], MAX_ATTRACTORS))
    keys = [c for c in ("part", "distribution") if c in frame]
    out = []
    for key, f in frame.groupby(keys + ["test_set"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        test_set = key[-1]
        where = ", ".join([f"{k} {v}" for k, v in zip(keys, key)] + [f"test set {test_set}"])
        types = [t for t in ("original", "generated") if t in set(f["type"])]
        by = ["type"] if len(types) > 1 else []
        total = per_run(f, by)
        att = per_run(f, ["n_attractors"])
        n_items = int(f.groupby("run")["n"].sum().iloc[0]) if "run" in f else int(f["n"].sum())
        parts = []
        for scheme in scheme_order(f["scheme"]):
            t = total[total["scheme"] == scheme]
            if by:
                text = ", ".join(f"{ty} {_fmt_ci(*seed_interval(t.loc[t['type'] == ty, 'accuracy']))}"
                                 for ty in types)
            else:
                text = _fmt_ci(*seed_interval(t["accuracy"]))
            a = att[att["scheme"] == scheme]
            hi = int(a["n_attractors"].max())
            if hi > 0:
                a0 = seed_interval(a.loc[a["n_attractors"] == 0, "accuracy"])[0]
                ah = seed_interval(a.loc[a["n_attractors"] == hi, "accuracy"])[0]
                text += (f"; {a0:.2f} with no attractor, {ah:.2f} with {hi}{'+' if hi == MAX_ATTRACTORS else ''}"
                         f" attractor{'s' if hi > 1 else ''}")
            parts.append(f"{scheme}: {text}")
        models = {}
        for s, ty, model, acc in PUBLISHED_AGREEMENT:
            if s == test_set:
                models.setdefault(model.replace(" (Gulordava et al. 2018)", ""), []).append(f"{acc:.1%} {ty}")
        published = [f"{model} " + " / ".join(accs) for model, accs in models.items()]
        out.append(f"{where} ({n_items} items with both verb forms in the vocabulary), agreement accuracy of the "
                   "language models: " + " | ".join(parts)
                   + (". Published on this set (Gulordava et al. 2018, supplementary material, single best "
                      "English models): "
                      + "; ".join(published) if published else "") + ".")
    return out


def _select(frame: pd.DataFrame | None, sel: Mapping) -> pd.DataFrame | None:
    if frame is None or not len(frame):
        return None
    for k, v in sel.items():
        if k in frame.columns:
            frame = frame[frame[k] == v]
    return frame if len(frame) else None


def _seeds(frame: pd.DataFrame, value: str) -> pd.Series:
    """``value`` per run (the runs of one scheme: one per seed)."""
    return frame.groupby("run")[value].mean()


def _dependency_findings(frames: Mapping[str, pd.DataFrame], sel: Mapping, ll: pd.DataFrame) -> list[str]:
    """The snapshots' dependency signal (``snapshots_dependency_kept``, ``snapshots_dependency_signal``) of one
    part and distribution, related to the longest distance learned (``ll``: per run, with ``tau``).

    TBPTT(tau) sends none of the signal of a dependency with lag > tau (kept share 0 by construction); what is
    measured is how much of its own model's dependency signal lies there (1 - kept_share at its tau), at init
    and at the end of its training; the relative signal at the longest lag at init and end (full BPTT and each
    TBPTT(tau)); and the share of full BPTT's dependency signal TBPTT(tau) would keep, at init and end.
    """
    kept = _select(frames.get("snapshots_dependency_kept"), sel)
    sig = _select(frames.get("snapshots_dependency_signal"), sel)
    if kept is None and sig is None:
        return []
    text = []
    taus = sorted({t for t in map(tau_of_scheme, (kept if kept is not None else sig)["scheme"].unique())
                   if np.isfinite(t)})
    at = lambda f, snap: f[f["snapshot"] == snap]  # noqa: E731
    if sig is not None:
        lo, hi = int(sig["lag"].min()), int(sig["lag"].max())
        text.append(f"dependency signal on the snapshot sentences (annotated lags {lo}-{hi} steps, lag = distance "
                    "- 1): TBPTT(tau) sends none of the signal of a dependency with lag > tau (kept share 0 by "
                    "construction), so whatever it learns at a distance > tau + 1 it learns without that "
                    "dependency's signal")
    if kept is not None and taus:
        parts = []
        for tau in taus:
            own = kept[(kept["scheme"].map(tau_of_scheme) == tau) & (kept["tau"] == tau)]
            if not len(own):
                continue
            i = seed_interval(1 - _seeds(at(own, "init"), "kept_share"))
            e = seed_interval(1 - _seeds(at(own, "end"), "kept_share"))
            piece = f"tau = {int(tau)}: {i[0]:.2f} at init, {_fmt_ci(*e)} at the end"
            learned = ll.loc[ll["tau"] == tau, "longest_learned"] if "tau" in ll.columns else pd.Series([], dtype=float)
            if len(learned):
                m = seed_interval(learned)[0]
                piece += (f", mean longest distance learned {m:.1f}"
                          + (" (past its window: learned with none of the signal of that distance's dependency)"
                             if m > tau + 1 else ""))
            parts.append(piece)
        if parts:
            text.append("share of each TBPTT(tau) model's dependency signal at lags > tau (what full BPTT would "
                        "send and TBPTT(tau) never does; mean over seeds): " + "; ".join(parts))
    if sig is not None:
        longest = int(sig["lag"].max())
        last = sig[sig["lag"] == longest]
        parts = []
        for scheme in ["full"] + [s for s in scheme_order(last["scheme"]) if np.isfinite(tau_of_scheme(s))]:
            rows = last[last["scheme"] == scheme]
            if not len(rows):
                continue
            i = seed_interval(_seeds(at(rows, "init"), "signal_rel"))
            e = seed_interval(_seeds(at(rows, "end"), "signal_rel"))
            parts.append(f"{scheme} {i[0]:.2f} at init, {_fmt_ci(*e)} at the end")
        if parts:
            text.append(f"mean relative signal ||delta(dependent, source)|| / ||delta(dependent, dependent)|| at "
                        f"the longest lag ({longest} steps), for each scheme's own model: " + "; ".join(parts))
    if kept is not None and taus:
        full = kept[kept["scheme"] == "full"]
        parts = []
        for tau in taus:
            f = full[full["tau"] == tau]
            if len(f):
                i = seed_interval(_seeds(at(f, "init"), "kept_share"))
                e = seed_interval(_seeds(at(f, "end"), "kept_share"))
                parts.append(f"tau = {int(tau)}: {i[0]:.2f} at init, {e[0]:.2f} at the end")
        if parts:
            text.append("share of full BPTT's dependency signal that TBPTT(tau) would keep (mean over seeds): "
                        + "; ".join(parts))
    return text
