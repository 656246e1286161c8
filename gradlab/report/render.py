"""The one renderer: the figures and ``index.html`` of any output folder (report, study, suite), from its CSVs.

What a folder holds is declared once: its tables in :mod:`gradlab.report.frames`, its figures in
:mod:`gradlab.report.figures`. This module reads the tables, draws the figures of the folder's kind (each
``draw`` returns None when its data is absent, and the page leaves it out) and writes the page; what differs
between kinds is only the text around them (title, parameters, captions), taken from ``manifest.json``.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

from . import figures as registry
from .findings import agreement_set_findings, findings
from .frames import CELL_DOC, REPORT, STUDY, SUITE, column_docs, frames_of, load_frames, table_name
from .html import render_index, write_figure
from .style import cells_of, dataset_palette

__all__ = ["render", "render_report", "kind_of"]

_JOB: dict = {}  # folder, figures, frames and palette of the render in progress; forked workers inherit it


def _draw(i: int) -> str | None:
    figure = _JOB["figures"][i]
    fig = figure.draw(_JOB["frames"], _JOB["palette"])
    if fig is None:
        return None
    write_figure(fig, _JOB["folder"], figure.NAME)
    return figure.NAME


def _draw_all(folder: Path, figures: list, frames: dict, palette, processes: int,
              cells: list | None = None) -> list[tuple[str, str]]:
    """Draw and save each figure; the (name, caption) of those drawn, in order (with ``cells``, a report of
    other cells than the Elman one: each caption names them, and adds the figure's ``CELLS_NOTE``)."""
    _JOB.update(folder=folder, figures=figures, frames=frames, palette=palette)
    try:
        if processes > 1 and "fork" in mp.get_all_start_methods():
            # workers are forked, so they see _JOB without pickling the frames
            with mp.get_context("fork").Pool(processes) as pool:
                drawn = pool.map(_draw, range(len(figures)), chunksize=1)
        else:
            drawn = [_draw(i) for i in range(len(figures))]
    finally:
        _JOB.clear()
    captions = {f.NAME: f.CAPTION for f in figures}
    if cells:
        captions = {f.NAME: " ".join(filter(None, (f.CAPTION, f"Cells: {', '.join(cells)} (one panel per cell and "
                                                              "state).", getattr(f, "CELLS_NOTE", ""))))
                    for f in figures}
    return [(name, captions[name]) for name in drawn if name is not None]


def kind_of(folder: str | os.PathLike) -> str:
    """The kind of an output folder from its manifest: suite, study, or report (also without a manifest)."""
    path = Path(folder) / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    return SUITE if "suite" in manifest else STUDY if "runs" in manifest and "seeds" in manifest else REPORT


def _report_page(folder: Path, frames: dict) -> dict:
    if "summary" not in frames:
        raise FileNotFoundError(f"{folder} holds no report CSVs (summary.csv is missing); run a spec first")
    manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").exists() else {}
    spec_text = (folder / "spec.toml").read_text() if (folder / "spec.toml").exists() else ""
    return dict(title=manifest.get("spec", {}).get("title", folder.name), summary=frames["summary"], parameters={
        "spec (spec.toml)": spec_text, "gradlab version": manifest.get("gradlab_version", "?"),
        "seed": manifest.get("seed", "?"),
        "units (dataset x state, key, input files' SHA-256)": [
            {k: u[k] for k in ("dataset", "state", "key", "inputs") if k in u} for u in manifest.get("units", [])]})


def _study_page(folder: Path, frames: dict) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    return dict(title=manifest["spec"]["title"], summary=frames["summary"], parameters={
        "spec (spec.toml)": (folder / "spec.toml").read_text(),
        "gradlab version": manifest["gradlab_version"], "seeds": manifest["seeds"],
        "train / dev data": f"{manifest['train']} ({manifest['n_train']} sentences) / "
                            f"{manifest['dev']} ({manifest['n_dev']} sentences)",
        "seconds per run": "timings.csv (the only file that changes between identical runs)",
        "runs (name, fingerprint)": manifest["runs"]},
        summary_caption="One row per run: final train/dev loss and the accuracy per eval task "
                        "(timings in timings.csv).", findings=agreement_set_findings(frames))


def _suite_page(folder: Path, frames: dict) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    return dict(title=manifest["title"], summary=frames.get("summary"), parameters={
        "studies (each with its own index.html)": [f"{s['name']}/index.html" for s in manifest["studies"]],
        "seconds per run": "timings.csv (the only file that changes between identical runs)",
        "study specs": [s["spec"] for s in manifest["studies"]]},
        summary_caption="One row per run (part = task, distribution = how the training "
                        "distances are spread).", findings=findings(frames))


_PAGES = {REPORT: _report_page, STUDY: _study_page, SUITE: _suite_page}


def render(folder: str | os.PathLike, kind: str | None = None, *, processes: int | None = None) -> Path:
    """Draw every figure of an output folder (PNG and SVG) and write its ``index.html``; returns its path.

    Parameters
    ----------
    folder : str or PathLike
        A report, study or suite folder with its CSVs (and ``manifest.json``; a report renders without one).
    kind : str, optional
        ``"report"``, ``"study"`` or ``"suite"``; default: :func:`kind_of` the folder.
    processes : int, optional
        Worker processes drawing the figures (each is independent and Matplotlib is single-threaded);
        default: one per core for a report, one (no workers) for a study or suite.

    The page holds nothing that changes between identical runs; the seconds are in timings.csv.
    """
    folder = Path(folder)
    kind = kind_of(folder) if kind is None else kind
    figures = registry.of(kind)
    frames = load_frames(folder, kind)
    page = _PAGES[kind](folder, frames)
    palette = dataset_palette(list(dict.fromkeys(frames["summary"]["dataset"]))) if kind == REPORT else None
    if processes is None:
        processes = min(len(figures), os.cpu_count() or 1) if kind == REPORT else 1
    cells = cells_of(frames.get("summary"))
    drawn = _draw_all(folder, figures, frames, palette, processes, cells)
    tables = {f.name: table_name(f.name) for f in frames_of(kind)
              if f.name in frames or (not f.merged and (folder / table_name(f.name)).exists())}
    docs = column_docs(kind)
    if cells:
        page["header"] = (f"Cells compared: {', '.join(cells)}." if len(cells) > 1 else f"Cell: {cells[0]}.") + \
            f" {CELLS_HEADER}"
        docs = {name: _with_cell(columns) for name, columns in docs.items()}
    return render_index(folder, figures=drawn, tables=tables, column_docs=docs, **page)


#: What the page of a report with cells says under its heading, after naming them.
CELLS_HEADER = ("elman: gradlab.RNN (one-hot input, no biases); rnn, gru, lstm: PyTorch's nn.RNN / nn.GRU / "
                "nn.LSTM equations and parameter names with one-hot input; linear: the diagonal linear recurrence. "
                "Every figure shows the cells side by side; the Elman recurrence's statistics and the dependency "
                "signal are the Elman cell's only (NaN or no rows for the others).")
def _with_cell(columns: dict) -> dict:
    """A table's column docs with the cell column where its rows have it: after ``run`` (a study's tables) or
    after ``dataset`` (a report's, which also have ``state``)."""
    anchor = "run" if "run" in columns else "dataset" if "dataset" in columns and "state" in columns else None
    if anchor is None:
        return columns
    out = {}
    for name, doc in columns.items():
        out[name] = doc
        if name == anchor:
            out["cell"] = CELL_DOC
    return out


def render_report(folder: str | os.PathLike, *, processes: int | None = None) -> Path:
    """Draw every figure of a report folder (PNG and SVG) and write ``index.html``; returns its path."""
    return render(folder, REPORT, processes=processes)
