"""Every training spec in analyses/ loads and runs reduced (--quick); the linzen ones need ../shared/data."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gradlab.study.training import load_train_spec, run_study

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
SPECS = ["coursework-tuning-grid", "coursework-number-prediction", "coursework-agreement-lm", "outcome-gap"]


def _load(name, monkeypatch):
    monkeypatch.chdir(REPO)
    path = REPO / "analyses" / f"{name}.toml"
    if "shared/data" in path.read_text() and not (SHARED_DATA / "linzen-agreement").is_dir():
        pytest.skip(f"{name} reads {SHARED_DATA / 'linzen-agreement'}, which is not here")
    return load_train_spec(path)


@pytest.mark.parametrize("name", SPECS)
def test_training_spec_loads(name, monkeypatch):
    spec = _load(name, monkeypatch)
    assert spec.name == name
    quick = spec.quick()
    assert quick.epochs == 1 and quick.hidden_sizes == [4] and quick.n_sentences == 20


def test_outcome_gap_answers_the_question(monkeypatch):
    spec = _load("outcome-gap", monkeypatch)
    assert "tbptt:2" in spec.schemes and "full" in spec.schemes and len(spec.seeds) >= 3
    assert "distance=8" in spec.train and spec.snapshots and "agreement" in spec.eval_tasks


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECS)
def test_training_spec_runs_quick(name, monkeypatch, tmp_path):
    spec = _load(name, monkeypatch).quick()
    root = run_study(spec, tmp_path, progress=False)
    assert (root / "index.html").is_file() and (root / "training_curves.png").is_file()
    summary = pd.read_csv(root / "summary.csv")
    assert len(summary) == len(spec.schemes) * len(spec.learning_rates) * len(spec.seeds)
