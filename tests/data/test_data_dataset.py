"""Dataset: batches against slow references, dependency coordinates, tables, subsets."""
import numpy as np
import pandas as pd
import pytest

from gradlab.batch import NO_LOSS, Batch
from gradlab.data import Dataset, Vocabulary, load_dataset

HEADER = "sentence\tsubj_idx\tverb_idx\tverb_pos\tverb\tinflected_verb\n"
ROWS = [
    "the NN of the NNS is here .\t1\t5\tVBZ\tis\tare",
    "the dogs near the NN NNS run\t1\t6\tVBP\trun\truns",
    "the dogs near the NNS NN run\t1\t6\tVBP\trun\truns",
    "the cat VBZ\t1\t2\tVBZ\tsleeps\tsleep",
    "the dogs near the cat run fast\t1\t5\tVBP\trun\truns",
]


@pytest.fixture
def tsv(tmp_path):
    p = tmp_path / "agree.tsv"
    p.write_text(HEADER + "".join(r + "\n" for r in ROWS), encoding="utf-8")
    return p


@pytest.fixture(params=["linzen", "agreement", "recall", "dyck", "markov", "text"])
def any_dataset(request, tsv, tmp_path):
    if request.param == "linzen":
        return load_dataset("linzen", path=tsv)
    if request.param == "text":
        p = tmp_path / "c.txt"
        p.write_text("the cat sat\nthe dog ran far\nx\n")
        return load_dataset("text", path=p, n_vocab=5)
    small = {"agreement": "distance=5,min_distance=1", "recall": "distance=6,min_distance=2",
             "dyck": "length=10", "markov": "order=3,n_symbols=4"}[request.param]
    return load_dataset(f"{request.param}:n=25,seed=3,{small}")


# ---------------------------------------------------------------------- slow references
def reference_batch(ds: Dataset, task: str) -> Batch:
    """Build the batch sentence by sentence with the engine's own constructors."""
    v = ds.vocab
    sents = [ds.ids(i).tolist() for i in range(len(ds))]
    if task == "number":
        d = ds.describe()
        return Batch.for_classification([s[:k] for s, k in zip(sents, d.verb_idx)],
                                        (d.verb_pos == "VBP").astype(int).to_numpy())
    if task == "agreement":
        d = ds.describe()
        xs = [[v.bos_id] + s[:k] for s, k in zip(sents, d.verb_idx)]
        ds_ = [[NO_LOSS] * k + [v.id(w)] for k, w in zip(d.verb_idx, d.verb)]
        return Batch.for_language_model(xs, ds_)
    full = Batch.for_language_model([[v.bos_id] + s + [v.eos_id] for s in sents])
    if task == "lm":
        return full
    deps = ds.dependencies(task)
    targets = [np.full(len(s) + 1, NO_LOSS) for s in sents]
    for i, t in zip(deps.sentence, deps.dependent):
        targets[i][t] = full.sentence(i)[1][t]
    return Batch.for_language_model([full.sentence(i)[0] for i in range(len(ds))], targets)


def test_batches_match_reference(any_dataset):
    for task in any_dataset.tasks:
        got, want = any_dataset.batch(task), reference_batch(any_dataset, task)
        np.testing.assert_array_equal(got.ids, want.ids, err_msg=task)
        np.testing.assert_array_equal(got.targets, want.targets, err_msg=task)
        np.testing.assert_array_equal(got.offsets, want.offsets, err_msg=task)
        assert got.objective == ("final" if task == "number" else "lm")
        assert got.ids.max() < any_dataset.vocab.size


def test_dependencies_point_at_losses_within_sentences(any_dataset):
    for task in any_dataset.tasks:
        b = any_dataset.batch(task)
        deps = any_dataset.dependencies(task)
        assert list(deps.columns) == ["sentence", "source", "dependent", "lag"]
        assert (deps.dtypes == np.int64).all()
        lengths = b.lengths[deps.sentence]
        assert ((deps.source >= 0) & (deps.source <= deps.dependent) & (deps.dependent < lengths)).all()
        assert (deps.lag == deps.dependent - deps.source).all()
        flat = b.offsets[deps.sentence.to_numpy()] + deps.dependent.to_numpy()
        assert (b.targets[flat] != NO_LOSS).all(), task


def test_lag_is_word_distance_minus_one(any_dataset):
    d = any_dataset.describe()
    for task in any_dataset.tasks:
        deps = any_dataset.dependencies(task)
        if len(deps) == 0:
            continue
        longest = deps.groupby("sentence").lag.max()
        np.testing.assert_array_equal(longest.to_numpy() + 1, d.distance.iloc[longest.index].to_numpy())


def test_text_has_no_dependencies(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("a b\nc\n")
    ds = load_dataset("text", path=p)
    assert len(ds.dependencies()) == 0
    assert ds.describe().distance.isna().all()
    assert ds.tasks == ("lm",)


# ---------------------------------------------------------------------- agreement files
def test_describe_columns_of_agreement_files(tsv):
    ds = load_dataset("linzen", path=tsv)
    d = ds.describe()
    assert list(d.columns) == ["sentence", "row", "line", "length", "n_dependencies", "distance", "subj_idx",
                               "verb_idx", "verb_pos", "subject", "verb", "inflected_verb", "n_attractors"]
    assert d.distance.tolist() == [4, 5, 5, 1, 4]
    assert d.line.tolist() == [2, 3, 4, 5, 6]
    assert d.subject.tolist() == ["NN", "dogs", "dogs", "cat", "dogs"]


def test_attractor_heuristics(tsv):
    tags = load_dataset("linzen", path=tsv).describe().n_attractors.tolist()
    # NNS after a singular subject; a compound counts once with the number of its last noun
    assert tags == [1, 0, 1, 0, 0]
    subj = load_dataset("linzen", path=tsv, attractors="tags+subjects").describe().n_attractors.tolist()
    assert subj == [1, 0, 1, 0, 1]  # "cat" is a singular subject head on another row


def test_agreement_items(tsv):
    ds = load_dataset("linzen", path=tsv)
    items = ds.agreement_items()
    assert items.step.tolist() == [5, 6, 6, 2, 5]
    assert items.verb.tolist()[3] == "sleeps"  # the verb column, not the VBZ tag in the sentence
    v = ds.vocab
    assert items.verb_id.tolist() == [v.id(w) for w in items.verb]
    assert items.inflected_id.tolist() == [v.id(w) for w in items.inflected_verb]
    assert (items.lag == items.distance - 1).all()
    # the step that predicts the verb in the lm batch and in the agreement batch
    lm, ag = ds.batch("lm"), ds.batch("agreement")
    for i, step in enumerate(items.step):
        assert ag.lengths[i] == step + 1
        assert lm.sentence(i)[1][step] == v.id(ds.words(i)[step])


def test_unknown_verbs_are_flagged(tsv, tmp_path):
    counts = tmp_path / "v.txt"
    counts.write_text("the\t9\n<s>\t5\n</s>\t5\nUNK\t5\nrun\t3\nis\t2\ndogs\t2\n")
    ds = load_dataset("linzen", path=tsv, vocab=counts, n_vocab=7)
    items = ds.agreement_items()
    assert items.verb_known.tolist() == [True, True, True, False, True]
    assert items.inflected_known.tolist() == [False] * 5


def test_number_labels(tsv):
    b = load_dataset("linzen", path=tsv).batch("number")
    assert b.targets[b.offsets[1:] - 1].tolist() == [0, 1, 1, 0, 1]
    assert b.n_losses == 5


def test_unk_fraction_matches_vocab_built_on_same_corpus(tsv):
    ds = load_dataset("linzen", path=tsv, n_vocab=6)
    assert ds.unk_fraction("lm") == pytest.approx(ds.vocab.unk_fraction)
    assert ds.unk_fraction("number") == 0.0


def test_words_text_ids(tsv):
    ds = load_dataset("linzen", path=tsv, n_vocab=5)
    assert ds.words(3) == ["the", "cat", "VBZ"]
    assert ds.text(3) == "the cat VBZ"
    assert ds.ids(3).tolist() == ds.vocab.encode("the cat VBZ").tolist()
    with pytest.raises(IndexError, match=r"sentence index must be an integer in 0\.\.4"):
        ds.words(5)


# ---------------------------------------------------------------------- subsets
def test_select_keeps_order_and_annotations():
    ds = load_dataset("agreement:n=30,distance=6,min_distance=1,seed=1")
    sub = ds.select([7, 2, 2])
    assert [sub.text(i) for i in range(3)] == [ds.text(7), ds.text(2), ds.text(2)]
    d, dsub = ds.describe(), sub.describe()
    assert dsub.row.tolist() == [7, 2, 2]
    cols = ["length", "distance", "n_attractors", "verb"]
    pd.testing.assert_frame_equal(dsub[cols], d[cols].iloc[[7, 2, 2]].reset_index(drop=True))
    deps = sub.dependencies("number")
    assert deps.sentence.tolist() == [0, 1, 2]
    assert sub.label == ds.label + "[select]"
    mask = np.zeros(30, dtype=bool)
    mask[[3, 4]] = True
    assert ds.select(mask).describe().row.tolist() == [3, 4]


def test_select_dyck_keeps_every_dependency():
    ds = load_dataset("dyck:n=12,length=12,seed=2")
    sub = ds.select([5, 0])
    a = ds.dependencies("closing")
    want = pd.concat([a[a.sentence == 5].assign(sentence=0), a[a.sentence == 0].assign(sentence=1)])
    pd.testing.assert_frame_equal(sub.dependencies("closing"), want.reset_index(drop=True))


@pytest.mark.parametrize("indices, exc, match", [
    ([0, 30], IndexError, r"indices\[1\] = 30 is outside 0\.\.29"),
    ([-1], IndexError, "outside"),
    ([], ValueError, "no sentence"),
    ([0.5], TypeError, "integers or a bool mask"),
    (np.ones(3, dtype=bool), ValueError, "one entry per sentence"),
])
def test_select_rejects_bad_indices(indices, exc, match):
    ds = load_dataset("agreement:n=30")
    with pytest.raises(exc, match=match):
        ds.select(indices)


def test_split_is_a_seeded_partition():
    ds = load_dataset("recall:n=50,distance=4")
    train, dev = ds.split(dev_fraction=0.2, seed=5)
    rows_t, rows_d = train.describe().row.to_numpy(), dev.describe().row.to_numpy()
    assert len(rows_d) == 10 and len(rows_t) == 40
    assert sorted(np.concatenate([rows_t, rows_d]).tolist()) == list(range(50))
    assert (np.diff(rows_t) > 0).all() and (np.diff(rows_d) > 0).all()
    assert train.vocab is ds.vocab is dev.vocab
    assert train.label.endswith("[train]") and dev.label.endswith("[dev]")
    again = ds.split(dev_fraction=0.2, seed=5)[1].describe().row.to_numpy()
    other = ds.split(dev_fraction=0.2, seed=6)[1].describe().row.to_numpy()
    np.testing.assert_array_equal(again, rows_d)
    assert not np.array_equal(other, rows_d)
    assert dev.split(0.5)[0].label.endswith("[dev/train]")


@pytest.mark.parametrize("fraction, match", [(0.0, "strictly between"), (1.0, "strictly between"),
                                             (0.001, "gives 0 dev sentences"), ("0.1", "strictly between")])
def test_split_rejects_bad_fractions(fraction, match):
    with pytest.raises(ValueError, match=match):
        load_dataset("agreement:n=20").split(dev_fraction=fraction)


def test_iter_batches_cover_every_sentence_once():
    ds = load_dataset("agreement:n=23")
    seen = []
    for idx, b in ds.iter_batches("number", batch_size=5, shuffle=True, seed=1):
        assert b.n_sentences == len(idx) <= 5
        ref = ds.batch("number", indices=idx)
        np.testing.assert_array_equal(b.ids, ref.ids)
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(23))
    with pytest.raises(ValueError, match="batch_size"):
        next(ds.iter_batches(batch_size=0))


def test_with_vocab_and_build_vocab(tsv):
    ds = load_dataset("linzen", path=tsv)
    small = ds.build_vocab(n_words=4)
    assert small.words == ("<s>", "</s>", "UNK", "the")
    re = ds.with_vocab(small)
    assert re.vocab is small
    assert set(re.batch("lm").ids.tolist()) <= {0, 1, 2, 3}
    assert re.text(0) == ds.text(0)
    with pytest.raises(TypeError, match="Vocabulary"):
        ds.with_vocab("vocab.txt")


def test_unknown_task_lists_the_tasks():
    ds = load_dataset("markov:n=3")
    with pytest.raises(ValueError, match=r"task must be one of \('lm',\) .*received 'number'"):
        ds.batch("number")
    with pytest.raises(ValueError, match="task must be one of"):
        ds.agreement_items()


def test_n_outputs():
    ds = load_dataset("agreement:n=3")
    assert ds.n_outputs("number") == 2
    assert ds.n_outputs("lm") == ds.n_outputs("agreement") == len(ds.vocab)


def test_batch_arrays_are_read_only_and_ids_cache_is_safe():
    ds = load_dataset("agreement:n=3")
    ids = ds.ids(0)
    ids[0] = 99
    assert ds.ids(0)[0] != 99
    assert not ds.batch().ids.flags.writeable


def test_repr_and_len():
    ds = load_dataset("dyck:n=4,length=6")
    assert len(ds) == 4
    assert "dyck:length=6,n=4" in repr(ds)
    assert isinstance(ds.vocab, Vocabulary)
