"""The vanishing profile, decay fit and truncation gap of GRU, LSTM and linear cells (``analyse`` with a
CellModel), against direct computations from ``cell_engine`` written here."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradlab import Batch, Block, Sliding
from gradlab import cell_engine as ce
from gradlab import sentence_gaps
from gradlab.analysis import analyse, lag_heatmap, truncation_gap, vanishing_profile
from gradlab.cellmodel import CellModel

CELLS = ("gru", "lstm", "linear", "gru-embedding", "lstm-2layers")


def _problem(cell, seed=0):
    rng = np.random.default_rng(seed)
    base, *rest = cell.split("-")
    model = CellModel.init(base, 7, 4, seed=seed, embedding_size=3 if rest == ["embedding"] else None,
                           num_layers=2 if rest == ["2layers"] else 1)
    xs = [rng.integers(0, 7, T) for T in (6, 1, 9, 4)]
    ds = [rng.integers(0, 7, T) for T in (6, 1, 9, 4)]
    return model, Batch.for_language_model(xs, ds)


def _rel_and_cos(a: dict, b: dict, names):
    err = sum(float(np.sum((a[n] - b[n]) ** 2)) for n in names)
    dot = sum(float(np.sum(a[n] * b[n])) for n in names)
    na = sum(float(np.sum(a[n] ** 2)) for n in names)
    nb = sum(float(np.sum(b[n] ** 2)) for n in names)
    with np.errstate(invalid="ignore", divide="ignore"):   # NaN where the full gradient is 0
        return np.sqrt(np.float64(err) / nb), np.float64(dot) / np.sqrt(na * nb)


@pytest.mark.parametrize("cell", CELLS)
def test_profile_and_heatmap_are_the_h_norms_by_lag(cell):
    model, batch = _problem(cell)
    c = ce.contributions(model, batch, 5)
    frame = pd.DataFrame({"t": c.t, "lag": c.lag, "norm": c.h_norm})
    profile = vanishing_profile(c)
    np.testing.assert_allclose(profile["mean"], frame.groupby("lag")["norm"].mean().to_numpy(), rtol=1e-14)
    np.testing.assert_array_equal(profile["n"], frame.groupby("lag").size().to_numpy())
    heat = lag_heatmap(c)
    np.testing.assert_allclose(heat["mean"], frame.groupby(["t", "lag"])["norm"].mean().to_numpy(), rtol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_gap_is_each_truncated_gradient_against_the_full_one(cell):
    """Every tbptt:tau row from the cell's per-lag sums equals the comparison of cell_engine.gradient under
    Sliding(tau) with Full(), per parameter and for all parameters (the output layer exact in both)."""
    model, batch = _problem(cell, seed=1)
    K = 4
    c = ce.contributions(model, batch, K)
    gap = truncation_gap(model, batch, c, [Block(2, 3)], beta=0.5)
    full = ce.gradient(model, batch, "full").as_dict()
    truncated = tuple(c.lag_sums())
    assert set(gap["parameter"]) == set(truncated) | {"all"}
    for label, scheme in [(f"tbptt:{tau}", Sliding(tau)) for tau in range(K + 1)] + [("block:2,3", Block(2, 3))]:
        g = ce.gradient(model, batch, scheme).as_dict()
        rows = gap[gap["scheme"] == label].set_index("parameter")
        for name in truncated:
            rel, cos = _rel_and_cos(g, full, [name])
            assert rows.loc[name, "rel_error"] == pytest.approx(rel, rel=1e-9, abs=1e-13), (label, name)
            assert rows.loc[name, "cosine"] == pytest.approx(cos, rel=1e-9), (label, name)
        rel, cos = _rel_and_cos(g, full, model.cell.names)
        assert rows.loc["all", "rel_error"] == pytest.approx(rel, rel=1e-9, abs=1e-13)
        assert rows.loc["all", "cosine"] == pytest.approx(cos, rel=1e-9)
    tb = gap[gap["family"] == "tbptt"]
    np.testing.assert_allclose(tb["estimate"], 0.5 ** (tb["tau"] + 1))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_analyse_takes_a_cell_model(cell):
    model, batch = _problem(cell, seed=2)
    out = analyse(model, batch, max_lag=4, block_schemes=["chunked:3"], per_sentence=False)
    assert sorted(out) == ["decay", "gap", "heatmap", "profile", "summary"]
    c = ce.contributions(model, batch, 4)
    pd.testing.assert_frame_equal(out["profile"], vanishing_profile(c))
    assert out["summary"]["n_losses"].iloc[0] == batch.n_losses
    assert np.isnan(out["summary"]["spectral_radius"].iloc[0])       # an Elman statistic
    assert out["summary"]["beta"].iloc[0] == pytest.approx(out["decay"]["beta"].iloc[0])
    assert "block:3,3" in set(out["gap"]["scheme"])                    # chunked:3 is Block(3, 3)


def test_analyse_refuses_what_only_the_elman_rnn_measures():
    model, batch = _problem("gru")
    deps = pd.DataFrame({"sentence": [0], "source": [0], "dependent": [2], "lag": [2]})
    with pytest.raises(ValueError, match="Elman RNN only.*'gru'.*deps=None"):
        analyse(model, batch, max_lag=3, deps=deps)


@pytest.mark.parametrize("cell", CELLS)
def test_sentence_gaps_are_each_sentences_own_truncated_gradient(cell):
    """Sentence by sentence, against cell_engine.gradient of that sentence alone under Sliding(tau) and Full()."""
    model, batch = _problem(cell, seed=3)
    K = 3
    sg = sentence_gaps(model, batch, K)
    names = tuple(ce.contributions(model, batch, K).lag_sums())
    assert sg.parameters == names + ("all",) and sg.rel_error.shape == (batch.n_sentences, K + 1, len(names) + 1)
    for i in range(batch.n_sentences):
        one = batch.select([i])
        full = ce.gradient(model, one, "full").as_dict()
        for tau in range(K + 1):
            g = ce.gradient(model, one, Sliding(tau)).as_dict()
            for p, group in enumerate([[n] for n in names] + [list(model.cell.names)]):
                rel, cos = _rel_and_cos(g, full, group)
                assert sg.rel_error[i, tau, p] == pytest.approx(rel, rel=1e-9, abs=1e-13, nan_ok=True), (i, tau)
                assert sg.cosine[i, tau, p] == pytest.approx(cos, rel=1e-9, nan_ok=True), (i, tau, group)
    frame = sg.to_frame()
    assert set(frame["parameter"]) == set(names) | {"all"} and len(frame) == sg.rel_error.size


def test_analyse_of_a_cell_has_per_sentence_gaps():
    model, batch = _problem("lstm", seed=4)
    out = analyse(model, batch, max_lag=2)
    pd.testing.assert_frame_equal(out["gap_sentences"], sentence_gaps(model, batch, 2).to_frame())


def test_cell_sentence_gaps_name_a_bad_max_lag():
    model, batch = _problem("gru")
    with pytest.raises(ValueError, match="max_lag"):
        sentence_gaps(model, batch, -1)
