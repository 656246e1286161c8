"""Figures and index.html of a report folder, from its combined CSVs."""
from __future__ import annotations

import json
import os
from pathlib import Path

from . import plots
from .html import render_index, write_figure
from .frames import load_frames, table_name

#: (figure name, caption, builder) in page order; a builder returns None when its data is absent.
FIGURES = [
    ("profile", "Vanishing profile: distribution over losses of ||delta(t, t-k)|| against lag k (median, "
                "quartiles, mean; log scale), with the fitted geometric decay beta^k.",
     lambda f, pal: plots.plot_profile(f["profile"], f.get("decay"), palette=pal)),
    ("decay", "Fitted per-step decay factor beta and half-life, the reach above the floor, mean f', and U's "
              "spectral radius, largest singular value and the growth bound sigma_max * max f'.",
     lambda f, pal: plots.plot_decay(f["decay"], palette=pal)),
    ("heatmap", "Mean ||delta(t, t-k)|| over sentences for every loss step t and lag k.",
     lambda f, pal: plots.plot_heatmap(f["heatmap"])),
    ("gap", "Truncation gap of TBPTT(tau): ||g_tau - g_full|| / ||g_full|| of the corpus gradient for U, V and "
            "all parameters, with the estimate beta^(tau+1) from the fitted decay (dashed; an estimate, not a bound).",
     lambda f, pal: plots.plot_gap(f["gap"], palette=pal)),
    ("cosine", "cos(g_tau, g_full) of the corpus gradient.",
     lambda f, pal: plots.plot_cosine(f["gap"], palette=pal)),
    ("gap_sentences", "The same relative error per sentence (each sentence's own losses): median and "
                      "quantile bands over sentences.",
     lambda f, pal: plots.plot_gap_sentences(f["gap_sentences"], palette=pal) if "gap_sentences" in f else None),
    ("blocks", "Block schemes (chunked 'detach every h steps', Mikolov's -bptt/-bptt-block): relative error "
               "against full BPTT.",
     lambda f, pal: plots.plot_blocks(f["gap"], palette=pal)),
    ("dependencies", "Annotated dependencies: the signal the dependent loss sends back to the position that "
                     "determines it, by distance, and the share of it that TBPTT(tau) keeps.",
     lambda f, pal: plots.plot_dependencies(f["dependencies"], f.get("dependency_kept"), palette=pal)
     if "dependencies" in f else None),
]


_JOB: dict = {}  # frames and palette of the render in progress; forked workers inherit it


def _draw(name):
    folder, frames, palette = _JOB["folder"], _JOB["frames"], _JOB["palette"]
    builder = next(b for n, _, b in FIGURES if n == name)
    fig = builder(frames, palette)
    if fig is None:
        return None
    write_figure(fig, folder, name)
    return name


def render_report(folder: str | os.PathLike, *, processes: int | None = None) -> Path:
    """Draw every figure (PNG and SVG) and write ``index.html``; returns its path.

    Figures are drawn in worker processes (one per core by default) since each is
    independent and Matplotlib is single-threaded.
    """
    folder = Path(folder)
    frames = load_frames(folder)
    if "summary" not in frames:
        raise FileNotFoundError(f"{folder} holds no report CSVs (summary.csv is missing); run a spec first")
    manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").exists() else {}
    spec_text = (folder / "spec.toml").read_text() if (folder / "spec.toml").exists() else ""
    datasets = list(dict.fromkeys(frames["summary"]["dataset"]))
    palette = plots.dataset_palette(datasets)
    jobs = [name for name, _, _ in FIGURES]
    _JOB.update(folder=folder, frames=frames, palette=palette)
    import multiprocessing as mp
    processes = processes if processes is not None else min(len(jobs), os.cpu_count() or 1)
    try:
        if processes > 1 and "fork" in mp.get_all_start_methods():
            # workers are forked, so they see _JOB without pickling the frames
            with mp.get_context("fork").Pool(processes) as pool:
                drawn = pool.map(_draw, jobs, chunksize=1)
        else:
            drawn = [_draw(job) for job in jobs]
    finally:
        _JOB.clear()
    captions = {name: caption for name, caption, _ in FIGURES}
    figures = [(name, captions[name]) for name in drawn if name is not None]
    title = manifest.get("spec", {}).get("title", folder.name)
    parameters = {"spec (spec.toml)": spec_text, "gradlab version": manifest.get("gradlab_version", "?"),
                  "seed": manifest.get("seed", "?"),
                  "units (dataset x state, key, input files' SHA-256)": [
                      {k: u[k] for k in ("dataset", "state", "key", "inputs") if k in u}
                      for u in manifest.get("units", [])]}
    return render_index(folder, title=title, figures=figures, summary=frames["summary"], parameters=parameters,
                        tables={name: table_name(name) for name in frames})
