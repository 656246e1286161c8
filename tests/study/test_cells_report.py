"""Reports of several cells end to end: tables with a cell column, figures per cell, a page that names the cells,
resumable like any report; and the built-in comparison of Elman, GRU and LSTM on its quick size."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from gradlab.report.frames import load_frames
from gradlab.study.report import run_spec, units
from gradlab.study.spec import load_spec, spec_from_dict

SMALL = {"name": "cells", "datasets": ["agreement:distance=3,n=12"], "hidden_size": 4, "max_lag": 3,
         "states": ["init"], "cell": ["elman", "lstm"], "block_schemes": ["chunked:2"], "per_sentence": True}


def test_a_report_of_two_cells_end_to_end_and_resumed(tmp_path):
    spec = spec_from_dict(SMALL)
    lines = []
    root = run_spec(spec, tmp_path, progress=False, log=lines.append)
    frames = load_frames(root)
    for name in ("profile", "heatmap", "decay", "gap", "gap_sentences", "summary"):
        assert list(frames[name].columns[:3]) == ["dataset", "cell", "state"], name
        assert list(pd.unique(frames[name]["cell"])) == ["elman", "lstm"], name
    assert set(frames["dependencies"]["cell"]) == {"elman"} and set(frames["dependency_kept"]["cell"]) == {"elman"}
    summary = frames["summary"].set_index("cell")
    assert summary.loc["lstm", ["spectral_radius", "sigma_max"]].isna().all()
    assert summary.loc["elman", "spectral_radius"] > 0
    lstm_gap = frames["gap"][frames["gap"]["cell"] == "lstm"]
    assert set(lstm_gap["parameter"]) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "all"}
    every = lstm_gap[(lstm_gap["parameter"] == "all") & (lstm_gap["family"] == "tbptt")].sort_values("tau")
    assert every["rel_error"].is_monotonic_decreasing and every["rel_error"].iloc[-1] < every["rel_error"].iloc[0]
    page = (root / "index.html").read_text(encoding="utf-8")
    assert "Cells compared: elman, lstm." in page and "Cells: elman, lstm (one panel per cell and state)." in page
    assert "<code>cell</code>" in page
    for name in ("profile", "gap", "cosine", "blocks", "decay", "heatmap", "gap_sentences", "dependencies"):
        assert (root / f"{name}.png").is_file(), name
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["spec"]["cell"] == ["elman", "lstm"] and [u["cell"] for u in manifest["units"]] == ["elman", "lstm"]
    assert pd.read_csv(root / "timings.csv")["cell"].tolist() == ["elman", "lstm"]
    # a second run reuses both units and writes the same tables
    before = {p.name: p.read_bytes() for p in root.glob("*.csv*") if p.name != "timings.csv"}
    lines.clear()
    run_spec(spec, tmp_path, progress=False, log=lines.append, render=False)
    assert len(lines) == 2 and all("reused" in line for line in lines)
    assert {p.name: p.read_bytes() for p in root.glob("*.csv*") if p.name != "timings.csv"} == before
    # one more cell: only its units are computed, the others' rows are kept
    lines.clear()
    more = spec_from_dict({**SMALL, "cell": ["elman", "lstm", "gru"]})
    assert [u.key for u in units(more)][:2] == [u.key for u in units(spec)]
    run_spec(more, tmp_path, progress=False, log=lines.append, render=False)
    assert sum("reused" in line for line in lines) == 2 and len(lines) == 3
    assert list(pd.unique(pd.read_csv(root / "summary.csv")["cell"])) == ["elman", "lstm", "gru"]


def test_the_comparison_spec_compares_elman_gru_and_lstm_on_the_same_datasets():
    spec = load_spec("vanishing-and-gap-across-cells")
    assert spec.cells == ["elman", "gru", "lstm"] and len(spec.datasets) >= 2
    assert any(s.startswith("init") for s in spec.states) and any(s.startswith("train:") for s in spec.states)
    us = units(spec)
    assert len(us) == len(spec.datasets) * len(spec.states) * 3
    quick = spec.quick()
    assert quick.n_sentences == 100 and quick.max_lag <= 10 and quick.hidden_size <= 16 and quick.cells == spec.cells


@pytest.mark.slow
def test_the_comparison_spec_runs_quick(tmp_path):
    spec = load_spec("vanishing-and-gap-across-cells").quick()
    root = run_spec(spec, tmp_path, progress=False)
    summary = pd.read_csv(root / "summary.csv")
    assert len(summary) == len(spec.datasets) * len(spec.states) * 3
    assert list(pd.unique(summary["cell"])) == ["elman", "gru", "lstm"]
    # training lowers every cell's loss on every dataset
    states = list(pd.unique(summary["state"]))
    loss = summary.pivot_table(index=["dataset", "cell"], columns="state", values="mean_loss")
    assert (loss[states[1]] < loss[states[0]]).all(), loss
    assert summary["beta"].between(0, 2).all() and summary["n_losses"].gt(0).all()
    page = (root / "index.html").read_text(encoding="utf-8")
    assert "Cells compared: elman, gru, lstm." in page
    for name in ("profile", "decay", "heatmap", "gap", "cosine", "gap_sentences", "blocks"):
        assert (root / f"{name}.png").is_file(), name
