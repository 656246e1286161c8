"""The ``gradlab`` command line, through typer's CliRunner (in process).

Reports drawn here get one real figure (see test_analysis_pipeline.py: all eight take ~20 s);
the default report at its real size runs only in the ``slow`` test.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from gradlab.cli import app
from gradlab.data import canonical_spec
from gradlab.report import figures
from gradlab.study import report as pipeline
from gradlab.study.spec import DEFAULT_SPEC, load_spec

SUBCOMMANDS = ("datasets", "describe", "run", "batch", "render", "warmup", "agreement-test")
DATASET_NAMES = ("agreement", "recall", "dyck", "markov", "linzen", "text")

TINY_TOML = """\
title = "Tiny CLI report"
datasets = ["agreement:distance=4,n=20", "markov:n=20"]
states = ["init:scale=0.5"]
hidden_size = 4
max_lag = 4
block_schemes = ["chunked:3"]
"""

runner = CliRunner()


@pytest.fixture(autouse=True)
def one_figure(monkeypatch):
    monkeypatch.setattr(figures, "REPORT", [f for f in figures.REPORT if f.NAME == "gap_sentences"])


def _spec_file(folder: Path, name: str = "tiny", text: str = TINY_TOML) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _invoke(args):
    return runner.invoke(app, [str(a) for a in args])


class _Capture:
    """Stands in for pipeline.run_spec: keeps the specs, runs them small and without figures."""

    def __init__(self, run=True):
        self.specs = []
        self.real = pipeline.run_spec
        self.run = run

    def __call__(self, spec, out="reports", **kwargs):
        self.specs.append(spec)
        if not self.run:
            folder = Path(out) / spec.name
            return folder
        return self.real(spec, out, progress=False, render=False)


# ---------------------------------------------------------------------- help and listings
def test_help_lists_every_subcommand():
    result = _invoke(["--help"])
    assert result.exit_code == 0, result.output
    for name in SUBCOMMANDS:
        assert name in result.output, name
    assert "--out" in result.output and "--quick" in result.output


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command):
    result = _invoke([command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_subcommand_does_not_run_the_default_report(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the default report ran")

    monkeypatch.setattr(pipeline, "run_spec", boom)
    assert _invoke(["datasets"]).exit_code == 0


def test_datasets_lists_every_dataset():
    result = _invoke(["datasets"])
    assert result.exit_code == 0, result.output
    for name in DATASET_NAMES:
        assert name in result.output, name
    short = _invoke(["datasets", "--no-parameters"])
    assert short.exit_code == 0, short.output
    for name in DATASET_NAMES:
        assert name in short.output, name


def test_describe(tmp_path):
    result = _invoke(["describe", "agreement:n=20"])
    assert result.exit_code == 0, result.output
    assert "agreement:n=20" in result.output and "n_sentences=20" in result.output
    csv = tmp_path / "table.csv"
    result = _invoke(["describe", "agreement:n=20", "--csv", csv])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(csv)) == 20
    assert f"wrote {csv}" in result.output


@pytest.mark.parametrize("spec, match", [("nope", "unknown dataset 'nope'"),
                                         ("agreement:foo=1", r"unknown parameter(s) ['foo']")])
def test_describe_bad_dataset_exits_2(spec, match):
    result = _invoke(["describe", spec])
    assert result.exit_code == 2
    assert "error:" in result.output and match in result.output


def test_warmup():
    result = _invoke(["warmup"])
    assert result.exit_code == 0, result.output
    assert "kernels ready in" in result.output


# ---------------------------------------------------------------------- run, batch, render
def test_run_writes_the_report(tmp_path):
    spec = _spec_file(tmp_path)
    out = tmp_path / "reports"
    result = _invoke(["run", spec, "--out", out])
    assert result.exit_code == 0, result.output
    index = out / "tiny" / "index.html"
    assert index.is_file()
    assert f"report: {index}" in result.output
    page = index.read_text(encoding="utf-8")
    assert "Tiny CLI report" in page and 'id="fig-gap_sentences"' in page
    summary = pd.read_csv(out / "tiny" / "summary.csv")
    assert list(summary["dataset"]) == [canonical_spec("agreement:distance=4,n=20"), canonical_spec("markov:n=20")]
    assert "computed: " in result.output and "reused: " not in result.output
    again = _invoke(["run", spec, "--out", out])
    assert again.exit_code == 0, again.output
    assert again.output.count("reused: ") == 2 and "computed: " not in again.output
    assert (out / "tiny" / "gap_sentences.svg").is_file()


def test_run_by_builtin_name_passes_the_loaded_spec(tmp_path, monkeypatch):
    capture = _Capture(run=False)
    monkeypatch.setattr(pipeline, "run_spec", capture)
    result = _invoke(["run", "vanishing-across-datasets", "-o", tmp_path])
    assert result.exit_code == 0, result.output
    assert capture.specs == [load_spec("vanishing-across-datasets")]


@pytest.mark.parametrize("text, match", [
    (TINY_TOML + "max_lags = 3\n", r"unknown key(s) ['max_lags']; allowed keys:"),
    (TINY_TOML.replace("markov:n=20", "nope"), "datasets: unknown dataset 'nope'; available: agreement"),
    (TINY_TOML.replace("max_lag = 4", "max_lag = -1"), "max_lag: must be >= 0"),
    (TINY_TOML.replace('"init:scale=0.5"', '"file:path=missing.npz"'), "states: model file missing.npz does not"),
    (TINY_TOML.replace('"chunked:3"', '"block:5,3"'), "block_schemes: block scheme needs k2 >= k1"),
    (TINY_TOML.replace("hidden_size = 4", 'hidden_size = "4"'), "key 'hidden_size' must be of type int"),
    (TINY_TOML + "task = 'translate'\n", "task: must be one of ('lm', 'number', 'agreement', 'recall', 'closing')"),
    ("datasets = [\n", "not valid TOML"),
])
def test_run_bad_spec_exits_2_and_creates_nothing(tmp_path, text, match):
    spec = _spec_file(tmp_path, "bad", text)
    out = tmp_path / "reports"
    result = _invoke(["run", spec, "--out", out])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and match in result.output
    assert str(spec) in result.output
    assert not out.exists()


def test_run_unknown_spec_name_lists_the_builtin_ones(tmp_path):
    out = tmp_path / "reports"
    result = _invoke(["run", "no-such-study", "--out", out])
    assert result.exit_code == 2
    assert "'no-such-study' not found" in result.output and "vanishing-across-datasets" in result.output
    assert not out.exists()


def test_batch_runs_every_spec(tmp_path):
    a = _spec_file(tmp_path, "first")
    b = _spec_file(tmp_path, "second", TINY_TOML.replace('"markov:n=20"', '"dyck:n=10"'))
    out = tmp_path / "reports"
    result = _invoke(["batch", a, b, "--out", out])
    assert result.exit_code == 0, result.output
    for name in ("first", "second"):
        assert (out / name / "index.html").is_file(), name
        assert f"report: {out / name / 'index.html'}" in result.output
    assert canonical_spec("dyck:n=10") in set(pd.read_csv(out / "second" / "summary.csv")["dataset"])


def test_batch_checks_every_spec_before_running_any(tmp_path):
    good = _spec_file(tmp_path, "good")
    bad = _spec_file(tmp_path, "bad", TINY_TOML + "colour = 'red'\n")
    out = tmp_path / "reports"
    result = _invoke(["batch", good, bad, "--out", out])
    assert result.exit_code == 2
    assert "unknown key(s) ['colour']" in result.output
    assert not out.exists()


def test_render_redraws_a_report(tmp_path):
    out = tmp_path / "reports"
    assert _invoke(["run", _spec_file(tmp_path), "--out", out]).exit_code == 0
    folder = out / "tiny"
    before = (folder / "index.html").read_bytes()
    (folder / "index.html").unlink()
    (folder / "gap_sentences.png").unlink()
    result = _invoke(["render", folder])
    assert result.exit_code == 0, result.output
    assert f"report: {folder / 'index.html'}" in result.output
    assert (folder / "index.html").read_bytes() == before
    assert (folder / "gap_sentences.png").is_file()


def test_render_redraws_a_training_study(tmp_path):
    out = tmp_path / "reports"
    spec = tmp_path / "study.toml"
    spec.write_text('title = "s"\ntrain = "agreement:distance=3,n=12"\ndev = "agreement:distance=3,n=6,seed=1"\n'
                    'hidden_sizes = [3]\nschemes = ["tbptt:1"]\nlearning_rates = [0.5]\nseeds = [0]\nepochs = 1\n'
                    'batch_size = 4\neval_tasks = ["lm"]\nsnapshots = false\n')
    assert _invoke(["run", spec, "--out", out]).exit_code == 0
    folder = out / "study"
    before = (folder / "index.html").read_bytes()
    (folder / "index.html").unlink()
    (folder / "training_curves.png").unlink()
    result = _invoke(["render", folder])
    assert result.exit_code == 0, result.output
    assert (folder / "index.html").read_bytes() == before
    assert (folder / "training_curves.png").is_file()


def test_render_without_csvs_exits_2_naming_the_folder(tmp_path):
    folder = tmp_path / "not-a-report"
    folder.mkdir()
    result = _invoke(["render", folder])
    assert result.exit_code == 2
    assert "error:" in result.output and str(folder) in result.output


# ---------------------------------------------------------------------- --quick and the default report
def test_run_quick_reduces_the_sizes(tmp_path, monkeypatch):
    text = TINY_TOML.replace("hidden_size = 4", "hidden_size = 50").replace("max_lag = 4", "max_lag = 30")
    text = text.replace("n=20", "n=300")
    spec = _spec_file(tmp_path, "big", text)
    capture = _Capture()
    monkeypatch.setattr(pipeline, "run_spec", capture)
    result = _invoke(["run", spec, "--quick", "--out", tmp_path / "reports"])
    assert result.exit_code == 0, result.output
    (got,) = capture.specs
    assert (got.n_sentences, got.max_lag, got.hidden_size) == (100, 10, 16)
    assert got.datasets == load_spec(spec).datasets
    folder = tmp_path / "reports" / "big-quick"  # never over the full report
    assert got.name == "big-quick"
    assert load_spec(folder / "spec.toml") == got
    summary = pd.read_csv(folder / "summary.csv")
    assert (summary["n_sentences"] == 100).all()
    assert pd.read_csv(folder / "gap.csv")["tau"].max() == 10


def test_quick_never_enlarges_a_small_spec(tmp_path, monkeypatch):
    capture = _Capture(run=False)
    monkeypatch.setattr(pipeline, "run_spec", capture)
    result = _invoke(["run", _spec_file(tmp_path), "--quick", "--out", tmp_path / "reports"])
    assert result.exit_code == 0, result.output
    (got,) = capture.specs
    assert (got.max_lag, got.hidden_size) == (4, 4)


def test_no_arguments_runs_the_default_spec(tmp_path, monkeypatch):
    capture = _Capture(run=False)
    monkeypatch.setattr(pipeline, "run_spec", capture)
    result = _invoke(["--out", tmp_path])
    assert result.exit_code == 0, result.output
    assert capture.specs == [DEFAULT_SPEC]
    assert f"report: {tmp_path / 'default' / 'index.html'}" in result.output
    capture.specs.clear()
    result = _invoke(["--quick", "--out", tmp_path])
    assert result.exit_code == 0, result.output
    (got,) = capture.specs
    assert got == DEFAULT_SPEC.reduced(200, max_lag=20, name="default-quick")
    assert (got.n_sentences, got.max_lag, got.datasets) == (200, 20, DEFAULT_SPEC.datasets)


@pytest.mark.slow
def test_default_quick_report_end_to_end(tmp_path, monkeypatch):
    monkeypatch.undo()  # every figure
    result = _invoke(["--quick", "--out", tmp_path])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "default-quick"
    assert (folder / "index.html").is_file() and not (tmp_path / "default").exists()
    for name in [f.NAME for f in figures.REPORT]:
        assert (folder / f"{name}.png").is_file() and (folder / f"{name}.svg").is_file(), name
    summary = pd.read_csv(folder / "summary.csv")
    assert len(summary) == len(DEFAULT_SPEC.datasets) * len(DEFAULT_SPEC.states)
    assert (summary["n_sentences"] == 200).all()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["spec"]["max_lag"] == 20


# ---------------------------------------------------------------------- every check before work
LINZEN_HEADER = "sentence\tsubj_idx\tverb_idx\tverb_pos\tverb\tinflected_verb\n"
LINZEN_ROWS = ["the dog near the cats runs .\t1\t5\tVBZ\truns\trun",
               "the dogs near the cat run .\t1\t5\tVBP\trun\truns"]


def _linzen(tmp_path, rows=LINZEN_ROWS) -> Path:
    path = tmp_path / "agree.tsv"
    path.write_text(LINZEN_HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def _no_unit_may_start(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a unit started")
    monkeypatch.setattr(pipeline, "run_unit", boom)


def _one_error_line(result):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    # one error line, last; anything before it is the progress bar of work that had started
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    assert "Traceback" not in result.output
    return errors[0]


def test_model_file_with_the_wrong_vocabulary_size_fails_before_work(tmp_path, monkeypatch):
    from gradlab import RNN
    RNN.init(7, 4, rng=0).save(tmp_path / "m.npz")
    text = TINY_TOML.replace('"init:scale=0.5"', f'"init:scale=0.5", "file:path={tmp_path / "m.npz"}"')
    _no_unit_may_start(monkeypatch)
    out = tmp_path / "reports"
    line = _one_error_line(_invoke(["run", _spec_file(tmp_path, "v", text), "--out", out]))
    assert f"model file {tmp_path / 'm.npz'} has |V| = 7" in line and "states" in line and "needs |V| =" in line
    assert not (out / "v" / "units").exists()


def test_malformed_data_file_fails_before_work(tmp_path, monkeypatch):
    bad = _linzen(tmp_path, LINZEN_ROWS + ["the dog runs\tone\t2\tVBZ\truns\trun"])
    text = TINY_TOML.replace('"markov:n=20"', f'"linzen:path={bad}"')
    _no_unit_may_start(monkeypatch)
    line = _one_error_line(_invoke(["run", _spec_file(tmp_path, "m", text), "--out", tmp_path / "reports"]))
    assert "datasets" in line and str(bad) in line and "line 4" in line


@pytest.mark.parametrize("make", ["file", "read-only"])
def test_unwritable_output_fails_before_work(tmp_path, monkeypatch, make):
    _no_unit_may_start(monkeypatch)
    out = tmp_path / "reports"
    if make == "file":
        out.write_text("not a folder")
    else:
        out.mkdir()
        from gradlab.study import plan as plan_module
        real = plan_module._may_write
        # root may write anywhere, so the permission bits alone cannot make this test fail
        monkeypatch.setattr(plan_module, "_may_write", lambda p: False if Path(p) == out else real(p))
    line = _one_error_line(_invoke(["run", _spec_file(tmp_path), "--out", out]))
    assert "output folder" in line and "choose another --out" in line
    assert ("is a file" if make == "file" else "not writable") in line


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_output_folder_by_permissions(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    out.chmod(0o555)
    try:
        line = _one_error_line(_invoke(["run", _spec_file(tmp_path), "--out", out]))
        assert "not writable" in line
    finally:
        out.chmod(0o755)


def test_huge_distance_is_refused_before_generating_it(tmp_path, monkeypatch):
    text = TINY_TOML.replace('"markov:n=20"', '"recall:distance=100000"').replace("max_lag = 4", "max_lag = 10")
    import gradlab.data.registry as registry
    monkeypatch.setattr(registry, "_build_recall", lambda p: (_ for _ in ()).throw(AssertionError("generated")))
    _no_unit_may_start(monkeypatch)
    line = _one_error_line(_invoke(["run", _spec_file(tmp_path, "huge", text), "--out", tmp_path / "reports",
                                    "--dry-run"]))
    assert "recall:distance=100000" in line and "estimated peak memory" in line and "GiB" in line
    assert "lower n_sentences" in line and "max_memory" in line


def test_unit_above_max_memory_is_refused_with_the_option_to_lower(tmp_path, monkeypatch):
    _no_unit_may_start(monkeypatch)
    line = _one_error_line(_invoke(["run", _spec_file(tmp_path, "small", TINY_TOML + "max_memory = 0.1\n"),
                                    "--out", tmp_path / "reports"]))
    assert "estimated peak memory" in line and "above the limit 102.4 MiB (max_memory = 0.1 GiB)" in line
    assert "lower n_sentences" in line and "max_lag" in line and str(tmp_path / "small.toml") in line


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch):
    _no_unit_may_start(monkeypatch)
    out = tmp_path / "reports"
    result = _invoke(["run", _spec_file(tmp_path), "--out", out, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "2 unit(s)" in result.output and result.output.count("compute ") == 2
    assert "estimated peak memory" in result.output and "N = " in result.output
    assert not out.exists()


def test_two_spellings_of_a_dataset_exit_2(tmp_path):
    text = TINY_TOML.replace('"markov:n=20"', '"agreement:n=20,distance=4"')
    line = _one_error_line(_invoke(["run", _spec_file(tmp_path, "twice", text), "--out", tmp_path / "o"]))
    assert "are the same dataset" in line


def test_debug_shows_the_traceback(tmp_path):
    result = _invoke(["--debug", "run", _spec_file(tmp_path, "bad", TINY_TOML + "colour = 1\n"),
                      "--out", tmp_path / "o"])
    assert result.exit_code != 0 and isinstance(result.exception, ValueError)


def test_unexpected_failure_during_work_is_one_error_line(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("kernel exploded")
    monkeypatch.setattr(pipeline, "run_unit", crash)
    line = _one_error_line(_invoke(["run", _spec_file(tmp_path), "--out", tmp_path / "o"]))
    # every unit is tried and named; the tracebacks go to a file, not the terminal
    assert line.startswith("error: tiny: 2 of 2 units failed (agreement:") and "| init:" in line
    assert line.count("RuntimeError: kernel exploded") == 2
    log = tmp_path / "o" / "tiny" / "failures.log"
    assert f"tracebacks in {log}" in line and "Traceback" in log.read_text() and "crash" in log.read_text()


def test_changed_data_file_recomputes_that_unit_only(tmp_path):
    data = _linzen(tmp_path)
    text = TINY_TOML.replace('"markov:n=20"', f'"linzen:path={data}"')
    spec, out = _spec_file(tmp_path, "files", text), tmp_path / "reports"
    assert _invoke(["run", spec, "--out", out]).exit_code == 0
    before = pd.read_csv(out / "files" / "summary.csv")
    # same path, other bytes: one more sentence
    _linzen(tmp_path, LINZEN_ROWS + ["the cat sleeps .\t1\t2\tVBZ\tsleeps\tsleep"])
    result = _invoke(["run", spec, "--out", out])
    assert result.exit_code == 0, result.output
    assert "reused: agreement:" in result.output and "computed: linzen:" in result.output
    assert result.output.count("computed: ") == 1
    after = pd.read_csv(out / "files" / "summary.csv")
    assert after.iloc[0].equals(before.iloc[0])
    assert after["mean_loss"].iloc[1] != before["mean_loss"].iloc[1]
    manifest = json.loads((out / "files" / "manifest.json").read_text())
    assert set(manifest["units"][1]["inputs"]) == {"dataset.path"}


def test_second_run_on_the_same_folder_stops_naming_the_first(tmp_path):
    import os
    from gradlab.study.plan import output_lock
    out = tmp_path / "reports"
    (out / "tiny").mkdir(parents=True)
    with output_lock(out / "tiny"):
        line = _one_error_line(_invoke(["run", _spec_file(tmp_path), "--out", out]))
    assert f"in use by another gradlab run (pid {os.getpid()})" in line and "--wait" in line
    assert not (out / "tiny" / "units").exists()


def test_overwritten_model_file_recomputes_that_unit_only(tmp_path):
    from gradlab import RNN, load_dataset
    n_words = len(load_dataset("agreement:distance=4,n=20").vocab)
    model = tmp_path / "m.npz"
    RNN.init(n_words, 4, rng=0).save(model)
    text = TINY_TOML.replace('"markov:n=20"', '"agreement:distance=3,n=20"').replace(
        '"init:scale=0.5"', f'"init:scale=0.5", "file:path={model}"')
    spec, out = _spec_file(tmp_path, "model", text), tmp_path / "reports"
    assert _invoke(["run", spec, "--out", out]).exit_code == 0
    before = pd.read_csv(out / "model" / "summary.csv")
    RNN.init(n_words, 4, rng=1, scale=1.5).save(model)  # same path and sizes, other weights
    result = _invoke(["run", spec, "--out", out])
    assert result.exit_code == 0, result.output
    assert result.output.count("computed: ") == 2 and result.output.count("reused: ") == 2
    assert all(line.endswith(f"file:path={model}") for line in result.output.splitlines()
               if line.startswith("computed: "))
    after = pd.read_csv(out / "model" / "summary.csv")
    is_file = after["state"] == f"file:path={model}"
    assert (after.loc[~is_file, "beta"].to_numpy() == before.loc[~is_file, "beta"].to_numpy()).all()
    assert (after.loc[is_file, "beta"].to_numpy() != before.loc[is_file, "beta"].to_numpy()).all()


def test_second_run_waits_with_wait(tmp_path):
    import threading
    import time
    from gradlab.study.plan import output_lock
    out = tmp_path / "reports"
    (out / "tiny").mkdir(parents=True)
    held, release = threading.Event(), threading.Event()

    def first():
        with output_lock(out / "tiny"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    timer = threading.Timer(1.0, release.set)
    timer.start()
    start = time.perf_counter()
    result = _invoke(["run", _spec_file(tmp_path), "--out", out, "--wait"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - start >= 0.9  # it waited for the first run to let go
    assert (out / "tiny" / "index.html").is_file()


def test_dry_run_of_a_report_of_cells_names_each_unit_s_cell(tmp_path, monkeypatch):
    _no_unit_may_start(monkeypatch)
    text = TINY_TOML + 'cell = ["elman", "lstm"]\n'
    result = _invoke(["run", _spec_file(tmp_path, "cells", text), "--out", tmp_path / "reports", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "4 unit(s)" in result.output and result.output.count("compute ") == 4
    assert result.output.count(" | lstm | ") == 2 and result.output.count(" | elman | ") == 2


def test_dtype_float32_for_a_cell_exits_2_naming_the_key(tmp_path):
    text = TINY_TOML + 'cell = "gru"\n'
    line = _one_error_line(_invoke(["run", _spec_file(tmp_path, "gru", text), "--out", tmp_path / "o",
                                    "--dtype", "float32"]))
    assert "dtype: float32 is for the Elman cell only" in line
