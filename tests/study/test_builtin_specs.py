"""Every analysis spec shipped in analyses/ loads, validates, and runs on a reduced size.

Specs that read the real agreement data (../shared/data relative to the repository root,
as the coursework spec says) run from the repository root and are skipped when the data
is not there.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gradlab.study.report import FRAMES, run_spec
from gradlab.report.figures import REPORT as FIGURES
from gradlab.study.spec import ANALYSES_DIR, load_spec, validate

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
def _is_report_spec(path) -> bool:
    from gradlab.study.spec import is_training_spec, read_spec_file
    return not is_training_spec(read_spec_file(path)[1])


#: Report specs; the training studies in analyses/ are tested in tests/study (test_training_analyses.py).
SPECS = sorted(p for p in (REPO / "analyses").glob("*.toml") if _is_report_spec(p))
#: Reduced size for CI: 20 sentences per dataset, K = 4, H = 4.
REDUCED = dict(n_sentences=20, max_lag=4, hidden_size=4)


def _needs_shared_data(path: Path) -> bool:
    return "shared/data" in path.read_text(encoding="utf-8")


@pytest.fixture
def at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def _load(path: Path):
    if _needs_shared_data(path) and not (SHARED_DATA / "linzen-agreement").is_dir():
        pytest.skip(f"{path.name} reads {SHARED_DATA / 'linzen-agreement'}, which is not here")
    return load_spec(path)


def test_specs_are_found():
    assert ANALYSES_DIR == REPO / "analyses"
    names = {p.stem for p in SPECS}
    assert {"vanishing-across-datasets", "truncation-gap-across-datasets", "coursework-agreement",
            "vanishing-and-gap-across-cells"} <= names


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_spec_loads_and_validates(path, at_repo_root):
    spec = _load(path)
    validate(spec)
    assert spec.name == path.stem
    assert spec == load_spec(path.stem)  # also by name
    small = spec.reduced(**REDUCED)
    validate(small)
    assert (small.max_lag, small.hidden_size) == (4, 4) and small.n_sentences == 20


@pytest.mark.slow
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_spec_runs_reduced(path, at_repo_root, tmp_path):
    spec = _load(path).reduced(**REDUCED)
    root = run_spec(spec, tmp_path, progress=False)
    assert root == tmp_path / spec.name
    assert (root / "index.html").is_file()
    summary = pd.read_csv(root / "summary.csv")
    assert len(summary) == len(spec.datasets) * len(spec.states) * len(spec.cells)
    assert (summary["n_sentences"] <= 20).all()
    gap = pd.read_csv(root / "gap.csv")
    assert gap["tau"].max() == 4
    blocks = gap[gap["family"] == "block"]
    assert blocks["scheme"].nunique() == len(spec.block_schemes)
    for name in ("profile", "heatmap", "decay", "gap", "summary"):
        assert (root / f"{name}.csv").is_file(), name
    assert ((root / "gap_sentences.csv.gz").is_file()) == spec.per_sentence
    page = (root / "index.html").read_text(encoding="utf-8")
    for name in [f.NAME for f in FIGURES]:
        if (root / f"{name}.png").is_file():
            assert (root / f"{name}.svg").is_file() and f'id="fig-{name}"' in page, name
    for name in ("profile", "decay", "heatmap", "gap", "cosine"):
        assert (root / f"{name}.png").is_file(), name
    assert summary["dataset"].nunique() == len(spec.datasets)
    assert summary["state"].nunique() == len(spec.states)
    assert {p.name.split(".")[0] for p in root.glob("*.csv*")} <= set(FRAMES) | {"timings"}
