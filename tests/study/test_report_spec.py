"""Analysis specs and model states: every bad key fails before any work, naming the key and what is allowed."""
from __future__ import annotations

import re
import sys
from dataclasses import replace

import numpy as np
import pytest

from gradlab import RNN
from gradlab.analysis import ModelState, parse_state
from gradlab.model import DEFAULT_SCALE
from gradlab.study.report import run_spec, units
from gradlab.study.spec import ANALYSES_DIR, DEFAULT_SPEC, TASKS, Spec, load_spec, spec_from_dict, validate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUILTIN = sorted(p.stem for p in ANALYSES_DIR.glob("*.toml"))


# ---------------------------------------------------------------------- one test per bad key
@pytest.mark.parametrize("data, match", [
    ({"foo": 1}, r"unknown key\(s\) \['foo'\]; allowed keys: \[.*'datasets'.*'max_lag'.*\]"),
    ({"datasets": ["nope"]}, r"datasets: unknown dataset 'nope'; available: agreement, recall, dyck, markov"),
    ({"datasets": ["agreement:foo=1"]}, r"datasets: agreement: unknown parameter\(s\) \['foo'\]; allowed: distance="),
    ({"datasets": ["agreement:distance=abc"]}, r"datasets: .*'distance' must be an integer; received 'abc'"),
    ({"datasets": ["agreement:distance=0"]}, r"datasets: .*'distance' must be >= 1; received 0"),
    ({"datasets": []}, r"datasets: needs at least one dataset"),
    ({"max_lag": -1}, r"max_lag: must be >= 0 .*received -1"),
    ({"block_schemes": ["block:5,3"]}, r"block_schemes: .*k2 >= k1; received k1=5, k2=3"),
    ({"block_schemes": ["foo:1"]}, r"block_schemes: unknown scheme 'foo' .*expected one of full, tbptt:TAU, "
                                   r"block:K1,K2, chunked:H, mikolov:BPTT,BLOCK"),
    ({"block_schemes": ["chunked:x"]}, r"block_schemes: .*arguments must be integers"),
    ({"block_schemes": ["tbptt:-1"]}, r"block_schemes: tau must be >= 0; received -1"),
    ({"task": "foo"}, r"task: must be one of \('lm', 'number', 'agreement', 'recall', 'closing'\); received 'foo'"),
    ({"states": ["file:path=missing.npz"]}, r"states: model file missing\.npz does not exist"),
    ({"states": ["bogus"]}, r"states: unknown model state kind 'bogus'.*\['file', 'init', 'train'\]"),
    ({"states": ["init:foo=1"]}, r"states: .*unknown key\(s\) \['foo'\]; allowed: \['activation', 'label', "
                                 r"'scale', 'seed'\]"),
    ({"states": ["file:path=m.npz,scale=1"]}, r"states: .*unknown key\(s\) \['scale'\]; allowed: \['label', "
                                              r"'path'\]"),
    ({"states": ["init:scale=-1"]}, r"states: .*scale must be a finite number >= 0"),
    ({"states": ["init:activation=gelu"]}, r"states: .*activation must be one of \['identity', 'relu', 'sigmoid', 'tanh'\]"),
    ({"states": ["init:scale"]}, r"states: .*'scale' is not key=value"),
    ({"states": []}, r"states: needs at least one model state"),
    ({"hidden_size": "50"}, r"key 'hidden_size' must be of type int; received '50'"),
    ({"hidden_size": True}, r"key 'hidden_size' must be of type int; received True"),
    ({"hidden_size": 0}, r"hidden_size: must be >= 1; received 0"),
    ({"max_lag": 2.5}, r"key 'max_lag' must be of type int; received 2\.5"),
    ({"datasets": "agreement"}, r"key 'datasets' must be of type list; received 'agreement'"),
    ({"datasets": ["agreement", 3]}, r"key 'datasets' must be a list of strings"),
    ({"states": [{"scale": 1}]}, r"key 'states' must be a list of strings"),
    ({"per_sentence": "yes"}, r"key 'per_sentence' must be of type bool"),
    ({"floor": 0}, r"floor: must be between 0 and 1; received 0"),
    ({"floor": "small"}, r"key 'floor' must be of type float"),
    ({"n_sentences": 0}, r"n_sentences: must be >= 1; received 0"),
    ({"name": "a/b"}, r"name: must be a plain folder name; received 'a/b'"),
    ({"name": ".hidden"}, r"name: must be a plain folder name"),
])
def test_spec_from_dict_rejects(data, match):
    with pytest.raises(ValueError, match=match):
        spec_from_dict(data, source="my.toml")
    with pytest.raises(ValueError, match=r"^my\.toml: "):
        spec_from_dict(data, source="my.toml")


def test_spec_from_dict_keeps_values_and_reads_ints_as_floats():
    spec = spec_from_dict({"datasets": ["markov:n=5"], "floor": 0.5, "max_lag": 3, "states": ["init:scale=2"]})
    assert spec.max_lag == 3 and spec.floor == 0.5 and spec.datasets == ["markov:n=5"]
    assert spec.states == ["init:scale=2"] and spec.task == "lm"
    # an integer where a float is expected is converted, then range-checked
    with pytest.raises(ValueError, match="floor: must be between 0 and 1; received 1.0"):
        spec_from_dict({"floor": 1})


def test_task_that_a_dataset_does_not_support_fails_before_work(tmp_path):
    data = {"name": "t", "datasets": ["agreement:n=10", "markov:n=10"], "task": "number", "hidden_size": 3,
            "max_lag": 2, "block_schemes": []}
    with pytest.raises(ValueError, match=r"task.*markov.*lm"):
        spec_from_dict(data)


@pytest.mark.parametrize("states", [["init:seed=1", "init:seed=2"], ["init:scale=1", "init:scale=2"],
                                    ["init", "init:activation=tanh"]])
def test_different_states_get_different_labels(states):
    """A state may set its own seed= (README), scale or activation: each is its own state, with its own units."""
    spec = spec_from_dict({"datasets": ["markov:n=5"], "states": states})
    labels = [u["state"].label for u in units(spec)]
    assert len(labels) == len(states) and len(set(labels)) == len(labels), labels


@pytest.mark.parametrize("states, same", [
    (["init:scale=1", "init:scale=1.0"], "init:scale=1,seed=0,activation=sigmoid"),
    (["init:seed=3", "init:seed=3"], "init:scale=0.316228,seed=3,activation=sigmoid"),
    (["init", f"init:scale={DEFAULT_SCALE}"], "init:scale=0.316228,seed=0,activation=sigmoid"),
    (["init:scale=1", "init:scale=1,label=again"], "init:scale=1,seed=0,activation=sigmoid"),
])
def test_the_same_state_twice_is_rejected_before_work(states, same):
    """Every key is checked before any work starts (README): two spellings of one state — a label alone
    does not make another model — are an error naming the key, both entries, the canonical state and
    what to do."""
    with pytest.raises(ValueError, match=rf"^spec: states: {re.escape(repr(states[0]))} and "
                                         rf"{re.escape(repr(states[1]))} are the same state \({re.escape(same)}\); "
                                         r"list it once"):
        spec_from_dict({"datasets": ["markov:n=5"], "states": states})


# ---------------------------------------------------------------------- load_spec
def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_spec_reads_a_file_and_names_it_after_the_file(tmp_path):
    path = _write(tmp_path / "my-study.toml", 'datasets = ["markov:n=5"]\nmax_lag = 3\nhidden_size = 4\n')
    spec = load_spec(path)
    assert spec.name == "my-study"
    assert (spec.datasets, spec.max_lag, spec.hidden_size) == (["markov:n=5"], 3, 4)
    named = load_spec(_write(tmp_path / "b.toml", 'name = "other"\ndatasets = ["markov:n=5"]\n'))
    assert named.name == "other"


@pytest.mark.parametrize("text, match", [
    ('datasets = ["agreement"]\nmax_lags = 3\n', r"unknown key\(s\) \['max_lags'\]; allowed keys:"),
    ('datasets = ["agreement:distance=zero"]\n', r"datasets: .*'distance' must be an integer"),
    ('hidden_size = "50"\n', r"key 'hidden_size' must be of type int"),
    ('max_lag = -2\n', r"max_lag: must be >= 0"),
    ('states = ["file:path=missing.npz"]\n', r"states: model file missing\.npz does not exist"),
    ('datasets = [\n', r"not valid TOML"),
    ('datasets = ["a" "b"]\n', r"not valid TOML"),
])
def test_load_spec_errors_name_the_file(tmp_path, text, match):
    path = _write(tmp_path / "bad.toml", text)
    with pytest.raises(ValueError, match=match) as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_load_spec_not_found_lists_the_builtin_specs(tmp_path):
    assert BUILTIN, "analyses/ holds no specs"
    with pytest.raises(FileNotFoundError, match=r"analysis spec 'no-such-study' not found") as info:
        load_spec("no-such-study")
    for name in BUILTIN:
        assert name in str(info.value)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_spec(tmp_path / "missing.toml")


def test_load_spec_finds_builtin_specs_by_name():
    name = "truncation-gap-across-datasets"
    assert name in BUILTIN
    spec = load_spec(name)
    assert spec.name == name
    assert spec == load_spec(ANALYSES_DIR / f"{name}.toml")


def test_spec_toml_round_trips(tmp_path):
    spec = Spec(name="rt", title='a "quoted" title\\ with backslash', datasets=["markov:n=5", "dyck:n=4"],
                states=["init:scale=0.5", "init:scale=2,seed=3"], task="lm", hidden_size=4, max_lag=3,
                n_sentences=7, block_schemes=["chunked:2", "mikolov:1,2"], floor=0.01, per_sentence=False, seed=9)
    path = _write(tmp_path / "rt.toml", spec.to_toml())
    assert load_spec(path) == spec
    assert spec_from_dict(tomllib.loads(spec.to_toml())) == spec
    # n_sentences = None (all) is left out, and reads back as None
    assert load_spec(_write(tmp_path / "all.toml", replace(spec, n_sentences=None).to_toml())).n_sentences is None


def test_reduced():
    small = DEFAULT_SPEC.reduced(20, max_lag=4, hidden_size=4)
    assert (small.n_sentences, small.max_lag, small.hidden_size) == (20, 4, 4)
    assert small.datasets == DEFAULT_SPEC.datasets and small.states == DEFAULT_SPEC.states
    # never larger than the spec itself
    tiny = Spec(max_lag=3, n_sentences=10).reduced(100, max_lag=50)
    assert (tiny.n_sentences, tiny.max_lag, tiny.hidden_size) == (10, 3, Spec().hidden_size)
    assert Spec().reduced(30).n_sentences == 30


def test_default_spec_is_valid():
    validate(DEFAULT_SPEC)
    assert DEFAULT_SPEC.task in TASKS


# ---------------------------------------------------------------------- nothing is created on a bad spec
@pytest.mark.parametrize("bad", [Spec(name="bad", max_lag=-1), Spec(name="bad", datasets=["nope"]),
                                 Spec(name="bad", states=["file:path=missing.npz"]),
                                 Spec(name="bad", block_schemes=["block:5,3"])])
def test_run_spec_validates_before_creating_anything(tmp_path, bad):
    out = tmp_path / "reports"
    with pytest.raises(ValueError):
        run_spec(bad, out, progress=False, render=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- model states
@pytest.mark.parametrize("text, kind, scale, seed, activation, label", [
    ("init", "init", DEFAULT_SCALE, None, "sigmoid", "init:scale=0.316228,activation=sigmoid"),
    ("init:scale=1.0,seed=3", "init", 1.0, 3, "sigmoid", "init:scale=1,seed=3,activation=sigmoid"),
    ("init:activation=tanh, scale=0.5", "init", 0.5, None, "tanh", "init:scale=0.5,activation=tanh"),
    ("init:scale=2,label=big", "init", 2.0, None, "sigmoid", "big"),
    ("  init:scale=0  ", "init", 0.0, None, "sigmoid", "init:scale=0,activation=sigmoid"),
])
def test_parse_state_init_forms(text, kind, scale, seed, activation, label):
    state = parse_state(text)
    assert (state.kind, state.scale, state.seed, state.activation) == (kind, scale, seed, activation)
    assert state.label == label
    assert parse_state(state) is state


def test_resolved_state_fills_in_the_spec_seed_and_keeps_its_own():
    assert parse_state("init").resolved(4).label == "init:scale=0.316228,seed=4,activation=sigmoid"
    assert parse_state("init:seed=2").resolved(4).seed == 2
    assert parse_state("file:path=m.npz").resolved(4).label == "file:path=m.npz"
    train = parse_state("train:scheme=tbptt:3,epochs=2,lr=0.5,batch_size=20").resolved(1)
    assert train.label == "train:scheme=tbptt:3,epochs=2,lr=0.5,batch_size=20,seed=1,scale=0.316228,at=end"


def test_parse_state_file_forms():
    state = parse_state("file:path=models/m.npz")
    assert (state.kind, state.path, state.label) == ("file", "models/m.npz", "file:path=models/m.npz")
    assert parse_state("file:path=./models//m.npz").canonical == "file:path=models/m.npz"
    assert parse_state("file:path=m.npz,label=trained").label == "trained"


@pytest.mark.parametrize("text, error, match", [
    (3, TypeError, r"a model state must be a string"),
    (None, TypeError, r"a model state must be a string"),
    ("random", ValueError, r"unknown model state kind 'random'.*expected one of \['file', 'init', 'train'\]"),
    ("init:sigma=1", ValueError, r"unknown key\(s\) \['sigma'\]; allowed:"),
    ("init:seed=x", ValueError, r"seed an integer"),
    ("init:scale=inf", ValueError, r"scale must be a finite number >= 0"),
    ("file:label=x", ValueError, r"needs path=FILE\.npz"),
    ("file:path", ValueError, r"'path' is not key=value"),
])
def test_parse_state_errors(text, error, match):
    with pytest.raises(error, match=match):
        parse_state(text)


def test_spec_seed_applies_to_init_states_without_their_own():
    """A state without seed= draws from the spec's seed; one with seed= from its own."""
    spec = Spec(states=["init", "init:seed=2,scale=1", "init:scale=3"], seed=7)
    assert [s.seed for s in spec.model_states()] == [7, 2, 7]
    plain, own, _ = spec.model_states()
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(plain.build(6, 3, 6, key="k", default_seed=7), name),
                                      getattr(parse_state("init:seed=7").build(6, 3, 6, key="k"), name))
    assert not np.array_equal(own.build(6, 3, 6, key="k", default_seed=7).U,
                              parse_state("init:seed=7,scale=1").build(6, 3, 6, key="k").U)


def test_two_spellings_of_a_dataset_are_one_dataset():
    """Labels, seeds and keys come from the canonical text, so spelling changes nothing."""
    from gradlab.data import canonical_spec
    spellings = ["recall", "recall:distance=8", " recall: n=1000 , distance=8", "recall:n_keys=4,seed=0"]
    assert {canonical_spec(s) for s in spellings} == {"recall:distance=8,n=1000,seed=0,n_keys=4,n_distractors=8"}
    a, b = (units(Spec(datasets=[d], states=["init"], hidden_size=3, max_lag=2))[0] for d in spellings[:2])
    assert (a.dataset, a.key, a.slug) == (b.dataset, b.key, b.slug)
    with pytest.raises(ValueError, match=r"datasets: 'recall' and 'recall:distance=8' are the same dataset "
                                         r"\(recall:distance=8,n=1000,seed=0,n_keys=4,n_distractors=8\); list it once"):
        spec_from_dict({"datasets": ["recall", "markov", "recall:distance=8"]})


def test_two_spellings_of_a_state_are_rejected():
    with pytest.raises(ValueError, match=r"states: 'init' and 'init:seed=0,scale=0.316227766' are the same state"):
        spec_from_dict({"datasets": ["markov:n=5"], "states": ["init", "init:seed=0,scale=0.316227766"]})


def test_init_states_are_deterministic_and_differ_across_datasets():
    state = parse_state("init:scale=0.7,seed=4")
    a = state.build(10, 4, 10, key="agreement:distance=8")
    b = state.build(10, 4, 10, key="agreement:distance=8")
    for name in ("U", "V", "W"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    other = state.build(10, 4, 10, key="markov")
    assert not np.array_equal(a.U, other.U)
    reseeded = parse_state("init:scale=0.7,seed=5").build(10, 4, 10, key="agreement:distance=8")
    assert not np.array_equal(a.U, reseeded.U)
    assert a.U.shape == (4, 4) and a.V.shape == (4, 10) and a.W.shape == (10, 4)
    big = parse_state("init:scale=1.4,seed=4").build(10, 4, 10, key="agreement:distance=8")
    np.testing.assert_allclose(big.U, 2 * a.U, rtol=1e-15)  # same draw, twice the scale
    assert parse_state("init:activation=tanh").build(3, 2, 2).activation == "tanh"


def test_file_state_loads_the_model_and_checks_its_sizes(tmp_path):
    model = RNN.init(7, 3, 7, rng=1)
    path = model.save(tmp_path / "trained.npz")
    state = parse_state(f"file:path={path}")
    state.check()
    got = state.build(7, 3, 7, key="anything")
    np.testing.assert_array_equal(got.U, model.U)
    np.testing.assert_array_equal(got.V, model.V)
    with pytest.raises(ValueError, match=re.escape(f"model file {path} has |V| = 7")):
        state.build(9, 3, 9)
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*\|O\| = 7.*needs .*\|O\| = 2"):
        state.build(7, 3, 2)


def test_file_state_check_fails_on_missing_or_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz does not exist"):
        ModelState("file", path=str(tmp_path / "missing.npz")).check()
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"states: model file .*junk\.npz is not a readable \.npz"):
        spec_from_dict({"states": [f"file:path={junk}"]})
