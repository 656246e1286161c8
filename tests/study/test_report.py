"""The report pipeline: CSVs with the documented columns and the right numbers, figures, index.html,
byte-identical reruns, resuming after an interruption, atomic writes.

Drawing all eight figures takes ~20 s on a 2-core machine, so the fast tests draw one real
figure (``gap_sentences``) and the full set is checked in the ``slow`` tests.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gradlab
from gradlab import Full, Sliding, gradient
from gradlab.analysis import analyse
from gradlab.data import canonical_spec
from gradlab.report import figures
from gradlab.study import report as pipeline
from gradlab.study import runner
from gradlab.report.frames import COLUMN_DOCS
from gradlab.report.style import wrap as _wrap
from gradlab.study.report import FRAMES, load_frames, run_spec, table_name, units, write_atomic
from gradlab.report.render import render_report
from gradlab.study.spec import Spec, load_spec

#: CSVs keep 10 significant digits (float_format="%.10g").
CSV_RTOL = 1e-9
#: Where a relative error is zero in exact arithmetic both sides are round-off.
CSV_ATOL = 1e-11

DATASETS = ["agreement:distance=4,n=30", "markov:n=30"]
STATES = ["init:scale=0.5", "init:scale=1.5"]
TINY = Spec(name="tiny", title="Tiny report", datasets=DATASETS, states=STATES, hidden_size=4, max_lag=6,
            block_schemes=["chunked:3"], seed=3)
#: The dataset and state columns hold the canonical texts.
CANON = [canonical_spec(d) for d in DATASETS]
STATE_LABELS = [f"init:scale={s},seed=3,activation=sigmoid" for s in ("0.5", "1.5")]
#: The cheapest real figure; the fast tests draw only this one.
FAST_FIGURES = ("gap_sentences",)


def _fast_figures(mp):
    mp.setattr(figures, "REPORT", [f for f in figures.REPORT if f.NAME in FAST_FIGURES])


@pytest.fixture
def fast_figures(monkeypatch):
    _fast_figures(monkeypatch)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """TINY run once, with one real figure drawn."""
    with pytest.MonkeyPatch.context() as mp:
        _fast_figures(mp)
        return run_spec(TINY, tmp_path_factory.mktemp("first"), progress=False)


@pytest.fixture
def copy(report, tmp_path) -> Path:
    """A private copy of the report folder to resume, damage or re-render."""
    dst = tmp_path / "out" / TINY.name
    shutil.copytree(report, dst)
    return dst


class _Recorder:
    """Stands in for pipeline.run_unit: records each unit it is asked for, then runs the real one."""

    def __init__(self, fail_at: int | None = None):
        self.real = pipeline.run_unit
        self.slugs: list[str] = []
        self.fail_at = fail_at

    def __call__(self, spec, unit, folder):
        self.slugs.append(unit.slug)
        if self.fail_at is not None and len(self.slugs) == self.fail_at:
            raise _Interrupted(unit.slug)
        return self.real(spec, unit, folder)


class _Interrupted(KeyboardInterrupt):  # Ctrl-C stops the run (a failing unit would not)
    pass


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _model_and_batch(spec: Spec, unit: dict):
    ds, _, model, batch = pipeline.unit_inputs(spec, unit)
    return ds, model, batch


# ---------------------------------------------------------------------- what a run writes
def test_every_frame_is_written_with_its_documented_columns(report):
    frames = load_frames(report)
    assert set(frames) == set(FRAMES) == set(COLUMN_DOCS)
    for name in FRAMES:
        path = report / table_name(name)
        assert path.is_file(), name
        frame = pd.read_csv(path)
        assert set(frame.columns) == set(COLUMN_DOCS[name]), name
        assert list(frame.columns[:2]) == ["dataset", "state"], name
        assert set(frame["dataset"]) == set(CANON), name
        assert set(frame["state"]) == set(STATE_LABELS), name
        for d in CANON:
            for s in STATE_LABELS:
                assert ((frame["dataset"] == d) & (frame["state"] == s)).any(), (name, d, s)


def test_units_are_combined_in_spec_order(report):
    summary = pd.read_csv(report / "summary.csv")
    assert list(zip(summary["dataset"], summary["state"])) == [(d, s) for d in CANON for s in STATE_LABELS]
    assert (summary["n_sentences"] == 30).all()


def test_spec_toml_and_manifest(report):
    assert load_spec(report / "spec.toml") == TINY
    manifest = json.loads((report / "manifest.json").read_text())
    assert manifest["gradlab_version"] == gradlab.__version__
    assert manifest["seed"] == TINY.seed
    assert manifest["spec"]["datasets"] == DATASETS
    assert [(u["dataset"], u["state"]) for u in manifest["units"]] == [(d, s) for d in CANON for s in STATE_LABELS]
    assert [u["key"] for u in manifest["units"]] == [u.key for u in units(TINY)]
    assert all(u["inputs"] == {} for u in manifest["units"])  # built-in data reads no file
    for u in units(TINY):
        done = json.loads((report / "units" / u.slug / "done.json").read_text())
        assert done["key"] == u.key
        # one copy of each table: the units keep only done.json once combined
        assert [p.name for p in (report / "units" / u.slug).iterdir()] == ["done.json"]


def test_gap_csv_against_direct_truncated_gradients(report):
    """The corpus gap of every unit, recomputed with gradient(Sliding(tau)) and gradient(Full())."""
    gap = pd.read_csv(report / "gap.csv")
    for unit in units(TINY):
        ds, model, batch = _model_and_batch(TINY, unit)
        rows = gap[(gap["dataset"] == unit.dataset) & (gap["state"] == unit.state.label)]
        full = gradient(model, batch, Full())
        f_all = np.concatenate([full.U.ravel(), full.V.ravel(), full.W.ravel()])
        schemes = [(f"tbptt:{tau}", Sliding(tau)) for tau in range(TINY.max_lag + 1)]
        schemes += [(gradlab.parse_scheme(b).label, gradlab.parse_scheme(b)) for b in TINY.block_schemes]
        assert len(rows) == 3 * len(schemes)
        for label, scheme in schemes:
            g = gradient(model, batch, scheme)
            g_all = np.concatenate([g.U.ravel(), g.V.ravel(), g.W.ravel()])
            at = rows[rows["scheme"] == label].set_index("parameter")
            for name, a, b in (("U", g.U, full.U), ("V", g.V, full.V), ("all", g_all, f_all)):
                a, b = a.ravel(), b.ravel()
                rel = np.linalg.norm(a - b) / np.linalg.norm(b)
                cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
                np.testing.assert_allclose(at.loc[name, "rel_error"], rel, rtol=CSV_RTOL, atol=CSV_ATOL,
                                           err_msg=f"{unit.slug} {label} {name}")
                np.testing.assert_allclose(at.loc[name, "cosine"], cos, rtol=CSV_RTOL, atol=CSV_ATOL,
                                           err_msg=f"{unit.slug} {label} {name}")


def test_combined_csvs_equal_analyse_of_each_unit(report):
    frames = load_frames(report)
    unit = units(TINY)[3]
    ds, model, batch = _model_and_batch(TINY, unit)
    want = analyse(model, batch, max_lag=TINY.max_lag, deps=ds.dependencies(TINY.task),
                   block_schemes=TINY.block_schemes, floor=TINY.floor, per_sentence=TINY.per_sentence)
    for name, expected in want.items():
        got = frames[name]
        got = got[(got["dataset"] == unit.dataset) & (got["state"] == unit.state.label)]
        got = got.drop(columns=["dataset", "state"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False, rtol=CSV_RTOL,
                                      atol=CSV_ATOL, obj=name)


def test_summary_taus_agree_with_the_gap_csv(report):
    frames = load_frames(report)
    gap, summary = frames["gap"], frames["summary"]
    for row in summary.itertuples():
        rows = gap[(gap["dataset"] == row.dataset) & (gap["state"] == row.state) & (gap["family"] == "tbptt")
                   & (gap["parameter"] == "all")].sort_values("tau")
        for column, threshold in (("tau_10", 0.10), ("tau_1", 0.01)):
            below = (rows["rel_error"] < threshold).to_numpy()
            if not below[-1]:
                want = np.nan
            else:
                first = len(below) - np.argmin(below[::-1]) if not below.all() else 0
                want = rows["tau"].iloc[first]
            got = getattr(row, column)
            assert (np.isnan(want) and np.isnan(got)) or got == want, (row.dataset, row.state, column)


def test_figures_and_index(report):
    for name in FAST_FIGURES:
        for fmt in ("png", "svg"):
            assert (report / f"{name}.{fmt}").is_file(), (name, fmt)
        svg = (report / f"{name}.svg").read_text()
        for d in CANON:  # one series (and legend entry) per dataset
            # the legend label, broken after commas: one text (and SVG comment) per line
            assert all(f"<!-- {line} -->" in svg for line in _wrap(d).split("\n")), (name, d)
    assert (report / "gap_sentences.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "<title>Tiny report</title>" in page
    for name in FAST_FIGURES:
        assert f'id="fig-{name}"' in page and f'src="{name}.png"' in page and f'href="{name}.svg"' in page
    for name in FRAMES:
        assert f'href="{table_name(name)}"' in page, name
    summary = pd.read_csv(report / "summary.csv")
    for d in CANON:
        assert d in page
    for column in ("beta", "sigma_max", "mean_loss"):
        for value in summary[column]:
            assert f"<td>{value:.4g}</td>" in page, (column, value)
    assert gradlab.__version__ in page and "max_lag = 6" in page


def test_no_temporary_files_are_left(report):
    assert _temp_files(report.parent) == []


# ---------------------------------------------------------------------- determinism
def _all_files(root: Path) -> dict:
    """Every file of a report folder (timings.csv and the lock aside) -> bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("timings.csv", ".lock")}


def test_same_spec_gives_byte_identical_outputs(report, tmp_path, fast_figures):
    second = run_spec(TINY, tmp_path, progress=False)
    assert _all_files(report) == _all_files(second)


def test_timings_say_which_units_were_reused(copy):
    timings = pd.read_csv(copy / "timings.csv")
    assert list(timings["status"]) == ["computed"] * 4
    lines = []
    run_spec(TINY, copy.parent, progress=False, render=False, log=lines.append)
    assert lines == [f"reused: {d} | {s}" for d in CANON for s in STATE_LABELS]
    assert list(pd.read_csv(copy / "timings.csv")["status"]) == ["reused"] * 4


# ---------------------------------------------------------------------- resume
def test_rerun_computes_nothing(copy, monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(pipeline, "run_unit", rec)
    before = _all_files(copy)
    run_spec(TINY, copy.parent, progress=False, render=False)
    assert rec.slugs == []
    assert _all_files(copy) == before


def test_resume_recomputes_only_the_unit_without_done_json(report, copy, monkeypatch):
    todo = units(TINY)
    missing = todo[1].slug
    (copy / "units" / missing / "done.json").unlink()
    rec = _Recorder()
    monkeypatch.setattr(pipeline, "run_unit", rec)
    run_spec(TINY, copy.parent, progress=False, render=False)
    assert rec.slugs == [missing]
    for name in FRAMES:
        assert (copy / table_name(name)).read_bytes() == (report / table_name(name)).read_bytes(), name


def test_damaged_or_foreign_done_json_is_recomputed(copy, monkeypatch):
    todo = units(TINY)
    (copy / "units" / todo[0].slug / "done.json").write_text("{not json")
    (copy / "units" / todo[2].slug / "done.json").write_text(json.dumps({"key": "0123456789abcdef"}))
    rec = _Recorder()
    monkeypatch.setattr(pipeline, "run_unit", rec)
    run_spec(TINY, copy.parent, progress=False, render=False)
    assert rec.slugs == [todo[0].slug, todo[2].slug]


def test_lost_combined_tables_recompute_the_units(report, copy, monkeypatch):
    """The units' rows live only in the combined tables: without them, the units are computed again."""
    (copy / "gap.csv").unlink()
    rec = _Recorder()
    monkeypatch.setattr(pipeline, "run_unit", rec)
    run_spec(TINY, copy.parent, progress=False, render=False)
    assert rec.slugs == [u.slug for u in units(TINY)]
    assert (copy / "gap.csv").read_bytes() == (report / "gap.csv").read_bytes()


def test_interrupted_run_keeps_finished_units_and_resumes(report, tmp_path, monkeypatch):
    todo = units(TINY)
    rec = _Recorder(fail_at=3)
    monkeypatch.setattr(pipeline, "run_unit", rec)
    with pytest.raises(_Interrupted):
        run_spec(TINY, tmp_path, progress=False, render=False)
    root = tmp_path / TINY.name
    assert rec.slugs == [u.slug for u in todo[:3]]
    done = {}
    for u in todo[:2]:
        folder = root / "units" / u.slug
        assert (folder / "done.json").is_file()
        assert {p.name for p in folder.iterdir()} == {f"{n}.csv" for n in FRAMES} | {"done.json"}
        done[u.slug] = _snapshot(folder)
    assert not (root / "units" / todo[2].slug / "done.json").exists()
    assert not (root / "summary.csv").exists()  # nothing was combined from a partial run
    assert _temp_files(tmp_path) == []

    rec = _Recorder()
    monkeypatch.setattr(pipeline, "run_unit", rec)
    run_spec(TINY, tmp_path, progress=False, render=False)
    assert rec.slugs == [u.slug for u in todo[2:]]
    # the resumed run ends where an uninterrupted one does
    for name in FRAMES:
        assert (root / table_name(name)).read_bytes() == (report / table_name(name)).read_bytes(), name


def test_unit_interrupted_before_done_json_is_recomputed(tmp_path, monkeypatch):
    """A unit whose CSVs were written but not its done.json counts as not done."""
    todo = units(TINY)
    real_write = runner.write_atomic

    def no_done(path, text):
        if Path(path).name == "done.json" and todo[1].slug in str(path):
            raise _Interrupted(str(path))
        real_write(path, text)

    monkeypatch.setattr(runner, "write_atomic", no_done)
    with pytest.raises(_Interrupted):
        run_spec(TINY, tmp_path, progress=False, render=False)
    folder = tmp_path / TINY.name / "units" / todo[1].slug
    assert (folder / "summary.csv").exists() and not (folder / "done.json").exists()
    monkeypatch.setattr(runner, "write_atomic", real_write)
    rec = _Recorder()
    monkeypatch.setattr(pipeline, "run_unit", rec)
    run_spec(TINY, tmp_path, progress=False, render=False)
    assert rec.slugs == [u.slug for u in todo[1:]]


def test_changed_parameters_get_new_keys_and_are_recomputed(copy, monkeypatch):
    old = units(TINY)
    changed = replace(TINY, max_lag=5)
    new = units(changed)
    assert {u.key for u in old}.isdisjoint(u.key for u in new)
    rec = _Recorder()
    monkeypatch.setattr(pipeline, "run_unit", rec)
    run_spec(changed, copy.parent, progress=False, render=False)
    assert rec.slugs == [u.slug for u in new]
    frames = load_frames(copy)
    assert frames["gap"]["tau"].max() == 5 and frames["profile"]["lag"].max() == 5
    assert json.loads((copy / "manifest.json").read_text())["spec"]["max_lag"] == 5
    assert load_spec(copy / "spec.toml") == changed


def test_dropped_dataset_leaves_no_stale_unit_or_rows(copy):
    smaller = replace(TINY, datasets=DATASETS[:1])
    run_spec(smaller, copy.parent, progress=False, render=False)
    assert sorted(p.name for p in (copy / "units").iterdir()) == sorted(u.slug for u in units(smaller))
    for name in FRAMES:
        assert set(load_frames(copy)[name]["dataset"]) == {CANON[0]}, name


@pytest.mark.parametrize("change, recompute", [
    ({"n_sentences": 20}, True),
    ({"seed": 4}, True),
    ({"block_schemes": ["chunked:2"]}, True),
    ({"floor": 0.01}, True),
    ({"per_sentence": False}, True),
    ({"hidden_size": 3}, True),
    ({"states": ["init:scale=0.5000001", "init:scale=1.5"]}, True),  # the same label, another scale
    ({"title": "Another title"}, False),     # presentation only: the numbers stay
    ({"max_memory": 100.0}, False),
    ({"datasets": ["agreement:n=30,distance=4", "markov:n=30,order=3"]}, False),  # other spellings
])
def test_key_follows_what_determines_the_numbers(change, recompute):
    before = [u.key for u in units(TINY)]
    after = [u.key for u in units(replace(TINY, **change))]
    if "states" in change:
        before, after = before[:1], after[:1]
    assert (before != after) == recompute
    if recompute:
        assert set(before).isdisjoint(after)


def test_title_change_recomputes_nothing(copy, monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(pipeline, "run_unit", rec)
    run_spec(replace(TINY, title="Renamed"), copy.parent, progress=False, render=False)
    assert rec.slugs == []


# ---------------------------------------------------------------------- atomic writes, render errors
def test_write_atomic_replaces_in_one_step(tmp_path):
    path = tmp_path / "sub" / "a.csv"
    write_atomic(path, "one\n")
    write_atomic(path, "two\n")
    assert path.read_text() == "two\n"
    assert [p.name for p in path.parent.iterdir()] == ["a.csv"]


def test_write_atomic_leaves_no_temporary_file_when_it_fails(tmp_path, monkeypatch):
    path = tmp_path / "a.csv"
    write_atomic(path, "old\n")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(pipeline.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert _temp_files(tmp_path) == []


def test_render_report_without_csvs_names_the_folder(tmp_path):
    empty = tmp_path / "empty-report"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        render_report(empty, processes=1)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        render_report(tmp_path / "nowhere", processes=1)


def test_render_report_redraws_the_same_page(report, copy, fast_figures):
    (copy / "index.html").unlink()
    for name in FAST_FIGURES:
        (copy / f"{name}.svg").unlink()
    index = render_report(copy, processes=1)
    assert index == copy / "index.html"
    assert index.read_bytes() == (report / "index.html").read_bytes()
    for name in FAST_FIGURES:
        assert (copy / f"{name}.svg").read_bytes() == (report / f"{name}.svg").read_bytes()
    assert _temp_files(copy) == []


def test_render_report_from_csvs_alone(report, tmp_path, monkeypatch):
    """CSVs without spec.toml or manifest.json still render (title falls back to the folder name)."""
    monkeypatch.setattr(figures, "REPORT", [])
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in FRAMES:
        shutil.copy(report / table_name(name), bare)
    render_report(bare, processes=1)
    page = (bare / "index.html").read_text(encoding="utf-8")
    assert "<title>bare</title>" in page
    for name in FRAMES:
        assert f'href="{table_name(name)}"' in page


def test_figures_whose_data_is_absent_are_left_out(report, tmp_path):
    """No dependencies CSV: no dependencies figure, and the page does not mention one."""
    part = tmp_path / "part"
    part.mkdir()
    for name in FRAMES:
        if name not in ("dependencies", "dependency_kept", "gap_sentences"):
            shutil.copy(report / table_name(name), part)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures, "REPORT", [f for f in figures.REPORT if f.NAME in ("dependencies", "gap_sentences")])
        render_report(part, processes=1)
    assert not (part / "dependencies.png").exists() and not (part / "gap_sentences.png").exists()
    assert "fig-dependencies" not in (part / "index.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------------- the full figure set (slow)
@pytest.mark.slow
def test_full_report_has_every_figure_and_is_deterministic(tmp_path):
    first = run_spec(TINY, tmp_path / "a", progress=False)
    second = run_spec(TINY, tmp_path / "b", progress=False)
    page = (first / "index.html").read_text(encoding="utf-8")
    for name in [f.NAME for f in figures.REPORT]:
        for fmt in ("png", "svg"):
            assert (first / f"{name}.{fmt}").is_file(), (name, fmt)
        assert f'id="fig-{name}"' in page, name
        svg = (first / f"{name}.svg").read_text()
        for d in CANON:  # long labels are broken after commas, each figure at its own width
            assert all(part in svg for part in d.split(",")), (name, d)
    # every file, every figure included (the dependency plot's jitter is seeded)
    assert _all_files(first) == _all_files(second)
    # and a second render of the same folder changes no byte
    before = _all_files(first)
    render_report(first)
    assert _all_files(first) == before
    assert _temp_files(tmp_path) == []
