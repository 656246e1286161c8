"""Corpus-size statistics: partitions merged exactly equal the in-memory analysis.

The in-memory path (``analyse``) is itself checked against the loop references of
tests/naive.py; here every aggregated frame is compared with it, for partition sizes
from one sentence to the whole corpus, and the histogram quantiles with exact ones.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import gradlab as gl
from gradlab.analysis import analyse, smallest_tau
from gradlab.analysis.streaming import (BINS_PER_DECADE, frames_from_stats, merge, partition_stats, partitions,
                                        quantile_resolution)
from gradlab.data import load_dataset

#: Sums merged in another order than the in-memory groupby: equal to rounding.
RTOL = 1e-10
#: Relative errors near zero (large tau) are differences of nearly equal sums.
GAP_ATOL = 1e-9


def _streamed(model, ds, task, K, size, blocks=(), deps=True, with_V=True):
    acc = None
    for lo, hi in partitions(ds.n_sentences, size):
        part = ds.select(np.arange(lo, hi))
        st_ = partition_stats(model, part.batch(task), max_lag=K, block_schemes=blocks,
                              deps=part.dependencies(task) if deps else None, with_V=with_V)
        acc = st_ if acc is None else merge(acc, st_)
    return acc


@pytest.fixture(scope="module")
def corpus():
    ds = load_dataset("agreement:distance=5,n=45")
    model = gl.RNN.init(len(ds.vocab), 6, rng=3, scale=0.8)
    return ds, model


def _check_same(mem: dict, agg: dict, K: int):
    p, q = mem["profile"], agg["profile"]
    assert p["lag"].tolist() == q["lag"].tolist()
    assert p["n"].tolist() == q["n"].tolist()
    np.testing.assert_allclose(q["mean"], p["mean"], rtol=RTOL)
    np.testing.assert_allclose(q["rel_mean"], p["rel_mean"], rtol=RTOL)
    h1 = mem["heatmap"].sort_values(["t", "lag"]).reset_index(drop=True)
    h2 = agg["heatmap"].sort_values(["t", "lag"]).reset_index(drop=True)
    assert h1[["t", "lag"]].equals(h2[["t", "lag"]])
    np.testing.assert_allclose(h2["mean"], h1["mean"], rtol=RTOL)
    for col in ("beta", "spectral_radius", "sigma_max", "mean_fprime", "reach"):
        np.testing.assert_allclose(agg["decay"][col], mem["decay"][col], rtol=1e-8)
    g1, g2 = mem["gap"], agg["gap"]
    assert g1[["scheme", "parameter"]].equals(g2[["scheme", "parameter"]])
    np.testing.assert_allclose(g2["rel_error"], g1["rel_error"], rtol=1e-7, atol=GAP_ATOL)
    np.testing.assert_allclose(g2["cosine"], g1["cosine"], rtol=1e-10)
    for col in ("tau_10", "tau_1", "n_sentences", "n_losses", "mean_loss"):
        np.testing.assert_allclose(agg["summary"][col], mem["summary"][col], rtol=1e-10)
    if "dependency_kept" in mem:
        np.testing.assert_allclose(agg["dependency_kept"]["kept_share"], mem["dependency_kept"]["kept_share"],
                                   rtol=1e-10)
    else:
        assert "dependency_kept" not in agg


@settings(max_examples=12, deadline=None)
@given(size=st.integers(1, 50), K=st.integers(0, 7))
def test_partitions_merge_to_the_in_memory_frames(corpus, size, K):
    ds, model = corpus
    mem = analyse(model, ds.batch("lm"), max_lag=K, deps=ds.dependencies("lm"), block_schemes=["chunked:3"],
                  per_sentence=False)
    agg = frames_from_stats(_streamed(model, ds, "lm", K, size, blocks=["chunked:3"]), model)
    _check_same(mem, agg, K)


def test_merge_order_is_fixed_so_bytes_do_not_depend_on_partitioning_of_work(corpus):
    ds, model = corpus
    a = frames_from_stats(_streamed(model, ds, "lm", 4, 7), model)
    b = frames_from_stats(_streamed(model, ds, "lm", 4, 7), model)
    for name in a:
        assert a[name].to_csv() == b[name].to_csv()


def test_quantiles_within_half_a_bin_of_the_exact_ones(corpus):
    ds, model = corpus
    K = 6
    contrib = gl.contributions(model, ds.batch("lm"), K)
    agg = frames_from_stats(_streamed(model, ds, "lm", K, 4, deps=False), model)["profile"]
    exact = pd.DataFrame({"lag": contrib.lag, "v": contrib.delta_norm}).groupby("lag")["v"]
    ratio = quantile_resolution()
    assert ratio == pytest.approx(10 ** (0.5 / BINS_PER_DECADE))
    for q, col in ((0.25, "q25"), (0.5, "median"), (0.75, "q75")):
        want = exact.quantile(q).to_numpy()
        got = agg[col].to_numpy()
        # pandas interpolates between two order statistics, the histogram between their bins' centres with the
        # same weights: each centre is within half a bin of its value, so the interpolation is too
        assert np.all(got <= want * ratio) and np.all(got >= want / ratio), (col, got / want)


def test_number_task_and_no_V(corpus):
    ds, model0 = corpus
    model = gl.RNN.init(len(ds.vocab), 5, output_size=ds.n_outputs("number"), rng=1)
    mem = analyse(model, ds.batch("number"), max_lag=3, per_sentence=False)
    agg = frames_from_stats(_streamed(model, ds, "number", 3, 10, deps=False, with_V=False), model)
    assert set(agg["gap"]["parameter"]) == {"U"}
    want = mem["gap"][mem["gap"]["parameter"] == "U"].reset_index(drop=True)
    np.testing.assert_allclose(agg["gap"]["rel_error"], want["rel_error"], rtol=1e-7, atol=GAP_ATOL)
    np.testing.assert_allclose(agg["profile"]["mean"], mem["profile"]["mean"], rtol=RTOL)


def test_exact_zero_and_extreme_norms_are_counted_apart():
    from gradlab.analysis.streaming import _bin_index, _N_BINS
    cols = _bin_index(np.array([0.0, 1e-300, 1.0, 1e300, np.inf, np.nan]))
    assert cols[0] == 0 and cols[1] == 1 and 2 <= cols[2] <= _N_BINS + 1
    assert cols[3] == cols[4] == cols[5] == _N_BINS + 2


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_partition_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="partition_size"):
        partitions(10, bad)


def test_merge_rejects_mismatched_statistics(corpus):
    ds, model = corpus
    b = ds.select(np.arange(3)).batch("lm")
    with pytest.raises(ValueError, match="max_lag"):
        merge(partition_stats(model, b, max_lag=2), partition_stats(model, b, max_lag=3))
    with pytest.raises(ValueError, match="block schemes"):
        merge(partition_stats(model, b, max_lag=2), partition_stats(model, b, max_lag=2, block_schemes=["chunked:2"]))


# ---------------------------------------------------------------------- the report spec's partition_size
def test_spec_keys_for_corpus_size_reports():
    from gradlab.study.spec import spec_from_dict
    spec = spec_from_dict({"datasets": ["markov:n=5"], "n_sentences": "all", "partition_size": 2,
                           "per_sentence": False})
    assert spec.n_sentences is None and spec.partition_size == 2
    with pytest.raises(ValueError, match="per_sentence: .*set per_sentence = false with partition_size"):
        spec_from_dict({"datasets": ["markov:n=5"], "partition_size": 2})
    with pytest.raises(ValueError, match="partition_size: must be an integer >= 1"):
        spec_from_dict({"datasets": ["markov:n=5"], "partition_size": 0, "per_sentence": False})
    with pytest.raises(ValueError, match="n_sentences"):
        spec_from_dict({"datasets": ["markov:n=5"], "n_sentences": "most"})


def test_partitioned_report_equals_the_in_memory_report(tmp_path):
    """The whole pipeline: a partitioned unit's tables equal the in-memory unit's, to rounding
    (quantiles to their bin), and the plan estimates one partition's memory, not the corpus's."""
    from dataclasses import replace
    from gradlab.study.report import load_frames, plan, run_spec
    from gradlab.study.spec import Spec
    spec = Spec(name="mem", datasets=["agreement:distance=4,n=60"], states=["init"], hidden_size=5, max_lag=6,
                block_schemes=["chunked:3"], per_sentence=False)
    part = replace(spec, name="part", partition_size=7)
    a = load_frames(run_spec(spec, tmp_path, progress=False, render=False))
    b = load_frames(run_spec(part, tmp_path, progress=False, render=False))
    assert "dependencies" in a and "dependencies" not in b      # no per-dependency table from partitions
    for name in ("profile", "heatmap", "decay", "gap", "summary", "dependency_kept"):
        assert list(a[name].columns) == list(b[name].columns), name
    np.testing.assert_allclose(b["profile"]["mean"], a["profile"]["mean"], rtol=RTOL)
    np.testing.assert_allclose(b["gap"]["rel_error"], a["gap"]["rel_error"], rtol=1e-7, atol=GAP_ATOL)
    np.testing.assert_allclose(b["dependency_kept"]["kept_share"], a["dependency_kept"]["kept_share"], rtol=1e-10)
    assert plan(part, tmp_path).units[0].estimate.memory < plan(spec, tmp_path).units[0].estimate.memory


def test_a_rerun_without_a_table_keeps_none_of_the_old_runs_rows(tmp_path):
    """Switching per_sentence off, then to partitions, recomputes every unit: the tables those runs do not
    make (per-sentence gaps, per-dependency signal) are gone, not copied from the earlier run."""
    import json
    from dataclasses import replace
    from gradlab.study.report import load_frames, run_spec
    from gradlab.study.spec import Spec
    spec = Spec(name="r", datasets=["agreement:distance=4,n=20"], states=["init"], hidden_size=4, max_lag=3,
                block_schemes=[])
    root = run_spec(spec, tmp_path, progress=False, render=False)
    assert {"gap_sentences", "dependencies"} <= set(load_frames(root))
    run_spec(replace(spec, per_sentence=False), tmp_path, progress=False, render=False)
    assert "gap_sentences" not in load_frames(root) and "dependencies" in load_frames(root)
    run_spec(replace(spec, per_sentence=False, partition_size=6), tmp_path, progress=False, render=False)
    frames = load_frames(root)
    assert "gap_sentences" not in frames and "dependencies" not in frames and "dependency_kept" in frames
    tables = json.loads((root / "manifest.json").read_text())["tables"]
    assert "dependencies" not in tables and "gap_sentences" not in tables


# ---------------------------------------------------------------------- other cells
@pytest.mark.parametrize("cell,extra", [("gru", {}), ("lstm", {}), ("linear", {}), ("lstm", {"num_layers": 2}),
                                        ("gru", {"embedding_size": 3})])
@pytest.mark.parametrize("size", [1, 7, 45])
def test_cell_partitions_merge_to_the_in_memory_frames(corpus, cell, extra, size):
    ds, _ = corpus
    model = gl.CellModel.init(cell, len(ds.vocab), 5, seed=2, **extra)
    K = 4
    mem = analyse(model, ds.batch("lm"), max_lag=K, block_schemes=["chunked:3"], per_sentence=False)
    agg = frames_from_stats(_streamed(model, ds, "lm", K, size, blocks=["chunked:3"], deps=False), model)
    _check_same(mem, agg, K)     # the Elman statistics are NaN on both sides (assert_allclose: NaN == NaN)
    assert agg["decay"][["spectral_radius", "mean_fprime"]].isna().all(axis=None)
    # the gap has one curve per recurrent and input parameter of the cell, and "all"
    assert set(agg["gap"]["parameter"]) == {*model.cell.truncated, "all"}


def test_cell_without_input_sums_keeps_the_recurrent_curves(corpus):
    ds, _ = corpus
    model = gl.CellModel.init("gru", len(ds.vocab), 5, seed=1)
    mem = analyse(model, ds.batch("lm"), max_lag=3, per_sentence=False)
    agg = frames_from_stats(_streamed(model, ds, "lm", 3, 10, deps=False, with_V=False), model)
    kept = set(model.cell.with_role("recurrent"))
    assert set(agg["gap"]["parameter"]) == kept
    want = mem["gap"][mem["gap"]["parameter"].isin(kept)].reset_index(drop=True)
    np.testing.assert_allclose(agg["gap"]["rel_error"], want["rel_error"], rtol=1e-7, atol=GAP_ATOL)
    # tau_10 then reads the first recurrent parameter's curve
    assert agg["summary"]["tau_10"].iloc[0] == smallest_tau(want, 0.10, "weight_hh_l0")


def test_cell_partition_refuses_the_dependency_signal(corpus):
    ds, _ = corpus
    model = gl.CellModel.init("lstm", len(ds.vocab), 3, seed=0)
    with pytest.raises(ValueError, match="Elman RNN only.*'lstm'"):
        partition_stats(model, ds.batch("lm"), max_lag=2, deps=ds.dependencies("lm"))


def test_merge_rejects_statistics_of_different_cells(corpus):
    ds, elman = corpus
    gru = gl.CellModel.init("gru", len(ds.vocab), 6, seed=0)
    a = partition_stats(elman, ds.select(np.arange(5)).batch("lm"), max_lag=2)
    b = partition_stats(gru, ds.select(np.arange(5, 9)).batch("lm"), max_lag=2)
    with pytest.raises(ValueError, match="different"):
        merge(a, b)


def test_partitioned_report_of_several_cells_equals_the_in_memory_report(tmp_path):
    """A spec comparing cells: the partitioned tables equal the in-memory ones for every cell (the Elman unit
    keeps its dependency signal, the others have none)."""
    from dataclasses import replace
    from gradlab.study.report import load_frames, run_spec
    from gradlab.study.spec import Spec
    spec = Spec(name="mem", datasets=["agreement:distance=4,n=30"], states=["init"], hidden_size=4, max_lag=5,
                block_schemes=["chunked:3"], per_sentence=False, cell=["elman", "gru", "lstm"])
    a = load_frames(run_spec(spec, tmp_path, progress=False, render=False))
    b = load_frames(run_spec(replace(spec, name="part", partition_size=8), tmp_path, progress=False, render=False))
    for name in ("profile", "gap", "summary"):
        assert list(a[name].columns) == list(b[name].columns), name
        assert a[name]["cell"].tolist() == b[name]["cell"].tolist(), name
    assert set(b["gap"]["cell"]) == {"elman", "gru", "lstm"}
    np.testing.assert_allclose(b["profile"]["mean"], a["profile"]["mean"], rtol=RTOL)
    np.testing.assert_allclose(b["gap"]["rel_error"], a["gap"]["rel_error"], rtol=1e-7, atol=GAP_ATOL)
    assert set(b["dependency_kept"]["cell"]) == {"elman"}
