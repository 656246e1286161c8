"""Every figure gradlab draws, one module each, and the ordered lists of the figures of each kind of output.

A figure module holds ``NAME`` (the file stem of ``<NAME>.png`` / ``.svg`` and the page anchor),
``CAPTION`` (its caption on the page), ``FRAMES`` (the tables it reads, as declared in
:mod:`gradlab.report.frames`) and ``draw(frames, palette) -> Figure | None`` (``frames``: table name ->
DataFrame, as :func:`gradlab.report.frames.load_frames` reads them; ``palette``: the report's dataset colours;
``None``: nothing to draw, the page leaves the figure out). Most also expose the ``plot_*`` function that
``draw`` calls, with options for notebooks. A new figure is one new module here and its place in a list below.

:func:`gradlab.report.render.render` draws the figures of :func:`of` ``(kind)`` in this order.
"""
from __future__ import annotations

from ..style import dataset_palette
from . import agreement_sets
from . import (accuracy_at_longest, accuracy_by_distance, accuracy_by_distance_ci, blocks, cosine, decay,
               dependencies, final_scores, gap, gap_sentences, heatmap, longest_learned, profile, snapshot_gap,
               snapshot_profile, training_curves)
from . import snapshot_dependencies
from .blocks import plot_blocks
from .cosine import plot_cosine
from .decay import plot_decay
from .dependencies import plot_dependencies
from .gap import plot_gap, plot_tbptt
from .gap_sentences import plot_gap_sentences
from .heatmap import plot_heatmap
from .profile import plot_profile

__all__ = ["REPORT", "STUDY", "SUITE", "of", "dataset_palette", "plot_profile", "plot_heatmap", "plot_gap",
           "plot_cosine", "plot_tbptt", "plot_gap_sentences", "plot_blocks", "plot_dependencies", "plot_decay"]

#: Figures of a report (``gradlab run``), in page order.
REPORT = [profile, decay, heatmap, gap, cosine, gap_sentences, blocks, dependencies]
#: Figures of a training study.
STUDY = [training_curves, accuracy_by_distance, final_scores, snapshot_profile, snapshot_gap,
         snapshot_dependencies, agreement_sets]
#: Figures of a study suite.
SUITE = [accuracy_at_longest, accuracy_by_distance_ci, longest_learned, snapshot_dependencies, agreement_sets]


def of(kind: str) -> list:
    """The figure modules of an output folder of ``kind`` (report, study or suite), in page order."""
    lists = {"report": REPORT, "study": STUDY, "suite": SUITE}   # looked up at call time: tests may shorten them
    if kind not in lists:
        raise ValueError(f"kind must be one of {list(lists)}; received {kind!r}")
    return lists[kind]
