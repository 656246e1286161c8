"""Study suites: validation, the truncation-learning spec, its quick run, and findings computed from the CSVs."""
from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from gradlab.cli import app
from gradlab.report import figures
from gradlab.report.findings import findings
from gradlab.study.suite import load_suite, render_suite, run_suite, suite_from_dict

REPO = Path(__file__).resolve().parents[2]
COMMON = {"title": "s", "hidden_sizes": [4], "schemes": ["tbptt:1", "full", "adaptive:delta=0.2,every=3"], "learning_rates": [0.3],
          "seeds": [0], "epochs": 2, "batch_size": 5, "activation": "tanh", "recurrent_init": "orthogonal",
          "clip": 1.0, "curriculum_stages": 2}
PART = {"name": "recall", "train": "recall:distance=6,n=20", "dev": "recall:distance=6,min_distance=2,n=15,seed=1",
        "task": "recall", "min_distance": 2}


def suite(**kw):
    return suite_from_dict({**COMMON, "distributions": ["longest", "uniform", "curriculum"], "tasks": [PART], **kw})


@pytest.mark.parametrize("kw, message", [
    ({"tasks": []}, "tasks must be a list of"),
    ({"distributions": ["longest", "zipf"]}, "distributions must be a list of distinct values"),
    ({"train": "recall"}, r"key\(s\) \['train'\] belong in each \[\[tasks\]\] table"),
    ({"tasks": [{**PART, "colour": 1}]}, r"tasks\[0\]: unknown key\(s\) \['colour'\]"),
    ({"tasks": [{k: v for k, v in PART.items() if k != "task"}]}, r"tasks\[0\]: needs 'task'"),
    ({"tasks": [PART, PART]}, r"tasks\[1\]: name 'recall' is used twice"),
    ({"tasks": [{k: v for k, v in PART.items() if k != "min_distance"}]}, "distribution 'uniform' needs min_distance"),
    ({"epochs": 0}, r"tasks\[0\] \(recall, longest\): epochs: must be an integer >= 1"),
    ({"cell": ["elman", "gru"]}, r"cell: a suite trains one cell .*write one suite per cell"),
    ({"cell": "gru"}, r"tasks\[0\] \(recall, longest\): activation: is the Elman cell's"),
])
def test_bad_suites_name_the_part_and_key(kw, message):
    with pytest.raises(ValueError, match=message):
        suite(**kw)


def test_a_suite_of_one_cell_trains_that_cell_in_every_study():
    s = suite(cell="lstm", num_layers=2, activation="sigmoid", recurrent_init="normal")
    assert all(study.cells == ["lstm"] and study.num_layers == 2 for study in s.studies)


def test_suite_expands_tasks_times_distributions():
    s = suite()
    assert [x.name for x in s.studies] == ["recall-longest", "recall-uniform", "recall-curriculum"]
    assert [x.distribution for x in s.studies] == ["fixed", "uniform", "curriculum"]
    assert s.studies[0].min_distance is None and s.studies[1].min_distance == 2
    q = s.quick()
    assert all(x.epochs == 1 and x.curriculum_stages == 1 and x.seeds == [0] for x in q.studies)


def test_truncation_learning_spec_is_the_issues_design(monkeypatch):
    monkeypatch.chdir(REPO)
    s = load_suite("truncation-learning")
    assert set(s.parts) == {"recall", "agreement", "dyck"}
    assert set(s.distributions) == {"longest", "uniform", "curriculum"}
    for st in s.studies:
        assert {f"tbptt:{t}" for t in (0, 1, 2, 3, 5, 10)} <= set(st.schemes)
        assert "full" in st.schemes and any(x.startswith("adaptive:") for x in st.schemes)
        assert any(x.startswith("chunked:") for x in st.schemes) and any(x.startswith("mikolov:") for x in st.schemes)
        assert len(st.seeds) >= 5 and st.snapshots
        assert int(re.search(r"distance=(\d+)", st.train).group(1)) >= 20


def _frames(root):
    return {n: pd.read_csv(root / f"{n}.csv") for n in ("by_distance", "snapshots_gap", "history",
                                                        "snapshots_dependency_kept", "snapshots_dependency_signal")
            if (root / f"{n}.csv").exists()}


def _page_findings(root) -> str:
    page = (root / "index.html").read_text()
    return unescape(page.split('<h2 id="findings">Findings</h2>')[1].split("<h2")[0])


def test_tiny_suite_runs_and_its_findings_come_from_the_csvs(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "STUDY", figures.STUDY[:1])
    s = suite(snapshots=True, max_lag=4, snapshot_sentences=5)
    root = run_suite(s, tmp_path, progress=False)
    bd = pd.read_csv(root / "by_distance.csv")
    assert list(bd.columns[:2]) == ["part", "distribution"]
    assert set(bd["distribution"]) == {"longest", "uniform", "curriculum"}
    assert (root / "recall-uniform" / "index.html").is_file()
    for fig in ("accuracy_at_longest", "accuracy_by_distance_ci", "longest_learned"):
        assert (root / f"{fig}.png").is_file(), fig
    text = findings(_frames(root))
    assert len(text) == 3 and all(t.startswith("part recall, distribution ") for t in text)
    assert text[0] in _page_findings(root)
    hist = pd.read_csv(root / "history.csv")
    final = hist[(hist["scheme"] == "adaptive:delta=0.2,every=3") & (hist["distribution"] == "longest")]["tau"]
    assert f"adaptive:delta=0.2,every=3 ended with tau = {final.iloc[-1]:.1f}" in text[0]
    # change one number in a CSV: the text computed from it changes, on the page too after a re-render
    longest = bd["distance"].max()
    hit = (bd["scheme"] == "full") & (bd["distribution"] == "longest") & (bd["distance"] == longest)
    bd.loc[hit, "accuracy"] = 0.123
    bd.to_csv(root / "by_distance.csv", index=False)
    changed = findings(_frames(root))
    assert changed[0] != text[0] and "full BPTT reaches accuracy 0.12" in changed[0]
    assert changed[1:] == text[1:]
    render_suite(root)
    assert "full BPTT reaches accuracy 0.12" in _page_findings(root)
    # the snapshots' dependency signal: the share of TBPTT(1)'s model's signal at lags > 1, from its CSV
    assert "dependency signal on the snapshot sentences (annotated lags 1-5 steps" in text[0]
    kept = pd.read_csv(root / "snapshots_dependency_kept.csv")
    own = (kept["scheme"] == "tbptt:1") & (kept["tau"] == 1) & (kept["distribution"] == "longest")
    assert f"tau = 1: {1 - kept.loc[own & (kept['snapshot'] == 'init'), 'kept_share'].mean():.2f} at init" in text[0]
    kept.loc[own & (kept["snapshot"] == "init"), "kept_share"] = 0.25
    kept.to_csv(root / "snapshots_dependency_kept.csv", index=False)
    again = findings(_frames(root))
    assert "lags > tau (what full BPTT would send and TBPTT(tau) never does; mean over seeds): tau = 1: 0.75 at " \
           "init" in again[0]
    assert again[1:] == changed[1:]
    assert (root / "snapshot_dependencies.png").is_file()


def test_findings_say_when_truncation_learns_past_its_window():
    rows = []
    for scheme, acc in (("tbptt:1", [1.0, 0.95, 0.93]), ("tbptt:3", [1.0, 0.5, 0.4]), ("full", [1.0, 1.0, 0.99])):
        for seed in (0, 1):
            rows += [("p", "uniform", scheme, seed, d, a) for d, a in zip((2, 6, 10), acc)]
    bd = pd.DataFrame(rows, columns=["part", "distribution", "scheme", "seed", "distance", "accuracy"])
    (text,) = findings({"by_distance": bd})
    assert "full BPTT reaches accuracy 0.99" in text
    assert "schemes with mean accuracy >= 0.9 there: tbptt:1, full" in text
    assert "learned past its window (mean longest distance learned > tau + 1) for tau = 1: 10.0" in text
    assert "it did not for tau = 3: 2.0" in text


def _dependency_frames():
    """Snapshots of two seeds of tbptt:1 and full on one part: lags 1 and 5, kept shares for tau 0..5."""
    kept, signal = [], []
    for scheme in ("tbptt:1", "full"):
        for seed in (0, 1):
            run = f"{scheme}_{seed}"
            for snap, at_1, rel_5 in (("init", 0.4, 0.5), ("end", 0.2 + 0.1 * seed if scheme == "tbptt:1" else 0.5,
                                                               2.0 + seed)):
                for tau in range(6):
                    kept.append(("p", "uniform", run, 4, scheme, 0.1, seed, snap, tau,
                                 0.0 if tau == 0 else at_1 if tau < 5 else 1.0))
                signal += [("p", "uniform", run, 4, scheme, 0.1, seed, snap, 1, 3, 1.0, 1.0),
                           ("p", "uniform", run, 4, scheme, 0.1, seed, snap, 5, 2, 1.0, rel_5)]
    head = ["part", "distribution", "run", "hidden_size", "scheme", "learning_rate", "seed", "snapshot"]
    return {"snapshots_dependency_kept": pd.DataFrame(kept, columns=head + ["tau", "kept_share"]),
            "snapshots_dependency_signal": pd.DataFrame(signal, columns=head + ["lag", "n", "signal", "signal_rel"])}


def test_findings_relate_the_dependency_signal_to_what_was_learned():
    rows = [("p", "uniform", s, seed, d, a) for s, accs in (("tbptt:1", (1.0, 0.95)), ("full", (1.0, 1.0)))
            for seed in (0, 1) for d, a in zip((2, 6), accs)]
    bd = pd.DataFrame(rows, columns=["part", "distribution", "scheme", "seed", "distance", "accuracy"])
    deps = _dependency_frames()
    (text,) = findings({"by_distance": bd, **deps})
    assert "annotated lags 1-5 steps" in text
    # TBPTT(1)'s own model: 1 - 0.4 at init; 1 - 0.2 and 1 - 0.3 over the seeds at the end
    assert "tau = 1: 0.60 at init, 0.75 (95% CI 0.11-1.39, n = 2 seeds) at the end, mean longest distance " \
           "learned 6.0 (past its window" in text
    assert "at the longest lag (5 steps), for each scheme's own model: full 0.50 at init, 2.50 (95% CI " in text
    assert "share of full BPTT's dependency signal that TBPTT(tau) would keep (mean over seeds): tau = 1: 0.40 at " \
           "init, 0.50 at the end" in text
    k = deps["snapshots_dependency_kept"]
    k.loc[(k["scheme"] == "full") & (k["snapshot"] == "end") & (k["tau"] == 1), "kept_share"] = 0.9
    (changed,) = findings({"by_distance": bd, **deps})
    assert "tau = 1: 0.40 at init, 0.90 at the end" in changed and changed != text
    assert findings({"by_distance": bd}) != [text]       # without the snapshots' tables: no dependency text


@pytest.mark.slow
def test_truncation_learning_quick_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(figures, "STUDY", figures.STUDY[:1])
    result = CliRunner().invoke(app, ["train", "truncation-learning", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "truncation-learning-quick"          # a quick run never writes over the full one
    summary = pd.read_csv(root / "summary.csv")
    assert len(summary) == 9 * 12                      # 3 tasks x 3 distributions x 12 schemes x 1 seed
    assert set(summary["part"]) == {"recall", "agreement", "dyck"}
    history = pd.read_csv(root / "history.csv")
    adaptive = history[history["scheme"].str.startswith("adaptive")]
    assert adaptive["tau"].notna().all()
    assert len(findings(_frames(root))) == 9
    manifest = json.loads((root / "manifest.json").read_text())
    assert len(manifest["studies"]) == 9


def test_a_suite_is_not_a_single_study_nor_a_report(monkeypatch):
    from gradlab.study.spec import load_spec
    from gradlab.study.training import load_train_spec
    monkeypatch.chdir(REPO)
    with pytest.raises(ValueError, match="is a suite of studies"):
        load_train_spec("truncation-learning")
    with pytest.raises(ValueError, match="is a training study spec"):
        load_spec("truncation-learning")
    with pytest.raises(ValueError, match="is not a suite"):
        load_suite("outcome-gap")
