"""evaluate_agreement_set against a per-item loop over naive.forward_sentence, and the CLI on tiny files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gradlab import RNN
from gradlab.cli import app
from gradlab.data import UNK, Vocabulary
from gradlab.data.readers import read_gulordava_set, read_linzen_testset
from gradlab.train.evaluate import PUBLISHED_AGREEMENT, evaluate_agreement_set
from naive import cross_entropy, forward_sentence

#: margins and losses come from the same float64 forward as the naive loop, different summation order
ATOL = 1e-10

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "colorlessgreen"
WIKI_VOCAB = REAL.parent / "linzen-agreement" / "vocab.wiki.txt"

TEXT = ["the keys to the cabinet are on the table . <eos>",
        "the author that the guards like laughs . <eos>",
        "dogs bark . <eos>",
        "the zebra sings . <eos>",
        "the cats near the dog sleep . <eos>"]
GOLD = ["5\tare\tis\t1", "6\tlaughs\tlaugh\t1", "1\tbark\tbarks\t0", "2\tsings\tsing\t0", "5\tsleep\tsleeps\t1"]
# "zebra" is outside the vocabulary (UNK in the prefix); "sings"/"sing" are too: item 3 is not comparable
WORDS = ["<s>", "</s>", UNK, "the", "keys", "to", "cabinet", "are", "is", "author", "that", "guards", "like",
         "laughs", "laugh", "dogs", "bark", "barks", "cats", "near", "dog", "sleep", "sleeps"]


@pytest.fixture
def linzen(tmp_path):
    (tmp_path / "t.text").write_text("\n".join(TEXT) + "\n")
    (tmp_path / "t.gold").write_text("\n".join(GOLD) + "\n")
    return read_linzen_testset(tmp_path / "t.text")


def naive_items(model, ts, vocab, lower=False):
    norm = str.lower if lower else (lambda w: w)
    margins, losses = [], []
    for prefix, c, w in zip(ts.items["prefix"], ts.items["correct"], ts.items["wrong"]):
        x = [vocab.bos_id] + [vocab.id(norm(t)) for t in prefix]
        _, _, _, z = forward_sentence(model.U, model.V, model.W, model.activation, x)
        margins.append(z[-1, vocab.id(norm(c))] - z[-1, vocab.id(norm(w))])
        losses.append(cross_entropy(z[-1], vocab.id(norm(c))))
    return np.array(margins), np.array(losses)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_margins_losses_and_breakdowns_match_a_naive_loop(linzen, activation):
    vocab = Vocabulary(WORDS)
    model = RNN.init(len(vocab), 5, rng=1, scale=1.0, activation=activation)
    ev = evaluate_agreement_set(model, linzen, vocab, max_tokens=7)  # several forward chunks
    margin, loss = naive_items(model, linzen, vocab)
    np.testing.assert_allclose(ev.items["margin"], margin, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ev.items["loss"], loss, rtol=0, atol=ATOL)
    comparable = np.array([True, True, True, False, True])
    assert ev.items["comparable"].tolist() == comparable.tolist()
    assert ev.items["unk_in_prefix"].tolist() == [0, 0, 0, 1, 0]
    right = (margin > 0) & comparable
    assert ev.items["correct"].tolist() == right.tolist()
    assert (ev.n_items, ev.n_comparable) == (5, 4)
    assert ev.accuracy == pytest.approx(right[comparable].mean())
    att = linzen.items["n_attractors"].to_numpy()
    expected = pd.Series(right[comparable]).groupby(att[comparable]).mean()
    assert ev.by_attractors["n_attractors"].tolist() == expected.index.tolist()
    np.testing.assert_allclose(ev.by_attractors["accuracy"], expected.to_numpy())
    assert ev.by_type["type"].tolist() == ["original"] and ev.by_type["n"].tolist() == [4]
    assert ev.comparison["model"].tolist() == ["this model"]  # no published figures quoted for Linzen's set


def test_a_model_that_prefers_the_correct_forms_scores_one(linzen):
    vocab = Vocabulary(WORDS)
    model = RNN.init(len(vocab), 3, rng=0)
    model.W[:] = 0.0
    model.V[:] = 1.0                       # every state is the same positive vector
    for form in linzen.items["correct"]:
        if form in vocab:
            model.W[vocab.id(form)] = 1.0  # correct forms get the larger logit
    ev = evaluate_agreement_set(model, linzen, vocab)
    assert ev.accuracy == 1.0
    assert ev.items.loc[ev.items["comparable"], "margin"].gt(0).all()


TAB_HEADER = "pattern\tconstr_id\tsent_id\tform\tclass\ttype\tn_attr\tlen_prefix\tsent\tcorrect_number"
TAB = ["P\t0\t0\tare\tcorrect\toriginal\t1\t5\tThe keys to the cabinet are here\tplur",
       "P\t0\t0\tis\twrong\toriginal\t1\t5\tThe keys to the cabinet are here\tplur",
       "P\t0\t1\tsleep\tcorrect\tgenerated\t0\t2\tThe Cats sleep\tplur",
       "P\t0\t1\tsleeps\twrong\tgenerated\t0\t2\tThe Cats sleep\tplur"]


def test_gulordava_lowercase_and_published_figures(tmp_path):
    (tmp_path / "g.tab").write_text("\n".join([TAB_HEADER] + TAB) + "\n")
    ts = read_gulordava_set(tmp_path / "g.tab")
    vocab = Vocabulary(WORDS)
    model = RNN.init(len(vocab), 4, rng=2, scale=1.0)
    cased = evaluate_agreement_set(model, ts, vocab, label="mine")
    lower = evaluate_agreement_set(model, ts, vocab, lowercase=True, label="mine")
    assert cased.items["unk_in_prefix"].tolist() == [1, 2]  # "The", "Cats" are not in the lower-case vocabulary
    assert lower.items["unk_in_prefix"].tolist() == [0, 0]
    margin, _ = naive_items(model, ts, vocab, lower=True)
    np.testing.assert_allclose(lower.items["margin"], margin, rtol=0, atol=ATOL)
    comp = lower.comparison
    mine = comp[comp["model"] == "mine"].set_index("type")["accuracy"]
    assert mine.to_dict() == {"generated": float(margin[1] > 0), "original": float(margin[0] > 0)}
    published = comp[comp["model"] != "mine"]
    assert sorted(published["accuracy"]) == sorted(a for s, _, _, a in PUBLISHED_AGREEMENT if s == "gulordava")
    assert set(published["type"]) == {"original", "generated"}


def test_bad_arguments(linzen):
    vocab = Vocabulary(WORDS)
    model = RNN.init(len(vocab), 3, rng=0)
    with pytest.raises(TypeError, match="test_set must be an AgreementTestSet"):
        evaluate_agreement_set(model, linzen.items, vocab)
    with pytest.raises(TypeError, match="vocab must be a gradlab.data.Vocabulary"):
        evaluate_agreement_set(model, linzen, WORDS)
    with pytest.raises(ValueError, match="is not a language model over vocab of 23 words"):
        evaluate_agreement_set(RNN.init(len(vocab), 3, output_size=2, rng=0), linzen, vocab)
    with pytest.raises(TypeError, match="model must be a gradlab.RNN"):
        evaluate_agreement_set(None, linzen, vocab)
    with pytest.raises(TypeError, match="lowercase must be True or False"):
        evaluate_agreement_set(model, linzen, vocab, lowercase="yes")
    with pytest.raises(ValueError, match="max_tokens must be a positive integer"):
        evaluate_agreement_set(model, linzen, vocab, max_tokens=0)


def test_cli_prints_and_writes_the_items(tmp_path, linzen):
    counts = tmp_path / "vocab.txt"
    counts.write_text("".join(f"{w}\t{100 - i}\n" for i, w in enumerate(WORDS) if w not in ("<s>", "</s>", UNK)))
    voc = Vocabulary.from_counts(counts, None)
    model = RNN.init(len(voc), 4, rng=0)
    model.save(tmp_path / "m.npz")
    (tmp_path / "g.tab").write_text("\n".join([TAB_HEADER] + TAB) + "\n")
    text = tmp_path / "t.text"
    result = CliRunner().invoke(app, ["agreement-test", str(tmp_path / "m.npz"), "--vocab", str(counts),
                                      "--n-vocab", str(len(voc)), "--linzen", str(text), "--gulordava",
                                      str(tmp_path / "g.tab"), "--lowercase", "--csv", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert "linzen_testset: accuracy" in result.output and "gulordava: accuracy" in result.output
    assert "LSTM (Gulordava et al. 2018)" in result.output
    table = pd.read_csv(tmp_path / "out.csv")
    assert len(table) == 5 + 2 and set(table["test_set"]) == {"linzen_testset", "gulordava"}
    direct = evaluate_agreement_set(model, linzen, voc, lowercase=True)
    np.testing.assert_allclose(table["margin"][:5], direct.items["margin"], rtol=1e-9)


def test_cli_errors(tmp_path):
    result = CliRunner().invoke(app, ["agreement-test", str(tmp_path / "m.npz"), "--vocab", str(tmp_path / "v")])
    assert result.exit_code == 2 and "give --linzen" in result.output
    (tmp_path / "bad.text").write_text("a b\n")
    (tmp_path / "bad.gold").write_text("9\ta\tb\t0\n")
    (tmp_path / "v.txt").write_text("a\t3\nb\t2\n")
    RNN.init(5, 2, rng=0).save(tmp_path / "m.npz")
    result = CliRunner().invoke(app, ["agreement-test", str(tmp_path / "m.npz"), "--vocab", str(tmp_path / "v.txt"),
                                      "--n-vocab", "5", "--linzen", str(tmp_path / "bad.text")])
    assert result.exit_code == 2 and "bad.gold, line 1: the verb index 9 is past" in result.output


@pytest.mark.slow
@pytest.mark.skipif(not (REAL.is_dir() and WIKI_VOCAB.exists()), reason="../shared/data is absent")
def test_real_sets_with_the_coursework_vocabulary():
    vocab = Vocabulary.from_counts(WIKI_VOCAB, 2000)
    model = RNN.init(len(vocab), 8, rng=0)
    lin = evaluate_agreement_set(model, read_linzen_testset(REAL / "linzen_testset" / "subj_agr_filtered.text"),
                                 vocab)
    assert lin.n_items == 7489 and 0 < lin.n_comparable <= 7489
    assert lin.by_attractors["n"].sum() == lin.n_comparable
    gul = evaluate_agreement_set(model, read_gulordava_set(REAL / "English" / "generated.tab"), vocab,
                                 lowercase=True)
    assert gul.n_items == 410
    assert set(gul.by_type["type"]) == {"original", "generated"}
    assert len(gul.comparison) == 2 + 4
