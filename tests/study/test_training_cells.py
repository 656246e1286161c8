"""Training studies of several cells end to end (``gradlab train`` with ``cell = [...]``): one run per cell, a cell
column in every table, CellModel files that load back, snapshots analysed per cell, figures per cell."""
from __future__ import annotations

import pandas as pd
import pytest

from gradlab import CellModel, RNN
from gradlab.study.states import load_model
from gradlab.study.training import run_study, train_spec_from_dict

STUDY = {"name": "cells", "train": "agreement:distance=3,n=24", "dev": "agreement:distance=3,n=8,seed=1",
         "task": "lm", "hidden_sizes": [4], "schemes": ["tbptt:2"], "learning_rates": [0.2], "seeds": [0],
         "epochs": 2, "batch_size": 4, "snapshots": True, "max_lag": 3, "snapshot_sentences": 8,
         "eval_tasks": ["lm", "agreement"], "cell": ["elman", "lstm"]}


@pytest.mark.slow
def test_a_study_of_two_cells_end_to_end(tmp_path):
    spec = train_spec_from_dict(STUDY)
    lines = []
    root = run_study(spec, tmp_path, progress=False, log=lines.append)
    summary = pd.read_csv(root / "summary.csv")
    assert summary["run"].tolist() == ["elman_h4_tbptt:2_lr0.2_seed0", "lstm_h4_tbptt:2_lr0.2_seed0"]
    assert list(summary.columns[:2]) == ["run", "cell"] and summary["cell"].tolist() == ["elman", "lstm"]
    for name in ("history", "evaluation", "by_distance", "snapshots_profile", "snapshots_gap", "snapshots_decay",
                 "timings"):
        frame = pd.read_csv(root / f"{name}.csv")
        assert list(frame.columns[:2]) == ["run", "cell"] and set(frame["cell"]) == {"elman", "lstm"}, name
    history = pd.read_csv(root / "history.csv")
    first, last = (history.groupby("cell")["train_loss"].agg(f) for f in ("first", "last"))
    assert (last < first).all(), history            # both cells learn
    # the snapshots' dependency tables are the Elman run's; the LSTM's gap is over its own parameters
    assert set(pd.read_csv(root / "snapshots_dependency_signal.csv")["cell"]) == {"elman"}
    gap = pd.read_csv(root / "snapshots_gap.csv")
    assert "weight_hh_l0" in set(gap[gap["cell"] == "lstm"]["parameter"])
    models = {r: load_model(next((root / "runs").glob(f"{r}_*")) / "model.npz") for r in ("elman", "lstm")}
    assert isinstance(models["elman"], RNN) and isinstance(models["lstm"], CellModel)
    assert isinstance(load_model(next((root / "runs").glob("lstm_*")) / "mid.npz"), CellModel)
    page = (root / "index.html").read_text(encoding="utf-8")
    assert "Cells compared: elman, lstm." in page
    for name in ("training_curves", "final_scores", "snapshot_profile", "snapshot_gap"):
        assert (root / f"{name}.png").is_file(), name
    # a second invocation reuses both runs
    lines.clear()
    run_study(spec, tmp_path, progress=False, log=lines.append, render=False)
    assert len(lines) == 2 and all("reused" in line for line in lines)
