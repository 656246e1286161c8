"""evaluate() against direct computations from gradlab.forward (losses, return_probs)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradlab import RNN, adjusted_loss, forward, load_dataset
from gradlab.train import evaluate

#: Chunked evaluation sums the same per-loss values as one forward pass, in another
#: order (and the output layer may tile rows differently): equal to ~1e-15 relative.
RTOL = 1e-12

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "linzen-agreement"


@pytest.fixture(scope="module")
def agreement():
    return load_dataset("agreement:n=60,distance=5,min_distance=2,seed=3")


def model_for(ds, task, H=6, seed=0, scale=1.0):
    return RNN.init(len(ds.vocab), H, output_size=ds.n_outputs(task), rng=seed, scale=scale)


def direct_breakdown(frame, by):
    g = frame.groupby(by, sort=True)
    return pd.DataFrame({"n": g.size(), "accuracy": g["correct"].mean(), "mean_loss": g["loss"].mean()}).reset_index()


def check_breakdown(ev_frame, direct, by):
    got = ev_frame.set_index(by)
    want = direct.set_index(by)
    assert got.index.tolist() == want.index.tolist()
    np.testing.assert_array_equal(got["n"], want["n"])
    np.testing.assert_allclose(got["accuracy"], want["accuracy"], rtol=RTOL)
    np.testing.assert_allclose(got["mean_loss"], want["mean_loss"], rtol=RTOL)


@pytest.mark.parametrize("max_tokens", [7, 1 << 16])
def test_lm_loss_perplexity_and_adjusted_perplexity(agreement, max_tokens):
    ds = agreement
    m = model_for(ds, "lm")
    fr = forward(m, ds.batch("lm"))
    mean = fr.losses.sum() / fr.losses.size
    ev = evaluate(m, ds, "lm", unk_fraction=0.1, max_tokens=max_tokens)
    assert ev.n_losses == fr.losses.size and ev.n_sentences == len(ds)
    np.testing.assert_allclose(ev.mean_loss, mean, rtol=RTOL)
    np.testing.assert_allclose(ev.perplexity, math.exp(mean), rtol=RTOL)
    q = 0.1
    np.testing.assert_allclose(ev.adjusted_loss, (mean + q * math.log(q)) / (1 - q), rtol=RTOL)
    np.testing.assert_allclose(ev.adjusted_perplexity, math.exp((mean + q * math.log(q)) / (1 - q)), rtol=RTOL)
    # default q: the vocabulary's (0 for generated data) -> adjusted = plain
    ev0 = evaluate(m, ds, "lm", max_tokens=max_tokens)
    assert ev0.unk_fraction == ds.vocab.unk_fraction == 0.0
    assert ev0.adjusted_perplexity == ev0.perplexity
    row = ev.to_frame()
    assert row.shape == (1, len(ev.SUMMARY)) and row.task.iloc[0] == "lm"


def test_lm_dependency_accuracy_by_distance_and_attractors(agreement):
    ds = agreement
    m = model_for(ds, "lm", scale=2.0)
    b = ds.batch("lm")
    fr = forward(m, b, return_probs=True)
    deps = ds.dependencies("lm")
    pos = b.offsets[deps.sentence.to_numpy()] + deps.dependent.to_numpy()
    loss_at = dict(zip(fr.loss_positions.tolist(), fr.losses.tolist()))
    direct = pd.DataFrame({"distance": deps.lag.to_numpy() + 1,
                           "n_attractors": ds.describe().n_attractors.to_numpy()[deps.sentence.to_numpy()],
                           "correct": fr.probs[pos].argmax(axis=1) == b.targets[pos],
                           "loss": [loss_at[p] for p in pos.tolist()]})
    ev = evaluate(m, ds, "lm", max_tokens=50)
    assert ev.n_items == len(deps)
    np.testing.assert_allclose(ev.accuracy, direct.correct.mean(), rtol=RTOL)
    check_breakdown(ev.by_distance, direct_breakdown(direct, "distance"), "distance")
    check_breakdown(ev.by_attractors, direct_breakdown(direct, "n_attractors"), "n_attractors")
    assert (ev.by_distance.lag == ev.by_distance.distance - 1).all()
    # the word distance is describe()'s verb_idx - subj_idx
    d = ds.describe()
    assert sorted(ev.items.distance.tolist()) == sorted((d.verb_idx - d.subj_idx).tolist())


def test_number_accuracy_from_final_step_probabilities(agreement):
    ds = agreement
    m = model_for(ds, "number", scale=2.0, seed=4)
    b = ds.batch("number")
    fr = forward(m, b, return_probs=True)
    last = b.offsets[1:] - 1
    d = ds.describe()
    direct = pd.DataFrame({"distance": (d.verb_idx - d.subj_idx).to_numpy(), "n_attractors": d.n_attractors,
                           "correct": fr.probs[last].argmax(axis=1) == b.targets[last], "loss": fr.losses})
    ev = evaluate(m, ds, "number", max_tokens=33)
    assert ev.n_items == ev.n_losses == len(ds)
    np.testing.assert_allclose(ev.accuracy, direct.correct.mean(), rtol=RTOL)
    np.testing.assert_allclose(ev.mean_loss, fr.losses.mean(), rtol=RTOL)
    assert ev.unk_fraction == 0.0
    check_breakdown(ev.by_distance, direct_breakdown(direct, "distance"), "distance")
    check_breakdown(ev.by_attractors, direct_breakdown(direct, "n_attractors"), "n_attractors")
    assert 0.0 < ev.accuracy < 1.0   # a random model gets some right and some wrong


def test_agreement_accuracy_compares_verb_and_inflected_probabilities(agreement):
    ds = agreement
    m = model_for(ds, "agreement", scale=2.0, seed=2)
    b = ds.batch("agreement")
    fr = forward(m, b, return_probs=True)
    items = ds.agreement_items()
    items = items[items.comparable]
    pos = b.offsets[items.sentence.to_numpy()] + items.step.to_numpy()
    assert (pos == b.offsets[items.sentence.to_numpy() + 1] - 1).all()   # the last step predicts the verb
    p_verb = fr.probs[pos, items.verb_id.to_numpy()]
    p_infl = fr.probs[pos, items.inflected_id.to_numpy()]
    direct = pd.DataFrame({"distance": items.distance.to_numpy(), "n_attractors": items.n_attractors.to_numpy(),
                           "correct": p_verb > p_infl, "loss": -np.log(p_verb)})
    ev = evaluate(m, ds, "agreement", max_tokens=20)
    assert ev.n_items == len(items)
    np.testing.assert_allclose(ev.accuracy, direct.correct.mean(), rtol=RTOL)
    np.testing.assert_allclose(ev.items.margin, np.log(p_verb) - np.log(p_infl), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ev.items.loss, direct.loss, rtol=1e-9)
    check_breakdown(ev.by_distance, direct_breakdown(direct, "distance"), "distance")
    check_breakdown(ev.by_attractors, direct_breakdown(direct, "n_attractors"), "n_attractors")


def test_data_without_annotations_gives_empty_breakdowns():
    ds = load_dataset("recall:n=20,distance=4")
    m = model_for(ds, "recall")
    ev = evaluate(m, ds, "recall")
    assert ev.n_losses == ev.n_items == 20
    assert ev.by_distance.distance.tolist() == [4]
    assert len(ev.by_attractors) == 0 and list(ev.by_attractors.columns) == ["n_attractors", "n", "accuracy",
                                                                            "mean_loss"]


def test_real_agreement_data_uses_the_vocabulary_unk_fraction():
    dev = DATA / "wiki-dev.txt"
    if not dev.exists():
        pytest.skip(f"real data not available: {dev}")
    ds = load_dataset("linzen", path=dev, vocab=DATA / "vocab.wiki.txt")
    m = RNN.init(len(ds.vocab), 10, rng=0)
    ev = evaluate(m, ds, "lm")
    q = ds.vocab.unk_fraction
    assert 0.1 < q < 0.12
    fr = forward(m, ds.batch("lm"))
    np.testing.assert_allclose(ev.mean_loss, fr.losses.mean(), rtol=RTOL)
    np.testing.assert_allclose(ev.adjusted_perplexity, math.exp(adjusted_loss(fr.losses.mean(), q)), rtol=RTOL)
    ag = evaluate(m, ds, "agreement")
    items = ds.agreement_items()
    assert ag.n_items == int(items.comparable.sum()) < len(items) + 1


@pytest.mark.parametrize("cell", ["gru", "lstm", "linear"])
@pytest.mark.parametrize("task", ["lm", "number", "agreement"])
def test_cell_models_are_evaluated_from_their_own_forward_pass(agreement, cell, task):
    """A GRU, LSTM or linear CellModel: losses from cell_engine.forward, items scored by the
    probabilities softmax(W h + b) (the bias changes which word wins)."""
    from gradlab import cell_engine as ce
    from gradlab.cellmodel import CellModel
    ds = agreement
    m = CellModel.init(cell, len(ds.vocab), 5, ds.n_outputs(task), seed=3)
    m.params["b"][...] = np.random.default_rng(0).standard_normal(m.params["b"].shape)
    b = ds.batch(task)
    fr = ce.forward(m, b, return_probs=True)
    ev = evaluate(m, ds, task, max_tokens=50)
    np.testing.assert_allclose(ev.loss, fr.losses.sum(), rtol=RTOL)
    assert ev.n_losses == fr.losses.size
    items = ev.items
    pos = b.offsets[items["sentence"].to_numpy()] + items["step"].to_numpy()
    if task == "agreement":
        full = ds.agreement_items()
        full = full[full.comparable]
        p_verb = fr.probs[pos, full.verb_id.to_numpy()]
        p_infl = fr.probs[pos, full.inflected_id.to_numpy()]
        np.testing.assert_allclose(items.margin, np.log(p_verb) - np.log(p_infl), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(items.correct, p_verb > p_infl)
    else:
        np.testing.assert_array_equal(items.correct, fr.probs[pos].argmax(axis=1) == items["target"].to_numpy())


def test_evaluate_names_the_model_types_it_takes(agreement):
    with pytest.raises(TypeError, match="gradlab.RNN or a gradlab.CellModel"):
        evaluate("not a model", agreement, "lm")


def test_a_cell_model_of_the_wrong_output_size_is_told_how_to_build_one(agreement):
    from gradlab.cellmodel import CellModel
    from gradlab.train.evaluate import check_model_fits
    ds = agreement
    m = CellModel.init("lstm", len(ds.vocab), 3, ds.n_outputs("lm") + 1, seed=0)
    with pytest.raises(ValueError, match=r"CellModel.init\('lstm', vocab_size, hidden_size, output_size="
                                         f"{ds.n_outputs('lm')}\\)"):
        check_model_fits(m, ds, "lm")
