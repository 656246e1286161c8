"""Datasets by name: spec strings, listing, and errors that name what is allowed."""
import pytest

from gradlab.data import DEFAULT_DATASET, Dataset, check_spec, dataset_info, list_datasets, load_dataset, parse_spec

NAMES = ["agreement", "recall", "dyck", "markov", "linzen", "text"]


def test_parse_spec():
    assert parse_spec("agreement") == ("agreement", {})
    assert parse_spec(" agreement : distance=8 , n=10 ") == ("agreement", {"distance": "8", "n": "10"})
    assert parse_spec("text:path=/a/b,c.txt,n_vocab=5") == ("text", {"path": "/a/b,c.txt", "n_vocab": "5"})
    assert parse_spec("text:path='/a b/c=d.txt'") == ("text", {"path": "/a b/c=d.txt"})


@pytest.mark.parametrize("spec, match", [
    ("agreement:distance", r"expected key=value"),
    ("agreement:distance=1,distance=2", r"gives 'distance' twice"),
    (":distance=1", r"must start with a dataset name"),
])
def test_parse_spec_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_spec(spec)


def test_list_datasets():
    table = list_datasets()
    assert list(table.columns) == ["dataset", "parameter", "type", "default", "required", "allowed", "description"]
    assert list(dict.fromkeys(table.dataset)) == NAMES
    row = table[(table.dataset == "agreement") & (table.parameter == "distance")].iloc[0]
    assert row.default == "6" and row.type == "int" and row.allowed.startswith(">= 1")
    assert table[(table.dataset == "linzen") & (table.parameter == "path")].iloc[0].default == "(required)"
    short = list_datasets(parameters=False)
    assert short.dataset.tolist() == NAMES
    assert short[short.default].dataset.tolist() == [DEFAULT_DATASET] == ["agreement"]
    assert dataset_info("dyck").tasks == ("lm", "closing")


def test_default_dataset_and_passthrough():
    ds = load_dataset()
    assert ds.name == "agreement" and len(ds) == 1000
    assert load_dataset(ds) is ds
    with pytest.raises(ValueError, match="already loaded"):
        load_dataset(ds, n=3)


def test_spec_and_keywords_agree():
    a = load_dataset("agreement:distance=8,n=20,seed=3")
    b = load_dataset("agreement", distance=8, n=20, seed=3)
    assert a.spec == b.spec
    assert a.label == "agreement:distance=8,n=20,seed=3"
    assert a.params["distance"] == 8 and isinstance(a.params["distance"], int)
    assert [a.text(i) for i in range(20)] == [b.text(i) for i in range(20)]
    assert isinstance(load_dataset(a.spec), Dataset)


def test_spec_values_are_converted():
    ds = load_dataset("markov:length=5,n=4,order=2")
    assert ds.params["length"] == 5.0 and isinstance(ds.params["length"], float)
    ds = load_dataset("agreement:min_distance=none,n=2")
    assert ds.params["min_distance"] is None


def test_every_example_spec_parses():
    for name in NAMES:
        info = dataset_info(name)
        assert parse_spec(info.example)[0] == name


@pytest.mark.parametrize("call, exc, match", [
    (lambda: load_dataset("agreemnt"), ValueError, r"unknown dataset 'agreemnt'; available: agreement, recall, dyck"),
    (lambda: load_dataset("agreement:dist=3"), ValueError,
     r"agreement: unknown parameter\(s\) \['dist'\]; allowed: distance=6, min_distance=None"),
    (lambda: load_dataset("agreement", lenght=3), ValueError, r"unknown parameter\(s\) \['lenght'\]"),
    (lambda: load_dataset("agreement:distance=eight"), ValueError,
     r"agreement: parameter 'distance' must be an integer; received 'eight'"),
    (lambda: load_dataset("agreement:distance=0"), ValueError, r"parameter 'distance' must be >= 1; received 0"),
    (lambda: load_dataset("agreement", distance=2.5), TypeError, r"'distance' must be an integer; received 2.5"),
    (lambda: load_dataset("agreement", distance=True), TypeError, r"'distance' must be an integer"),
    (lambda: load_dataset("agreement:p_attractor=1.5"), ValueError, r"'p_attractor' must be <= 1.0; received 1.5"),
    (lambda: load_dataset("agreement:p_attractor=nan"), ValueError, r"'p_attractor' must be finite"),
    (lambda: load_dataset("agreement:material=np"), ValueError, r"'material' must be one of mixed, pp, rc; received 'np'"),
    (lambda: load_dataset("agreement:distance=3,min_distance=5"), ValueError,
     r"min_distance must be between 1 and distance=3; received 5"),
    (lambda: load_dataset("recall:distance=1"), ValueError, r"'distance' must be >= 2"),
    (lambda: load_dataset("dyck:length=7"), ValueError, r"length must be even"),
    (lambda: load_dataset("markov:order=8,n_symbols=100"), ValueError, r"contexts.*lower order or n_symbols"),
    (lambda: load_dataset("linzen"), ValueError, r"linzen: parameter 'path' is required .*e\.g\. 'linzen:path="),
    (lambda: load_dataset("linzen:path=/no/such/file.tsv"), FileNotFoundError, r"linzen: path: file '/no/such/file.tsv' does not exist"),
    (lambda: load_dataset("text:path=x.txt,skip_bad_rows=maybe"), ValueError, r"'skip_bad_rows' must be true or false"),
    (lambda: load_dataset("agreement:n=3", n=4), ValueError, r"given both in the spec"),
    (lambda: load_dataset(42), TypeError, r"dataset spec must be a string"),
    (lambda: check_spec("agreement:distance=3,min_distance=5"), ValueError, r"agreement: min_distance must be"),
    (lambda: check_spec("dyck:lenght=8"), ValueError, r"dyck: unknown parameter"),
    (lambda: check_spec("text:path=/no/such/file.txt"), FileNotFoundError, r"does not exist"),
])
def test_bad_specs_raise_with_allowed_values(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_vocab_may_be_a_vocabulary_object(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("a b c\nb c\n")
    train = load_dataset("text", path=p, n_vocab=4)
    q = tmp_path / "d.txt"
    q.write_text("c d\n")
    dev = load_dataset("text", path=q, vocab=train.vocab)
    assert dev.vocab is train.vocab
    assert dev.batch().ids.tolist() == [train.vocab.bos_id, train.vocab.id("c"), train.vocab.unk_id]
    assert f"vocab=<Vocabulary size=4 from {p}>" in dev.spec


def test_check_spec_converts_without_loading(tmp_path):
    assert check_spec("agreement:distance=8") == ("agreement", {
        "distance": 8, "min_distance": None, "n": 1000, "seed": 0, "p_attractor": 0.5, "p_plural": 0.5,
        "material": "mixed"})
    p = tmp_path / "broken.tsv"
    p.write_text("not a header\n")
    name, values = check_spec("linzen", path=p)  # rows are only read by load_dataset
    assert name == "linzen" and values["path"] == p
