"""Vocabulary: building from a corpus or a counts file, the UNK fraction, encode/decode, save/load."""
import math

import numpy as np
import pytest

from gradlab.data import BOS, EOS, SPECIALS, UNK, DataFormatError, Vocabulary, adjusted_loss

CORPUS = ["the cat sat", "the dog sat", "a cat ran", "the bird"]


def test_from_corpus_orders_specials_then_count_then_word():
    v = Vocabulary.from_corpus(CORPUS, n_words=6)
    # counts: the 3, cat 2, sat 2, then a/bird/dog/ran 1 each; ties by word
    assert v.words == (BOS, EOS, UNK, "the", "cat", "sat")
    assert (v.bos_id, v.eos_id, v.unk_id) == (0, 1, 2)
    assert len(v) == v.size == 6


def test_from_corpus_is_independent_of_sentence_order():
    a = Vocabulary.from_corpus(CORPUS, n_words=5)
    b = Vocabulary.from_corpus(list(reversed(CORPUS)), n_words=5)
    assert a == b
    assert a.words[3:] == ("the", "cat")  # "cat" beats "sat" on the tie: code-point order


def test_from_corpus_unk_fraction_counts_lm_targets():
    v = Vocabulary.from_corpus(CORPUS, n_words=6)
    n_words, n_sentences = 11, 4
    unk = 4  # a, dog, ran, bird
    assert v.unk_fraction == pytest.approx(unk / (n_words + n_sentences))
    assert v.counts[v.unk_id] == unk
    assert v.counts[v.eos_id] == n_sentences


def test_from_corpus_accepts_token_lists_and_none_keeps_all():
    v = Vocabulary.from_corpus([s.split() for s in CORPUS], n_words=None)
    assert len(v) == 3 + 7
    assert v.unk_fraction == 0.0


def test_literal_unk_tokens_count_as_unknown():
    v = Vocabulary.from_corpus(["x UNK y", "x"], n_words=None)
    assert v.unk_fraction == pytest.approx(1 / (4 + 2))


def test_encode_decode_round_trip_and_unknown_words():
    v = Vocabulary.from_corpus(CORPUS, n_words=6)
    ids = v.encode("the cat flew")
    assert ids.dtype == np.int64
    assert ids.tolist() == [v.id("the"), v.id("cat"), v.unk_id]
    assert v.decode(ids) == ["the", "cat", UNK]
    assert v.encode(["sat"]).tolist() == [5]
    assert "cat" in v and "flew" not in v


def test_decode_rejects_out_of_range_ids():
    v = Vocabulary.from_corpus(CORPUS, n_words=6)
    with pytest.raises(IndexError, match=r"ids\[1\] = 6 is outside 0\.\.5"):
        v.decode([0, 6])


def test_save_load_round_trip(tmp_path):
    v = Vocabulary.from_corpus(CORPUS, n_words=6)
    path = v.save(tmp_path / "v.json")
    w = Vocabulary.load(path)
    assert w == v
    assert w.unk_fraction == v.unk_fraction
    assert w.source == v.source


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "counts.txt"
    p.write_text("the\t3\n")
    with pytest.raises(ValueError, match="not a vocabulary saved by Vocabulary.save"):
        Vocabulary.load(p)


def _counts_file(tmp_path, text, name="vocab.txt"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


COUNTS = "VBZ\t5\t0.05\nVBP\t2\t0.02\nthe\t40\t0.4\n<s>\t10\t0.1\nUNK\t10\t0.1\n</s>\t10\t0.1\ncat\t13\t0.13\ndog\t7\t0.07\nrat\t3\t0.03\n"


def test_from_counts_keeps_file_order_and_unk_fraction(tmp_path):
    v = Vocabulary.from_counts(_counts_file(tmp_path, COUNTS), n_words=7)
    assert v.words == ("VBZ", "VBP", "the", "<s>", "UNK", "</s>", "cat")
    assert v.unk_fraction == pytest.approx((7 + 3) / 100)


def test_from_counts_order_count(tmp_path):
    v = Vocabulary.from_counts(_counts_file(tmp_path, COUNTS), n_words=6, order="count")
    assert v.words[:3] == ("the", "cat", "<s>")
    assert set(SPECIALS) <= set(v.words)
    assert len(v) == 6


def test_from_counts_appends_missing_specials_keeping_size(tmp_path):
    p = _counts_file(tmp_path, "the\t5\ncat\t3\ndog\t2\nrat\t1\n")
    v = Vocabulary.from_counts(p, n_words=4)
    assert v.words == ("the", BOS, EOS, UNK)
    assert v.unk_fraction == pytest.approx(6 / 11)
    assert len(Vocabulary.from_counts(p, n_words=None)) == 7


def test_from_counts_two_columns_and_errors(tmp_path):
    assert "cat" in Vocabulary.from_counts(_counts_file(tmp_path, "cat\t3\n"), n_words=None)
    p = _counts_file(tmp_path, "cat\t3\ndog\tmany\n", "bad.txt")
    with pytest.raises(DataFormatError, match=r"bad\.txt, line 2: the count of 'dog' must be an integer"):
        Vocabulary.from_counts(p)
    p = _counts_file(tmp_path, "cat\t3\ncat\t2\n", "dup.txt")
    with pytest.raises(DataFormatError, match=r"dup\.txt, line 2: 'cat' is listed twice \(first on line 1\)"):
        Vocabulary.from_counts(p)
    p = _counts_file(tmp_path, "cat\t3\ndog\n", "short.txt")
    with pytest.raises(DataFormatError, match=r"short\.txt, line 2: .*expected word<TAB>count"):
        Vocabulary.from_counts(p)


@pytest.mark.parametrize("n_words, exc", [(2, ValueError), (True, TypeError), (2.5, TypeError)])
def test_bad_n_words(n_words, exc):
    with pytest.raises(exc, match="n_words"):
        Vocabulary.from_corpus(CORPUS, n_words=n_words)


def test_constructor_checks():
    with pytest.raises(ValueError, match="missing"):
        Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(list(SPECIALS) + ["a", "a"])
    with pytest.raises(ValueError, match="unk_fraction"):
        Vocabulary(SPECIALS, unk_fraction=1.0)


def test_adjusted_loss():
    q = 0.1
    assert adjusted_loss(2.0, q) == pytest.approx((2.0 + q * math.log(q)) / (1 - q))
    assert adjusted_loss(2.0, 0.0) == 2.0
    v = Vocabulary(SPECIALS, unk_fraction=q)
    assert v.adjust_loss(2.0) == adjusted_loss(2.0, q)
    with pytest.raises(ValueError, match="unk_fraction"):
        adjusted_loss(1.0, -0.1)
