"""Properties of the built-in generators: the annotated source determines the target,
distances follow the parameter, and the same seed gives the same data."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.data import load_dataset
from gradlab.data.generators import NOUNS, VERBS, agreement_sentence, markov_table

PROPERTY = settings(max_examples=25, deadline=None)
#: Sampling error of a conditional frequency from >= 2000 draws: sd <= 0.5/sqrt(2000) = 0.011; 0.03 is ~3 sd.
FREQ_ATOL = 0.03
#: Mean of 3000 geometric lengths (mean 7, sd ~6.5): sd of the mean ~0.12 = 1.7 %; 8 % is ~4.5 sd.
MEAN_LENGTH_RTOL = 0.08
SINGULAR_NOUNS = {sg for sg, _ in NOUNS}
PLURAL_NOUNS = {pl for _, pl in NOUNS}
SINGULAR_VERBS = {sg for sg, _ in VERBS}
PLURAL_VERBS = {pl for _, pl in VERBS}

seeds = st.integers(0, 2**32 - 1)
distances = st.integers(1, 25)
materials = st.sampled_from(["mixed", "pp", "rc"])
probabilities = st.sampled_from([0.0, 0.3, 1.0])


def words_at(ds, task):
    """(word input at each dependency's source step, its dependency rows, target id at its dependent step)."""
    b = ds.batch(task)
    deps = ds.dependencies(task)
    start = b.offsets[deps.sentence.to_numpy()]
    sources = [ds.vocab.words[i] for i in b.ids[start + deps.source.to_numpy()]]
    return sources, deps, b.targets[start + deps.dependent.to_numpy()]


# ---------------------------------------------------------------------- agreement
@PROPERTY
@given(seed=seeds, distance=distances, p_attractor=probabilities, material=materials)
def test_agreement_source_is_subject_whose_number_sets_the_target(seed, distance, p_attractor, material):
    ds = load_dataset("agreement", distance=distance, n=8, seed=seed, p_attractor=p_attractor, material=material)
    subjects, deps, labels = words_at(ds, "number")
    assert (deps.lag == distance - 1).all()
    for subj, label in zip(subjects, labels):
        assert subj in SINGULAR_NOUNS | PLURAL_NOUNS
        assert label == (subj in PLURAL_NOUNS)
    subjects_lm, _, verbs = words_at(ds, "lm")
    assert subjects_lm == subjects
    for subj, verb in zip(subjects, (ds.vocab.words[v] for v in verbs)):
        assert (subj in PLURAL_NOUNS) == (verb in PLURAL_VERBS)
        assert verb in SINGULAR_VERBS | PLURAL_VERBS


@PROPERTY
@given(seed=seeds, distance=distances, p_attractor=probabilities, material=materials)
def test_flipping_the_subject_number_flips_the_verb(seed, distance, p_attractor, material):
    kw = dict(distance=distance, n=6, seed=seed, p_attractor=p_attractor, material=material)
    sg = load_dataset("agreement", p_plural=0.0, **kw)
    pl = load_dataset("agreement", p_plural=1.0, **kw)
    d_sg, d_pl = sg.describe(), pl.describe()
    assert (d_sg.verb_pos == "VBZ").all() and (d_pl.verb_pos == "VBP").all()
    np.testing.assert_array_equal(d_sg.n_attractors, d_pl.n_attractors)
    assert sg.dependencies("lm").equals(pl.dependencies("lm"))
    for i in range(len(sg)):
        a, b = sg.words(i), pl.words(i)
        s, v = int(d_sg.subj_idx[i]), int(d_sg.verb_idx[i])
        assert (a[s], b[s]) in NOUNS and (a[v], b[v]) in VERBS
        # everything else is the same, except number-bearing words, which all flip together
        for x, y in zip(a[s + 1:v], b[s + 1:v]):
            assert x == y or (x, y) in NOUNS or (y, x) in NOUNS or (x, y) in VERBS or (y, x) in VERBS
        assert a[v + 2:] == b[v + 2:]


@PROPERTY
@given(seed=seeds, distance=distances, p_attractor=st.floats(0, 1), material=materials,
       plural=st.booleans())
def test_agreement_sentence_counts_attractors_and_hits_the_distance(seed, distance, p_attractor, material, plural):
    words, subj, verb, n_attr, _ = agreement_sentence(np.random.default_rng(seed), distance, plural,
                                                      p_attractor, material)
    assert verb - subj == distance
    other = SINGULAR_NOUNS if plural else PLURAL_NOUNS
    assert n_attr == sum(w in other for w in words[subj + 1:verb])
    assert words[verb] in (PLURAL_VERBS if plural else SINGULAR_VERBS)


def test_attractor_probability_extremes():
    none = load_dataset("agreement:distance=12,n=50,p_attractor=0").describe()
    every = load_dataset("agreement:distance=12,n=50,p_attractor=1").describe()
    assert (none.n_attractors == 0).all()
    assert (every.n_attractors >= 3).all()  # 11 words of material hold at least 3 nouns


@PROPERTY
@given(seed=seeds, lo=st.integers(1, 10), extra=st.integers(0, 10))
def test_agreement_distances_stay_in_range(seed, lo, extra):
    d = load_dataset("agreement", distance=lo + extra, min_distance=lo, n=40, seed=seed).describe()
    assert d.distance.between(lo, lo + extra).all()
    assert (d.distance == d.verb_idx - d.subj_idx).all()


def test_distance_range_is_covered():
    d = load_dataset("agreement:distance=6,min_distance=2,n=400").describe()
    assert sorted(d.distance.unique()) == [2, 3, 4, 5, 6]


# ---------------------------------------------------------------------- recall
@PROPERTY
@given(seed=seeds, distance=st.integers(2, 40), n_keys=st.integers(1, 6))
def test_recall_target_is_the_key_at_the_source(seed, distance, n_keys):
    ds = load_dataset("recall", distance=distance, n=10, seed=seed, n_keys=n_keys)
    keys, deps, targets = words_at(ds, "recall")
    assert [ds.vocab.words[t] for t in targets] == keys
    assert (deps.lag == distance - 1).all()
    assert all(k.startswith("k") for k in keys)
    b = ds.batch("recall")
    assert b.n_losses == 10
    d = ds.describe()
    assert (d.distance == distance).all() and (d.key == keys).all()
    for i in range(len(ds)):
        w = ds.words(i)
        assert w[-2] == "?" and all(x.startswith("x") for x in w[1:-2])


# ---------------------------------------------------------------------- Dyck-2
def matching(words):
    stack, pairs = [], {}
    for t, w in enumerate(words):
        if w in "([":
            stack.append(t)
        else:
            pairs[t] = stack.pop()
    assert not stack
    return pairs


@PROPERTY
@given(seed=seeds, half=st.integers(1, 15), max_depth=st.integers(1, 6), p_open=st.sampled_from([0.2, 0.5, 0.9]))
def test_dyck_closers_match_their_openers(seed, half, max_depth, p_open):
    ds = load_dataset("dyck", length=2 * half, max_depth=max_depth, p_open=p_open, n=8, seed=seed)
    opens, deps, targets = words_at(ds, "closing")
    pair = {"(": ")", "[": "]"}
    assert [pair[o] for o in opens] == [ds.vocab.words[t] for t in targets]
    d = ds.describe()
    assert (d.length == 2 * half).all() and (d.n_dependencies == half).all()
    assert (d.depth <= max_depth).all()
    for i in range(len(ds)):
        got = deps[deps.sentence == i]
        want = matching(ds.words(i))
        # word u closes word s: the loss at step u reads the input s + 1
        assert sorted(zip(got.dependent, got.source)) == sorted((u, s + 1) for u, s in want.items())


@PROPERTY
@given(seed=seeds, hi=st.integers(0, 12), lo=st.integers(0, 12), max_depth=st.integers(2, 5))
def test_dyck_distance_puts_a_pair_around_a_balanced_string(seed, hi, lo, max_depth):
    distance, min_distance = 2 * max(hi, lo) + 1, 2 * min(hi, lo) + 1
    ds = load_dataset("dyck", distance=distance, min_distance=min_distance, max_depth=max_depth, n=12, seed=seed)
    opens, deps, targets = words_at(ds, "closing")
    pair = {"(": ")", "[": "]"}
    assert [pair[o] for o in opens] == [ds.vocab.words[t] for t in targets]
    d = ds.describe()
    assert d["distance"].between(min_distance, distance).all() and (d["distance"] % 2 == 1).all()
    assert (d["length"] == d["distance"] + 1).all() and (d["depth"] <= max_depth).all()
    for i in range(len(ds)):
        words = ds.words(i)
        want = matching(words)
        assert want[len(words) - 1] == 0                  # the outer pair: the sentence's longest dependency
        got = deps[deps.sentence == i]
        assert sorted(zip(got.dependent, got.source)) == sorted((u, s + 1) for u, s in want.items())


def test_dyck_distance_is_uniform_on_odd_distances_and_deterministic():
    a = load_dataset("dyck:distance=9,min_distance=3,n=4000,seed=5")
    counts = a.describe()["distance"].value_counts().sort_index()
    assert counts.index.tolist() == [3, 5, 7, 9]
    assert counts.min() > 900                             # 1000 expected each; 5 sd below is ~850
    b = load_dataset("dyck:distance=9,min_distance=3,n=4000,seed=5")
    assert [a.text(i) for i in range(50)] == [b.text(i) for i in range(50)]
    assert load_dataset("dyck:distance=1,n=3").text(0) in ("( )", "[ ]")
    assert (load_dataset("dyck:distance=7,n=20").describe()["distance"] == 7).all()


@pytest.mark.parametrize("spec, message", [
    ("dyck:distance=8", "distance must be odd"),
    ("dyck:distance=9,min_distance=4", "min_distance must be odd"),
    ("dyck:distance=9,min_distance=11", "min_distance must be between 1 and distance=9"),
    ("dyck:min_distance=3", "min_distance needs distance"),
    ("dyck:distance=5,max_depth=1", "needs max_depth >= 2"),
    ("dyck:distance=0", "distance' must be >= 1"),
])
def test_dyck_distance_bad_parameters(spec, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(spec)


# ---------------------------------------------------------------------- Markov
@PROPERTY
@given(seed=seeds, order=st.integers(1, 4))
def test_markov_dependencies_are_local(seed, order):
    ds = load_dataset("markov", order=order, n_symbols=3, n=10, seed=seed)
    deps = ds.dependencies()
    if order == 1:
        assert len(deps) == 0
    else:
        assert deps.lag.max() <= order - 2
        assert len(deps) == ds.n_words


def test_markov_samples_follow_the_table():
    order, k = 3, 2
    ds = load_dataset("markov", order=order, n_symbols=k, n=4000, seed=1, length=20.0)
    table = markov_table(order=order, n_symbols=k, concentration=0.2, chain_seed=0)
    counts = np.zeros_like(table)
    for i in range(len(ds)):
        sym = [int(w[1:]) for w in ds.words(i)]
        ctx = [k, k] + sym  # <s> <s> padding = digit k
        for t, s in enumerate(sym):
            counts[ctx[t] * (k + 1) + ctx[t + 1], s] += 1
    seen = counts.sum(axis=1) > 2000
    assert seen.sum() >= 3
    np.testing.assert_allclose(counts[seen] / counts[seen].sum(axis=1, keepdims=True), table[seen], atol=FREQ_ATOL)


def test_markov_mean_length_and_shared_chain():
    d = load_dataset("markov:n=3000,length=7").describe()
    assert d.length.mean() == pytest.approx(7, rel=MEAN_LENGTH_RTOL)
    assert d.length.min() >= 1


# ---------------------------------------------------------------------- determinism
@pytest.mark.parametrize("spec", ["agreement:distance=7,min_distance=2", "recall:distance=9", "dyck:length=16",
                                  "markov:order=2"])
def test_same_seed_same_data_other_seed_other_data(spec):
    a = load_dataset(f"{spec},n=30,seed=11")
    b = load_dataset(a.spec)
    c = load_dataset(f"{spec},n=30,seed=12")
    assert [a.text(i) for i in range(30)] == [b.text(i) for i in range(30)]
    assert a.describe().equals(b.describe())
    assert [a.text(i) for i in range(30)] != [c.text(i) for i in range(30)]
    assert a.vocab == c.vocab  # the vocabulary depends on the grammar only
