"""Integration tests on the real agreement data in ../shared/data/linzen-agreement (skipped when absent)."""
import csv
from pathlib import Path

import numpy as np
import pytest

from gradlab.data import Vocabulary, load_dataset

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "linzen-agreement"
FILES = ["wiki-dev.txt", "wiki-test.txt"]


def need(name):
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def reference_rows(path):
    """The file read with the csv module, independently of gradlab's reader."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows


@pytest.mark.parametrize("name", FILES)
def test_every_row_loads_with_its_distance(name):
    path = need(name)
    rows = reference_rows(path)
    ds = load_dataset("linzen", path=path, vocab=need("vocab.wiki.txt"))
    assert len(ds) == len(rows) and ds.n_skipped == 0
    d = ds.describe()
    subj = np.array([int(r["subj_idx"]) for r in rows])
    verb = np.array([int(r["verb_idx"]) for r in rows])
    np.testing.assert_array_equal(d.distance, verb - subj)
    np.testing.assert_array_equal(d.subj_idx, subj)
    assert d.verb_pos.tolist() == [r["verb_pos"] for r in rows]
    assert d.length.tolist() == [len(r["sentence"].split()) for r in rows]
    assert ((d.n_attractors >= 0) & (d.n_attractors <= d.distance - 1)).all()
    # the verb stands at verb_idx (or its tag, where the rare verb was replaced)
    at_verb = [ds.words(i)[v] for i, v in enumerate(verb)]
    ok = np.mean([w in (r["verb"], r["verb_pos"]) for w, r in zip(at_verb, rows)])
    assert ok > 0.99
    # the three tasks build, one loss per row for number prediction and agreement
    for task in ds.tasks:
        b = ds.batch(task)
        assert b.n_sentences == len(rows)
    assert ds.batch("number").n_losses == ds.batch("agreement").n_losses == len(rows)
    labels = ds.batch("number").targets
    assert labels[labels >= 0].tolist() == [int(r["verb_pos"] == "VBP") for r in rows]
    deps = ds.dependencies("lm")
    np.testing.assert_array_equal(deps.lag, verb - subj - 1)


def test_coursework_vocabulary_gives_the_unk_fraction_the_counts_imply():
    path = need("vocab.wiki.txt")
    counts = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            counts.append(int(line.split("\t")[1]))
    implied = sum(counts[2000:]) / sum(counts)
    v = Vocabulary.from_counts(path, n_words=2000)
    assert len(v) == 2000
    assert v.unk_fraction == pytest.approx(implied, rel=1e-12)
    assert 0.10 < v.unk_fraction < 0.12
    # the coursework's ids: VBZ and VBP first (the file's order), special tokens included
    assert v.words[:2] == ("VBZ", "VBP")
    assert {"<s>", "</s>", "UNK"} <= set(v.words)
    ds = load_dataset(f"linzen:path={need('wiki-dev.txt')},vocab={path},n_vocab=2000")
    assert ds.vocab.unk_fraction == v.unk_fraction


def test_agreement_items_on_real_data():
    ds = load_dataset("linzen", path=need("wiki-dev.txt"), vocab=need("vocab.wiki.txt"))
    items = ds.agreement_items()
    assert len(items) == len(ds)
    both = items[items.comparable]
    assert len(both) > 0.7 * len(items)
    assert (both.verb_id != both.inflected_id).all() and (both.verb_id != ds.vocab.unk_id).all()
    assert (items.comparable <= (items.verb_known & items.inflected_known)).all()
    lm = ds.batch("lm")
    verb_targets = lm.targets[lm.offsets[:-1] + items.step.to_numpy()]
    tokens = ds.describe()
    # where the sentence has the verb itself, the lm target at `step` is the verb's id
    same = np.array([ds.words(i)[v] == w for i, (v, w) in enumerate(zip(tokens.verb_idx, tokens.verb))])
    np.testing.assert_array_equal(verb_targets[same], items.verb_id.to_numpy()[same])


def test_split_of_real_data_shares_the_vocabulary():
    ds = load_dataset("linzen", path=need("wiki-test.txt"))
    train, dev = ds.split(dev_fraction=0.1, seed=0)
    assert len(train) + len(dev) == len(ds) == 4000
    assert train.vocab is dev.vocab
    assert len(ds.vocab) == 2000
