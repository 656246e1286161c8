"""Training-study specs and the "train" report state: validation before any work."""
from __future__ import annotations

from dataclasses import replace

import pytest

from gradlab.analysis.states import parse_state
from gradlab.study.spec import spec_from_dict
from gradlab.study.training import train_spec_from_dict

BASE = {"name": "t", "train": "agreement:distance=4,n=20", "task": "lm", "hidden_sizes": [4], "schemes": ["full"],
        "learning_rates": [0.5], "seeds": [0], "epochs": 1}


@pytest.mark.parametrize("key,value,words", [
    ("task", "agreement", ["task", "lm", "number"]),
    ("schemes", ["tbptt:-1"], ["schemes"]),
    ("schemes", ["bogus"], ["schemes", "tbptt"]),
    ("learning_rates", [-0.5], ["learning_rates", "> 0"]),
    ("hidden_sizes", [0], ["hidden_sizes"]),
    ("seeds", [0, 0], ["seeds", "unique"]),
    ("epochs", 0, ["epochs", ">= 1"]),
    ("eval_tasks", ["number"], ["eval_tasks"]),
    ("train", "nosuchdata", ["train"]),
    ("dev", "agreement:distance=-3", ["dev"]),
    ("dev_fraction", 1.5, ["dev_fraction"]),
    ("anneal", -1, ["anneal"]),
    ("colour", "red", ["unknown key", "colour"]),
    ("epochs", "3", ["epochs", "int"]),
    ("learning_rates", ["x"], ["learning_rates", "float"]),
])
def test_bad_keys_name_the_key(key, value, words):
    with pytest.raises(ValueError) as err:
        train_spec_from_dict({**BASE, key: value})
    for w in words:
        assert w in str(err.value)


def test_good_spec_and_quick():
    spec = train_spec_from_dict({**BASE, "eval_tasks": ["lm", "agreement"], "hidden_sizes": [25, 50]})
    q = spec.quick()
    assert q.hidden_sizes == [4] and q.epochs == 1 and q.n_sentences == 20


@pytest.mark.parametrize("text,words", [
    ("train:scheme=bogus,epochs=1,lr=0.5,batch_size=1", ["scheme"]),
    ("train:scheme=full,epochs=0,lr=0.5,batch_size=1", ["epochs"]),
    ("train:scheme=full,epochs=1,lr=-2,batch_size=1", ["lr"]),
    ("train:scheme=full,epochs=1,lr=0.5,batch_size=0", ["batch_size"]),
    ("train:scheme=full,epochs=1,lr=0.5,batch_size=1,at=later", ["at", "mid"]),
    ("train:scheme=full,epochs=1,lr=0.5", ["batch_size="]),
    ("train:scheme=full,epochs=1,lr=0.5,batch_size=1,foo=1", ["foo"]),
])
def test_train_state_parse_errors(text, words):
    with pytest.raises(ValueError) as err:
        parse_state(text)
    for w in words:
        assert w in str(err.value)


def test_train_state_parses_mikolov_and_labels():
    s = parse_state("train:scheme=mikolov:2,5,epochs=2,lr=0.5,batch_size=10,seed=3,at=mid")
    assert s.kind == "train" and s.epochs == 2 and s.seed == 3 and s.at == "mid" and s.snapshot_epochs == 1
    again = parse_state(s.label)
    # the canonical text prints the scale with 6 significant digits: a fixed point, equal up to that
    assert again.label == s.label and again.scale == pytest.approx(s.scale, rel=1e-6)
    assert replace(again, scale=s.scale) == s


def test_report_spec_checks_train_state():
    state = "train:scheme=tbptt:2,epochs=1,lr=0.5,batch_size=10"
    with pytest.raises(ValueError, match="task"):
        spec_from_dict({"datasets": ["agreement:distance=4"], "states": [state], "task": "agreement"})
    with pytest.raises(ValueError, match="same state"):
        spec_from_dict({"datasets": ["agreement:distance=4"], "states": [state, state]})
    spec_from_dict({"datasets": ["agreement:distance=4"], "states": ["init", state, state + ",at=init"]})


def test_one_place_decides_the_kind_of_a_spec_and_every_kind_shares_the_base():
    from gradlab.study.spec import ReportSpec, StudySpec, Suite, TrainSpec, from_dict, spec_kind, tomllib
    report = {"datasets": ["agreement:distance=4"]}
    train = {"train": "agreement:distance=4,min_distance=1"}
    suite = {"distributions": ["longest"], "tasks": [{"name": "a", "train": "agreement:distance=4", "task": "lm"}]}
    assert [spec_kind(d) for d in (report, train, suite)] == ["report", "train", "suite"]
    specs = [from_dict(d) for d in (report, train, suite)]
    assert [type(s) for s in specs] == [ReportSpec, TrainSpec, Suite]
    for spec in specs:
        assert isinstance(spec, StudySpec) and type(spec.quick()) is type(spec) and spec.quick().name == spec.name
    for spec in specs[:2]:   # to_toml reads back as the same spec
        assert from_dict(tomllib.loads(spec.to_toml())) == spec
