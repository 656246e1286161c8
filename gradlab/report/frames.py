"""Every table gradlab writes, declared once: its name, its columns with their docs, how it is stored and which
kind of output writes it; and reading a folder's tables back.

Three kinds of output folder hold tables:

- ``report``: a spec run (``gradlab run SPEC``), one row group per dataset x model state;
- ``study``: a training study (``gradlab train``), one row group per run;
- ``suite``: a study suite, the studies' tables combined with :data:`SUITE_COLUMNS` in front.

The docs are the text of the "Data files" section of each folder's ``index.html``. A report frame's docs
cover every column it has; a study frame's docs cover the columns a reader needs (the snapshots frames also
carry the report frame's other columns). A figure reads the columns named here (see
:func:`columns`), so a renamed column is renamed in one place.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Frame", "REPORT", "STUDY", "SUITE", "KINDS", "FRAMES", "TRAIN_FRAMES", "COMPRESSED", "SUITE_COLUMNS",
           "COLUMN_DOCS", "TRAIN_COLUMN_DOCS", "CELL_DOC", "frames_of", "frame", "columns", "column_docs", "table_name",
           "load_frames"]

REPORT, STUDY, SUITE = "report", "study", "suite"
#: The kinds of output folder.
KINDS = (REPORT, STUDY, SUITE)


@dataclass(frozen=True)
class Frame:
    """One table: ``<name>.csv`` (``<name>.csv.gz`` when ``compressed``) in the folders of ``kinds``.

    ``columns`` maps each documented column to its meaning, in the order of the page. ``merged``: the run
    combines it from its units' own tables (False for ``timings``, which the runner writes itself).
    """

    name: str
    kinds: tuple[str, ...]
    columns: dict[str, str] = field(hash=False)
    compressed: bool = False
    merged: bool = True


_LABEL = "dataset label"
_STATE = "model state"

_REPORT_FRAMES = (
    Frame("profile", (REPORT,), {
        "dataset": "dataset: its canonical spec, every parameter filled in, e.g. "
                   "recall:distance=8,n=1000,seed=0,n_keys=4,n_distractors=8",
        "state": "model state (its canonical text, e.g. init:scale=0.316228,seed=0,activation=sigmoid, or "
                 "its label=NAME, e.g. trained:tbptt:3)",
        "lag": "lag k (steps back from the loss), int >= 0",
        "n": "number of losses t that reach lag k (t >= k)",
        "mean": "mean over losses of ||delta(t, t-k)||",
        "median": "median over losses of ||delta(t, t-k)||",
        "q25": "25% quantile over losses of ||delta(t, t-k)||",
        "q75": "75% quantile over losses of ||delta(t, t-k)||",
        "rel_mean": "mean / mean at lag 0",
    }),
    Frame("heatmap", (REPORT,), {
        "dataset": _LABEL,
        "state": _STATE,
        "t": "position of the loss in the sentence",
        "lag": "lag k <= t",
        "mean": "mean over sentences of ||delta(t, t-k)||",
    }),
    Frame("decay", (REPORT,), {
        "dataset": _LABEL,
        "state": _STATE,
        "beta": "fitted per-step decay factor, exp(slope)",
        "half_life": "ln 2 / -ln beta in steps; inf if beta >= 1",
        "slope": "least-squares slope of ln mean ||delta|| against lag",
        "intercept": "least-squares intercept of ln mean ||delta|| against lag",
        "spectral_radius": "spectral radius of U",
        "sigma_max": "largest singular value of U",
        "mean_fprime": "mean f'(net_in) over tokens",
        "growth_bound": "sigma_max * max f' (sigma_max / 4 for the sigmoid): bound on the growth per step",
        "floor": "relative floor used for reach",
        "reach": "largest lag whose rel_mean stays above floor",
    }),
    Frame("gap", (REPORT,), {
        "dataset": _LABEL,
        "state": _STATE,
        "scheme": "scheme label: tbptt:0 .. tbptt:K, block:k1,k2",
        "family": "tbptt or block",
        "tau": "truncation tau for tbptt rows; empty for block rows",
        "parameter": "U, V or all (all parameters together)",
        "rel_error": "||g - g_full|| / ||g_full|| of the corpus gradient",
        "cosine": "cos(g, g_full)",
        "estimate": "relative error estimated from the fitted decay, beta**(tau+1) (tbptt rows); an estimate, "
                    "not a bound: trained models can lie above it",
    }),
    Frame("gap_sentences", (REPORT,), {
        "dataset": _LABEL,
        "state": _STATE,
        "sentence": "sentence index in the dataset",
        "tau": "truncation tau (TBPTT)",
        "parameter": "U, V or all",
        "rel_error": "||g_tau - g_full|| / ||g_full|| of the sentence's gradient",
        "cosine": "cos(g_tau, g_full) of the sentence's gradient",
    }, compressed=True),
    Frame("dependencies", (REPORT,), {
        "dataset": _LABEL,
        "state": _STATE,
        "sentence": "sentence index",
        "source": "step of the input that determines the dependent loss",
        "dependent": "step of the dependent loss",
        "lag": "dependent - source (steps)",
        "signal": "||delta(dependent, source)||",
        "signal_rel": "signal / ||delta(dependent, dependent)||",
    }, compressed=True),
    Frame("dependency_kept", (REPORT,), {
        "dataset": _LABEL,
        "state": _STATE,
        "tau": "truncation tau (TBPTT)",
        "kept_share": "signal of dependencies with lag <= tau / total dependency signal",
    }),
    Frame("summary", (REPORT,), {
        "dataset": _LABEL,
        "state": _STATE,
        "beta": "fitted per-step decay factor",
        "half_life": "half-life in steps",
        "tau_10": "smallest tau with relative error of all parameters < 10%; empty if none <= K",
        "tau_1": "smallest tau with relative error of all parameters < 1%; empty if none <= K",
        "spectral_radius": "spectral radius of U",
        "sigma_max": "largest singular value of U",
        "mean_fprime": "mean f'(net_in) over tokens",
        "reach": "largest lag whose relative mean signal stays above the floor",
        "n_sentences": "sentences analysed",
        "n_losses": "losses J(t) in them",
        "mean_loss": "mean loss per prediction (nats) of the model state",
    }),
)

#: Columns of every study table that say which run wrote the row.
_RUN = {"run": "run name h<H>_<scheme>_lr<lr>_seed<seed>", "hidden_size": "hidden size H",
        "scheme": "training scheme as written in the spec", "learning_rate": "initial learning rate",
        "seed": "seed of the initial model and of the sentence order"}
_TRAINED = (STUDY, SUITE)

_STUDY_FRAMES = (
    Frame("history", _TRAINED, {
        **_RUN, "epoch": "epoch (from 0)", "lr": "learning rate of the epoch",
        "train_loss": "mean loss per predicted word over the epoch", "dev_loss": "dev mean loss after it",
        "dev_accuracy": "dev accuracy on the training task"}),
    Frame("evaluation", _TRAINED, {
        **_RUN, "task": "eval task", "mean_loss": "mean loss per loss of the eval task",
        "accuracy": "accuracy (agreement: P(verb) > P(inflected verb); number: argmax = label)"}),
    Frame("by_distance", _TRAINED, {
        **_RUN, "task": "eval task", "distance": "dependency distance in words", "lag": "distance - 1",
        "n": "items", "accuracy": "accuracy", "mean_loss": "mean loss of the items"}),
    Frame("by_attractors", _TRAINED, {
        **_RUN, "task": "eval task", "n_attractors": "attractors between subject and verb",
        "n": "items", "accuracy": "accuracy", "mean_loss": "mean loss"}),
    Frame("agreement_sets", _TRAINED, {
        **_RUN, "test_set": "standard agreement test set (spec key agreement_sets): linzen_testset (Linzen et al. "
                            "2016, as filtered by Gulordava et al. 2018) or gulordava (Gulordava et al. 2018, English)",
        "type": "original, or generated (gulordava's nonsense 'colorless green' versions)",
        "n_attractors": "attractors (intervening nouns of the other number) as the test set gives them",
        "n": "items whose correct and wrong verb forms are both in the study's vocabulary (the ones counted)",
        "n_correct": "items with P(correct form | prefix) > P(wrong form | prefix)",
        "accuracy": "n_correct / n", "mean_loss": "mean -log P(correct form | prefix)"}),
    Frame("snapshots_profile", _TRAINED, {
        **_RUN, "state": "scheme @ snapshot", "snapshot": "init, mid (epochs // 2) or end",
        "lag": "lag k", "mean": "mean ||delta(t, t-k)||", "median": "median"}),
    Frame("snapshots_gap", _TRAINED, {
        **_RUN, "state": "scheme @ snapshot", "tau": "truncation",
        "rel_error": "||g_tau - g_full|| / ||g_full||"}),
    Frame("snapshots_decay", _TRAINED, {
        **_RUN, "state": "scheme @ snapshot", "beta": "fitted per-step decay"}),
    Frame("snapshots_dependency_signal", _TRAINED, {
        **_RUN, "dataset": "dev dataset (its first snapshot_sentences sentences)", "state": "scheme @ snapshot",
        "snapshot": "init, mid (epochs // 2) or end", "epochs_trained": "epochs trained at the snapshot",
        "lag": "dependent - source (steps; the dependency's distance in words - 1)",
        "n": "annotated dependencies at this lag (whose dependent step has a loss)",
        "signal": "mean ||delta(dependent, source)||: the signal the dependent loss sends back to its source",
        "signal_rel": "mean of signal / ||delta(dependent, dependent)||"}),
    Frame("snapshots_dependency_kept", _TRAINED, {
        **_RUN, "dataset": "dev dataset (its first snapshot_sentences sentences)", "state": "scheme @ snapshot",
        "snapshot": "init, mid (epochs // 2) or end", "epochs_trained": "epochs trained at the snapshot",
        "tau": "truncation tau, 0..max_lag",
        "kept_share": "share of the snapshot model's dependency signal (summed over the annotated dependencies) "
                      "that TBPTT(tau) keeps: the dependencies with lag <= tau; TBPTT(tau) sends none of the "
                      "signal of a dependency with lag > tau"}),
    Frame("summary", _TRAINED, {
        **_RUN, "dev_loss": "final dev loss", "accuracy_<task>": "final accuracy per eval task"}),
    Frame("timings", _TRAINED, {
        **_RUN, "status": "reused (finished by an earlier invocation) or computed (trained now)",
        "train_seconds": "training seconds (Trainer)", "wall_seconds": "seconds of this invocation",
        "resumed_from_update": "update the run resumed from (0: from the start)"}, merged=False),
)

_ALL = _REPORT_FRAMES + _STUDY_FRAMES

#: The ``cell`` column of the tables of a spec with cells (``cell`` other than "elman", or several): after ``dataset``
#: in a report's tables, after ``run`` in a study's. Elman-only outputs have no such column (their bytes are as before).
CELL_DOC = ("cell of the model: elman (gradlab.RNN), or rnn, gru, lstm, linear (gradlab.CellModel); spec keys cell "
            "and num_layers")

#: Columns a suite puts in front of each of its studies' tables: the task's name and how its training
#: distances are spread.
SUITE_COLUMNS = ("part", "distribution")


def frames_of(kind: str) -> tuple[Frame, ...]:
    """The tables an output folder of ``kind`` holds, in the order of its page."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}; received {kind!r}")
    return tuple(f for f in _ALL if kind in f.kinds)


def frame(name: str, kind: str = REPORT) -> Frame:
    """The declaration of table ``name`` in an output folder of ``kind``."""
    for f in frames_of(kind):
        if f.name == name:
            return f
    raise KeyError(f"a {kind} folder holds no table {name!r}; its tables: {[f.name for f in frames_of(kind)]}")


def columns(name: str, kind: str = REPORT, *, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The declared columns of a table (less ``without``), in order: what a figure checks a frame for."""
    declared = tuple(frame(name, kind).columns)
    unknown = [c for c in without if c not in declared]
    if unknown:
        raise KeyError(f"{name} declares no column(s) {unknown}")
    return tuple(c for c in declared if c not in without)


def column_docs(kind: str) -> dict[str, dict[str, str]]:
    """Table name -> {column: meaning} of an output folder of ``kind``: the docs of its page."""
    return {f.name: dict(f.columns) for f in frames_of(kind)}


#: Frames a report writes, in page order.
FRAMES = tuple(f.name for f in frames_of(REPORT))
#: Frames stored gzip-compressed (``<name>.csv.gz``, deterministic bytes; pandas reads them directly).
COMPRESSED = tuple(f.name for f in _ALL if f.compressed)
#: Frames a study combines from its runs' tables (timings.csv aside, which it writes itself).
TRAIN_FRAMES = tuple(f.name for f in frames_of(STUDY) if f.merged)
#: Documented columns of a report's tables (the report-frame contract) and of a study's or suite's.
COLUMN_DOCS = column_docs(REPORT)
TRAIN_COLUMN_DOCS = column_docs(STUDY)


def table_name(name: str) -> str:
    """The file name of a combined table: ``<name>.csv`` or ``<name>.csv.gz``."""
    return f"{name}.csv.gz" if name in COMPRESSED else f"{name}.csv"


def load_frames(root: str | os.PathLike, kind: str = REPORT) -> dict[str, pd.DataFrame]:
    """Read the tables of an output folder of ``kind`` that exist, in page order.

    A report's tables are read as ``.csv`` or ``.csv.gz`` (whichever an older gradlab wrote); a study's or
    suite's are the merged ones (timings.csv is listed on the page, not read).
    """
    root = Path(root)
    out = {}
    for f in frames_of(kind):
        if not f.merged:
            continue
        files = (table_name(f.name), f"{f.name}.csv", f"{f.name}.csv.gz") if kind == REPORT else (table_name(f.name),)
        for file in files:
            if (root / file).exists():
                out[f.name] = pd.read_csv(root / file)
                break
    return out
