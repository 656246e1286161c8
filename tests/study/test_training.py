"""A tiny training study end to end: files, resume, determinism, CLI; the report's "train" state."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gradlab.study import training as study
from gradlab.study.report import run_spec, units, unit_inputs
from gradlab.study.spec import Spec
from gradlab.study.training import TRAIN_FRAMES, run_study, train_spec_from_dict

TINY = {"name": "tiny", "train": "agreement:distance=5,min_distance=1,n=24", "task": "lm", "hidden_sizes": [4],
        "schemes": ["tbptt:1", "full"], "learning_rates": [0.5], "seeds": [0, 1], "epochs": 1, "batch_size": 4,
        "eval_tasks": ["lm", "agreement"], "snapshots": True, "max_lag": 3, "snapshot_sentences": 10,
        "dev": "agreement:distance=5,min_distance=1,n=12,seed=1"}
FIGS = ("training_curves", "accuracy_by_distance", "final_scores", "snapshot_profile", "snapshot_gap")


def _spec(**kw):
    return train_spec_from_dict({**TINY, **kw})


def test_tiny_study_writes_everything_and_is_deterministic(tmp_path):
    root = run_study(_spec(), tmp_path / "a", progress=False)
    for name in TRAIN_FRAMES + ("timings",):
        if name != "agreement_sets":    # written with the spec key agreement_sets only (test_study_agreement_sets)
            assert (root / f"{name}.csv").is_file(), name
    assert not (root / "agreement_sets.csv").exists() and not (root / "agreement_sets.png").exists()
    for name in FIGS:
        assert (root / f"{name}.png").is_file() and (root / f"{name}.svg").is_file(), name
    page = (root / "index.html").read_text()
    assert "timings.csv" in page and "snapshot_gap" in page
    summary = pd.read_csv(root / "summary.csv")
    assert len(summary) == 4 and {"accuracy_lm", "accuracy_agreement", "dev_loss"} <= set(summary.columns)
    ev = pd.read_csv(root / "evaluation.csv")
    assert len(ev) == 8 and set(ev["task"]) == {"lm", "agreement"}
    snaps = pd.read_csv(root / "snapshots_gap.csv")
    assert set(snaps["snapshot"]) == {"init", "mid", "end"}
    assert "tbptt:1 @ end" in set(snaps["state"])
    for run in root.glob("runs/*"):
        assert (run / "done.json").is_file() and (run / "model.npz").is_file()
    other = run_study(_spec(), tmp_path / "b", progress=False)
    files = lambda r: {str(p.relative_to(r)): p.read_bytes() for p in sorted(r.rglob("*"))  # noqa: E731
                       if p.is_file() and p.name not in ("timings.csv", "timing.csv", ".lock")}
    assert files(root) == files(other)  # index.html and the figures included
    assert list(pd.read_csv(other / "timings.csv")["status"]) == ["computed"] * 4
    run_study(_spec(), tmp_path / "b", progress=False, render=False)
    assert list(pd.read_csv(other / "timings.csv")["status"]) == ["reused"] * 4


def test_rerun_skips_finished_runs_and_resumes_interrupted(tmp_path, monkeypatch):
    spec = _spec(epochs=2, snapshots=False, schemes=["full"], seeds=[0, 1])
    reference = run_study(spec, tmp_path / "ref", progress=False, render=False)
    calls, interrupted = [], []
    real = study._make_trainer

    class Interrupt(KeyboardInterrupt):  # Ctrl-C: stops the whole study (a failing run would not)
        pass

    def interrupting(**options):
        calls.append(options["seed"])
        if options["seed"] == 1 and not interrupted:  # stop seed 1 in its second epoch
            def cb(p):
                if p.epoch == 1:
                    interrupted.append(True)
                    raise Interrupt
            options = {**options, "callback": cb}
        return real(**options)

    monkeypatch.setattr(study, "_make_trainer", interrupting)
    with pytest.raises(Interrupt):
        run_study(spec, tmp_path / "x", progress=False, render=False)
    assert calls == [0, 1]
    calls.clear()
    root = run_study(spec, tmp_path / "x", progress=False, render=False)
    assert calls == [1]  # seed 0 was done; seed 1 resumed from its checkpoint
    timing = pd.read_csv(root / "timings.csv")
    assert timing.loc[timing["seed"] == 1, "resumed_from_update"].iloc[0] > 0
    for name in ("history", "evaluation", "summary", "by_distance"):
        assert (root / f"{name}.csv").read_bytes() == (reference / f"{name}.csv").read_bytes(), name
    calls.clear()
    run_study(spec, tmp_path / "x", progress=False, render=False)
    assert calls == []


def test_cli_train_quick(tmp_path, monkeypatch):
    from gradlab.cli import app
    path = tmp_path / "s.toml"
    path.write_text('train = "agreement:distance=4,n=30"\nschemes = ["tbptt:1"]\nhidden_sizes = [8]\n'
                    'epochs = 3\nbatch_size = 5\n')
    result = CliRunner().invoke(app, ["train", str(path), "--quick", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "s-quick" / "index.html").is_file()  # never over the full study
    assert pd.read_csv(tmp_path / "out" / "s-quick" / "history.csv")["epoch"].max() == 0  # quick: 1 epoch
    bad = tmp_path / "bad.toml"
    bad.write_text('train = "agreement:n=30"\nschemes = ["tbptt:-2"]\n')
    result = CliRunner().invoke(app, ["train", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "schemes" in result.output
    not_a_study = tmp_path / "report.toml"
    not_a_study.write_text('datasets = ["markov:n=10"]\n')
    result = CliRunner().invoke(app, ["train", str(not_a_study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "gradlab run" in result.output


def test_cli_run_dispatches_training_studies(tmp_path):
    """`gradlab run` and `batch` take training studies too; `load_spec` points report users to `gradlab train`."""
    from gradlab.cli import app
    from gradlab.study.spec import load_spec
    path = tmp_path / "s.toml"
    path.write_text('train = "agreement:distance=4,n=30"\nschemes = ["tbptt:1"]\nhidden_sizes = [8]\n')
    result = CliRunner().invoke(app, ["run", str(path), "--quick", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "s-quick" / "history.csv").is_file()
    with pytest.raises(ValueError, match="training study spec.*gradlab train"):
        load_spec(path)


def test_train_state_in_report_spec(tmp_path):
    train = "train:scheme=tbptt:2,epochs=2,lr=0.5,batch_size=5"
    spec = Spec(name="r", datasets=["agreement:distance=4,n=20"], states=["init", train, train + ",at=init",
                                                                          train + ",at=mid"],
                hidden_size=4, max_lag=3, n_sentences=20, block_schemes=[])
    us = units(spec)
    models = [unit_inputs(spec, u)[2] for u in us]
    init, end, at_init, mid = models
    np.testing.assert_array_equal(init.U, at_init.U)
    np.testing.assert_array_equal(init.W, at_init.W)
    assert not np.allclose(init.U, end.U) and not np.allclose(mid.U, end.U) and not np.allclose(init.U, mid.U)
    root = run_spec(spec, tmp_path, progress=False, render=False)
    summary = pd.read_csv(root / "summary.csv")
    assert len(summary) == 4 and summary["mean_loss"].iloc[1] < summary["mean_loss"].iloc[0]
    from gradlab.model import RNN
    saved = RNN.load(root / "units" / us[1]["slug"] / "model.npz")
    np.testing.assert_array_equal(saved.U, end.U)


# ---------------------------------------------------------------------- checks before training, keys, lock
def _text_study(tmp_path, lines):
    data = tmp_path / "corpus.txt"
    data.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    spec = tmp_path / "t.toml"
    spec.write_text(f'train = "text:path={data}"\nschemes = ["tbptt:1"]\nhidden_sizes = [3]\nepochs = 1\n'
                    'batch_size = 2\n')
    return data, spec


def _error_line(result):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def _no_run_may_start(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a run started")
    monkeypatch.setattr(study, "run_one", boom)


SENTENCES = ["the cat sat on the mat", "a dog ran", "the dog sat", "a cat ran on the mat", "the mat"] * 4


def test_study_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch):
    from gradlab.cli import app
    _, spec = _text_study(tmp_path, SENTENCES)
    _no_run_may_start(monkeypatch)
    result = CliRunner().invoke(app, ["train", str(spec), "--out", str(tmp_path / "out"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 run(s)" in result.output and "compute " in result.output and "estimated peak memory" in result.output
    assert not (tmp_path / "out").exists()


def test_study_with_a_malformed_file_or_unwritable_output_fails_before_training(tmp_path, monkeypatch):
    from gradlab.cli import app
    data, spec = _text_study(tmp_path, SENTENCES)
    _no_run_may_start(monkeypatch)
    data.write_bytes(b"the cat\n\xff\xfe bad bytes\n")
    line = _error_line(CliRunner().invoke(app, ["train", str(spec), "--out", str(tmp_path / "out")]))
    assert str(data) in line and "line 2" in line
    _text_study(tmp_path, SENTENCES)
    (tmp_path / "file").write_text("x")
    line = _error_line(CliRunner().invoke(app, ["train", str(spec), "--out", str(tmp_path / "file")]))
    assert "is a file, not a folder" in line
    big = spec.read_text() + "max_memory = 0.01\n"
    spec.write_text(big)
    line = _error_line(CliRunner().invoke(app, ["train", str(spec), "--out", str(tmp_path / "out")]))
    assert "run h3_tbptt:1_lr0.5_seed0: estimated peak memory" in line and "lower n_sentences" in line


def test_changed_training_file_retrains(tmp_path):
    data, spec_path = _text_study(tmp_path, SENTENCES)
    spec = study.load_train_spec(spec_path)
    lines = []
    run_study(spec, tmp_path / "out", progress=False, render=False, log=lines.append)
    first = pd.read_csv(tmp_path / "out" / "t" / "summary.csv")
    run_study(spec, tmp_path / "out", progress=False, render=False, log=lines.append)
    assert lines == ["computed: h3_tbptt:1_lr0.5_seed0", "reused: h3_tbptt:1_lr0.5_seed0"]
    _text_study(tmp_path, SENTENCES[:-3])
    run_study(spec, tmp_path / "out", progress=False, render=False, log=lines.append)
    assert lines[-1] == "computed: h3_tbptt:1_lr0.5_seed0"
    assert pd.read_csv(tmp_path / "out" / "t" / "summary.csv")["train_loss"].iloc[0] != first["train_loss"].iloc[0]


def test_second_study_on_the_same_folder_stops(tmp_path, monkeypatch):
    import os
    from gradlab.cli import app
    from gradlab.study.plan import output_lock
    _, spec = _text_study(tmp_path, SENTENCES)
    folder = tmp_path / "out" / "t"
    folder.mkdir(parents=True)
    _no_run_may_start(monkeypatch)
    with output_lock(folder):
        line = _error_line(CliRunner().invoke(app, ["train", str(spec), "--out", str(tmp_path / "out")]))
    assert f"pid {os.getpid()}" in line
