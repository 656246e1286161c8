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
from gradlab.report import pipeline, render
from gradlab.report.spec import DEFAULT_SPEC, load_spec

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
    monkeypatch.setattr(render, "FIGURES", [f for f in render.FIGURES if f[0] == "gap_sentences"])


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
    assert list(summary["dataset"]) == ["agreement:distance=4,n=20", "markov:n=20"]
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
    assert "dyck:n=10" in set(pd.read_csv(out / "second" / "summary.csv")["dataset"])


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
    folder = tmp_path / "reports" / "big"
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
    assert got == DEFAULT_SPEC.reduced(200, max_lag=20)
    assert (got.n_sentences, got.max_lag, got.datasets) == (200, 20, DEFAULT_SPEC.datasets)


@pytest.mark.slow
def test_default_quick_report_end_to_end(tmp_path, monkeypatch):
    monkeypatch.undo()  # every figure
    result = _invoke(["--quick", "--out", tmp_path])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "default"
    assert (folder / "index.html").is_file()
    for name, _, _ in render.FIGURES:
        assert (folder / f"{name}.png").is_file() and (folder / f"{name}.svg").is_file(), name
    summary = pd.read_csv(folder / "summary.csv")
    assert len(summary) == len(DEFAULT_SPEC.datasets) * len(DEFAULT_SPEC.states)
    assert (summary["n_sentences"] == 200).all()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["spec"]["max_lag"] == 20
