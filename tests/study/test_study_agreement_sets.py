"""The training spec key agreement_sets: validation, the agreement_sets frame against a direct
evaluate_agreement_set call, its figure and findings; on tiny files in the published formats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradlab import RNN
from gradlab.data import load_dataset
from gradlab.data.readers import read_gulordava_set, read_linzen_testset
from gradlab.report.figures import agreement_sets as figure
from gradlab.report.findings import agreement_set_findings, findings
from gradlab.report.frames import STUDY, SUITE, columns, frames_of
from gradlab.study.spec import parse_agreement_set, train_spec_from_dict
from gradlab.study.suite import run_suite, suite_from_dict
from gradlab.study.training import AGREEMENT_SET_COLUMNS, run_study, runs
from gradlab.train.evaluate import evaluate_agreement_set

HEADER = "sentence\tsubj_idx\tverb_idx\tverb_pos\tverb\tinflected_verb\n"
TRAIN = ["the keys to the cabinet are here .\t1\t5\tVBP\tare\tis",
         "the key to the cabinet is here .\t1\t5\tVBZ\tis\tare",
         "the dogs near the cat bark .\t1\t5\tVBP\tbark\tbarks",
         "the dog near the cats barks .\t1\t5\tVBZ\tbarks\tbark",
         "the cats sleep .\t1\t2\tVBP\tsleep\tsleeps",
         "the cat sleeps .\t1\t2\tVBZ\tsleeps\tsleep"]
TEXT = ["the keys to the cabinet are on the table . <eos>",
        "the dog near the cats barks . <eos>",
        "cats sleep . <eos>",
        "the zebra sings . <eos>"]
GOLD = ["5\tare\tis\t1", "5\tbarks\tbark\t1", "1\tsleep\tsleeps\t0", "2\tsings\tsing\t0"]
TAB_HEADER = "pattern\tconstr_id\tsent_id\tform\tclass\ttype\tn_attr\tlen_prefix\tsent\tcorrect_number"
TAB = ["P\t0\t0\tare\tcorrect\toriginal\t1\t5\tThe keys to the cabinet are here\tplur",
       "P\t0\t0\tis\twrong\toriginal\t1\t5\tThe keys to the cabinet are here\tplur",
       "P\t0\t1\tsleep\tcorrect\tgenerated\t0\t2\tThe Cats sleep\tplur",
       "P\t0\t1\tsleeps\twrong\tgenerated\t0\t2\tThe Cats sleep\tplur",
       "P\t0\t2\tbarks\tcorrect\tgenerated\t2\t5\tThe dog near the cats barks\tsing",
       "P\t0\t2\tbark\twrong\tgenerated\t2\t5\tThe dog near the cats barks\tsing"]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.tsv").write_text(HEADER + "".join(r + "\n" for r in TRAIN), encoding="utf-8")
    (tmp_path / "t.text").write_text("\n".join(TEXT) + "\n")
    (tmp_path / "t.gold").write_text("\n".join(GOLD) + "\n")
    (tmp_path / "g.tab").write_text("\n".join([TAB_HEADER] + TAB) + "\n")
    return tmp_path


def table(files, **kw):
    return {"name": "agr", "title": "t", "train": f"linzen:path={files / 'train.tsv'}",
            "dev": f"linzen:path={files / 'train.tsv'}", "task": "lm", "eval_tasks": ["lm", "agreement"],
            "hidden_sizes": [4], "schemes": ["tbptt:1", "full"], "learning_rates": [0.3], "seeds": [0, 1],
            "epochs": 2, "batch_size": 2,
            "agreement_sets": [f"linzen_testset:path={files / 't.text'}",
                               f"gulordava:path={files / 'g.tab'},lowercase=true"], **kw}


def test_parse_agreement_set():
    assert parse_agreement_set("gulordava:path=g.tab,lowercase=TRUE") == \
        {"name": "gulordava", "path": "g.tab", "gold": None, "lowercase": True}
    assert parse_agreement_set("linzen_testset:path=a.text,gold=b.gold")["gold"] == "b.gold"


@pytest.mark.parametrize("value, message", [
    (["wsj:path=x"], "test set 'wsj' is not one of"),
    (["gulordava"], "needs path=FILE"),
    (["gulordava:path=G,gold=x"], r"gulordava takes parameters \('path', 'lowercase'\); received 'gold'"),
    (["gulordava:path=G,lowercase=yes"], "lowercase must be true or false"),
    (["gulordava:path"], "is not KEY=VALUE"),
    (["gulordava:path=nowhere.tab"], "file 'nowhere.tab' does not exist"),
    (["linzen_testset:path=G"], "g.gold' does not exist"),       # the .gold beside a file that has none
    (["gulordava:path=G", "gulordava:path=G,lowercase=true"], "'gulordava' is listed twice"),
    ([1], "must be a list of strings"),
])
def test_bad_agreement_sets_name_the_key(files, value, message):
    value = [v.replace("G", str(files / "g.tab")) if isinstance(v, str) else v for v in value]
    with pytest.raises(ValueError, match="agreement_sets"):
        train_spec_from_dict(table(files, agreement_sets=value))
    with pytest.raises(ValueError, match=message):
        train_spec_from_dict(table(files, agreement_sets=value))


def test_agreement_sets_need_a_language_model(files):
    with pytest.raises(ValueError, match="agreement_sets: evaluates language models: needs task 'lm'"):
        train_spec_from_dict(table(files, task="number", eval_tasks=["number"]))


def test_a_bad_test_set_file_stops_the_plan_naming_the_key(files):
    from gradlab.study.plan import PlanError
    (files / "t.gold").write_text("5\tare\n")
    spec = train_spec_from_dict(table(files))
    with pytest.raises(PlanError, match=r"agreement_sets: 'linzen_testset:path=.*t\.gold"):
        run_study(spec, files / "out", progress=False)


def test_the_key_left_out_keeps_the_run_keys(files):
    """Specs without agreement_sets keep their runs' keys (finished runs stay finished); with it, the test-set
    files are inputs of every run."""
    without = train_spec_from_dict({k: v for k, v in table(files).items() if k != "agreement_sets"})
    assert "agreement_sets" not in runs(without)[0]["params"]
    with_sets = train_spec_from_dict(table(files))
    assert set(runs(with_sets)[0]["params"]["inputs"]) >= {"agreement_sets.linzen_testset.path",
                                                          "agreement_sets.linzen_testset.gold",
                                                          "agreement_sets.gulordava.path"}
    assert with_sets.to_toml().count("agreement_sets") == 1


def test_the_frame_is_a_direct_evaluate_agreement_set_call(files):
    spec = train_spec_from_dict(table(files))
    root = run_study(spec, files / "out", progress=False)
    frame = pd.read_csv(root / "agreement_sets.csv")
    assert list(frame.columns) == list(columns("agreement_sets", STUDY))
    assert tuple(frame.columns[5:]) == AGREEMENT_SET_COLUMNS
    vocab = load_dataset(spec.train).vocab
    sets = {"linzen_testset": (read_linzen_testset(files / "t.text"), False),
            "gulordava": (read_gulordava_set(files / "g.tab"), True)}
    for r in runs(spec):
        model = RNN.load(root / "runs" / r["slug"] / "model.npz")
        for name, (ts, lower) in sets.items():
            ev = evaluate_agreement_set(model, ts, vocab, lowercase=lower)
            mine = frame[(frame["run"] == r["run"]) & (frame["test_set"] == name)]
            assert mine["n"].sum() == ev.n_comparable
            assert mine["n_correct"].sum() / mine["n"].sum() == pytest.approx(ev.accuracy)
            by_att = mine.groupby("n_attractors")[["n", "n_correct"]].sum().reset_index()
            assert by_att["n_attractors"].tolist() == ev.by_attractors["n_attractors"].tolist()
            assert by_att["n"].tolist() == ev.by_attractors["n"].tolist()
            np.testing.assert_allclose(by_att["n_correct"] / by_att["n"], ev.by_attractors["accuracy"])
            by_type = mine.groupby("type")[["n", "n_correct"]].sum()
            np.testing.assert_allclose((by_type["n_correct"] / by_type["n"]).to_numpy(),
                                       ev.by_type.set_index("type").loc[by_type.index, "accuracy"])
            counted = ev.items[ev.items["comparable"]]
            loss = counted.groupby(["type", "n_attractors"])["loss"].mean().to_numpy()
            np.testing.assert_allclose(mine["mean_loss"].to_numpy(), loss, rtol=1e-9)
    # 3 of the 4 Linzen items and all 3 Gulordava items have both forms in the vocabulary (sings/sing do not)
    assert frame.groupby(["run", "test_set"])["n"].sum().unstack().to_dict("list") == \
        {"gulordava": [3] * 4, "linzen_testset": [3] * 4}
    assert (root / "agreement_sets.png").is_file()
    page = (root / "index.html").read_text()
    assert 'id="fig-agreement_sets"' in page and "agreement_sets.csv" in page
    assert "Published on this set (Gulordava et al. 2018" in page and "simple RNN 73.2% original / 64.2%" in page


def test_the_figure_and_findings_without_the_frame():
    assert figure.draw({}) is None
    assert figure.plot_agreement_sets(pd.DataFrame(columns=list(columns("agreement_sets", STUDY)))) is None
    assert agreement_set_findings({}) == [] and findings({}) == []
    assert "agreement_sets" in {f.name for f in frames_of(STUDY)} & {f.name for f in frames_of(SUITE)}


def _rows():
    rows = []
    for scheme, acc in (("tbptt:1", 0.5), ("full", 0.75)):
        for seed in (0, 1):
            for test_set, typ, att in (("linzen_testset", "original", 0), ("linzen_testset", "original", 5),
                                       ("gulordava", "original", 0), ("gulordava", "generated", 1)):
                rows.append((f"h4_{scheme}_lr0.3_seed{seed}", 4, scheme, 0.3, seed, test_set, typ, att, 4,
                             int(4 * acc) if seed == 0 else 4 * acc - 1, np.nan, 1.0))
    frame = pd.DataFrame(rows, columns=list(columns("agreement_sets", STUDY)))
    frame["accuracy"] = frame["n_correct"] / frame["n"]
    return frame


def test_findings_come_from_the_csv_and_quote_the_published_figures():
    frame = _rows()
    text = agreement_set_findings({"agreement_sets": frame})
    assert len(text) == 2 and text[0].startswith("test set linzen_testset (8 items")
    # full: seed 0 3 of 4 right in each group, seed 1 2 of 4: 0.75 and 0.5 per run, mean 0.625
    assert "full: 0.62 (95% CI" in text[0] and "0.62 with no attractor, 0.62 with 4+ attractors" in text[0]
    assert "Published" not in text[0]
    assert "full: original 0.62" in text[1] and "generated 0.62" in text[1] and "tbptt:1: original 0.38" in text[1]
    assert text[1].endswith("LSTM 80.5% original / 71.8% generated; simple RNN 73.2% original / 64.2% generated.")
    frame.loc[(frame["scheme"] == "full") & (frame["n_attractors"] == 5), "n_correct"] = 0
    changed = agreement_set_findings({"agreement_sets": frame})
    assert "0.62 with no attractor, 0.00 with 4+ attractors" in changed[0] and changed[1] == text[1]
    fig = figure.draw({"agreement_sets": frame})
    labels = {a.get_label() for ax in fig.axes for a in ax.get_children()}
    assert {"_published|original|LSTM", "_published|generated|simple RNN"} <= labels
    assert len(fig.axes) == 3                  # by attractors on each set, original vs generated on gulordava


def test_a_suite_part_takes_agreement_sets(files):
    common = {k: v for k, v in table(files).items()
              if k not in ("name", "train", "dev", "task", "eval_tasks", "agreement_sets")}
    part = {k: table(files)[k] for k in ("train", "dev", "task", "eval_tasks", "agreement_sets")}
    s = suite_from_dict({**common, "seeds": [0], "schemes": ["full"], "distributions": ["longest"],
                         "tasks": [{"name": "lm", **part},
                                   {"name": "number", "train": part["train"], "dev": part["dev"],
                                    "task": "number"}]})
    assert s.studies[0].agreement_sets == part["agreement_sets"] and s.studies[1].agreement_sets is None
    root = run_suite(s, files / "suite", progress=False)
    frame = pd.read_csv(root / "agreement_sets.csv")
    assert list(frame.columns[:2]) == ["part", "distribution"] and set(frame["part"]) == {"lm"}
    assert (root / "agreement_sets.png").is_file()
    assert any(t.startswith("part lm, distribution longest, test set gulordava") for t in findings(
        {"agreement_sets": frame}))


# ---------------------------------------------------------------------- the real-data suite
REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def _linzen_suite(monkeypatch):
    from gradlab.study.suite import load_suite
    monkeypatch.chdir(REPO)
    for sub in ("linzen-agreement", "colorlessgreen"):
        if not (SHARED_DATA / sub).is_dir():
            pytest.skip(f"truncation-linzen reads {SHARED_DATA / sub}, which is not here")
    return load_suite("truncation-linzen")


def test_truncation_linzen_spec_is_the_issues_design(monkeypatch):
    s = _linzen_suite(monkeypatch)
    assert list(s.parts) == ["number", "lm"] and list(s.distributions) == ["longest"]
    number, lm = s.studies
    assert (number.task, lm.task) == ("number", "lm") and set(lm.eval_tasks) == {"lm", "agreement"}
    for st in s.studies:
        assert {f"tbptt:{t}" for t in (0, 1, 2, 3, 5, 10)} | {"full"} <= set(st.schemes) and len(st.seeds) >= 3
        assert "wiki-test.txt" in st.train and "wiki-dev.txt" in st.dev and "n_vocab=2000" in st.train
    assert number.agreement_sets is None
    assert sorted(parse_agreement_set(t)["name"] for t in lm.agreement_sets) == ["gulordava", "linzen_testset"]


@pytest.mark.slow
def test_truncation_linzen_quick_runs(tmp_path, monkeypatch):
    from typer.testing import CliRunner
    from gradlab.cli import app
    from gradlab.report import figures
    _linzen_suite(monkeypatch)
    monkeypatch.setattr(figures, "STUDY", [figure])
    result = CliRunner().invoke(app, ["train", "truncation-linzen", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "truncation-linzen-quick"
    summary = pd.read_csv(root / "summary.csv")
    assert set(summary["part"]) == {"number", "lm"} and len(summary) == 2 * 8
    frame = pd.read_csv(root / "agreement_sets.csv")
    assert set(frame["part"]) == {"lm"} and set(frame["test_set"]) == {"linzen_testset", "gulordava"}
    assert frame.groupby(["run", "test_set"])["n"].sum().min() > 0
    assert (root / "agreement_sets.png").is_file() and (root / "lm-longest" / "agreement_sets.png").is_file()
    assert "Published on this set" in (root / "index.html").read_text()


def test_the_figure_draws_seeds_with_equal_accuracies():
    """Means of equal thirds differ from them by rounding: the min-max bars must not go negative."""
    frame = _rows()
    frame["n"], frame["n_correct"] = 3, 1
    frame["accuracy"] = 1 / 3
    assert figure.draw({"agreement_sets": pd.concat([frame, frame.assign(seed=2)])}) is not None
