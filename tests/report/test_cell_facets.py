"""The cell as a facet of every report figure: frames with a ``cell`` column give one panel (or bar slot) per cell
and state, gap panels with each cell's own parameters; frames without it draw as before."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradlab.report import figures as plots
from gradlab.report import style as st

DATASET = "agreement:distance=8"
STATE = "init:scale=0.316228,seed=0,activation=sigmoid"
CELLS = {"elman": ("U", "V"), "gru": ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
         "lstm": ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
BETA = {"elman": 0.3, "gru": 0.6, "lstm": 0.5}
K = 4


def _profile(cells=CELLS) -> pd.DataFrame:
    rows = [dict(dataset=DATASET, cell=c, state=STATE, lag=k, n=10 - k, mean=BETA[c] ** k, median=BETA[c] ** k,
                 q25=0.5 * BETA[c] ** k, q75=1.5 * BETA[c] ** k, rel_mean=BETA[c] ** k)
            for c in cells for k in range(K + 1)]
    return pd.DataFrame(rows)


def _gap(cells=CELLS) -> pd.DataFrame:
    rows = []
    for c in cells:
        for p in CELLS[c] + ("all",):
            for tau in range(K + 1):
                err = BETA[c] ** (tau + 1)
                rows.append(dict(dataset=DATASET, cell=c, state=STATE, scheme=f"tbptt:{tau}", family="tbptt",
                                 tau=float(tau), parameter=p, rel_error=err, cosine=1 - err, estimate=err))
            rows.append(dict(dataset=DATASET, cell=c, state=STATE, scheme="block:2,2", family="block", tau=np.nan,
                             parameter=p, rel_error=0.2, cosine=0.9, estimate=np.nan))
    return pd.DataFrame(rows)


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]


def test_by_cell_joins_cell_and_state_and_leaves_elman_frames_alone():
    frame = _profile()
    faceted = st.by_cell(frame)
    # the gated cells take no activation: their titles leave the init state's out
    assert list(pd.unique(faceted["state"])) == [f"{c} cell\n{STATE if c == 'elman' else STATE.rpartition(',')[0]}"
                                                 for c in CELLS]
    assert faceted["cell"].tolist() == frame["cell"].tolist()
    elman = frame.drop(columns="cell")
    assert st.by_cell(elman) is elman and st.by_cell(None) is None
    assert st.cells_of(frame, None) == list(CELLS) and st.cells_of(elman) == []


def test_profile_has_one_panel_per_cell():
    fig = plots.plot_profile(_profile())
    titles = _titles(fig)
    assert len(titles) == 3 and [t.split("\n")[0] for t in titles] == [f"state: {c} cell" for c in CELLS]
    # each panel draws its own cell's median: the elman panel decays fastest
    medians = [next(line for line in ax.lines if line.get_label().startswith("_median")) for ax in fig.axes[:3]]
    np.testing.assert_allclose([m.get_ydata()[-1] for m in medians], [BETA[c] ** K * 1.0 for c in CELLS])
    fig.clear()


def test_profile_of_one_cell_without_the_column_is_as_before():
    fig = plots.plot_profile(_profile(["elman"]).drop(columns="cell"))
    assert _titles(fig) == [f"state: {STATE}"]
    fig.clear()


@pytest.mark.parametrize("plot", [plots.plot_gap, plots.plot_cosine])
def test_gap_rows_show_each_cell_s_own_parameters_with_all_last(plot):
    fig = plot(_gap())
    shown = [ax for ax in fig.axes if ax.get_visible()]
    by_row = {}
    for ax in shown:
        parameter, cell = ax.get_title().split("  ·  ")[0].removeprefix("parameter "), ax.get_title().split("\n")[1]
        by_row.setdefault(cell, []).append(parameter)
    assert by_row == {f"{c} cell": list(CELLS[c]) + ["all"] for c in CELLS}
    # the grid is as wide as the widest cell; the Elman row leaves its middle panels empty and "all" last
    assert len(fig.axes) == 3 * 5 and [ax.get_visible() for ax in fig.axes[:5]] == [True, True, False, False, True]
    fig.clear()


def test_gap_with_one_cell_keeps_one_parameter_list():
    fig = plots.plot_gap(_gap(["lstm"]))
    assert len(fig.axes) == 5 and all(ax.get_visible() for ax in fig.axes)
    fig.clear()


def test_blocks_and_every_other_figure_facet_by_cell():
    gap = _gap()
    fig = plots.plot_blocks(gap)
    assert sum(ax.get_visible() for ax in fig.axes) == 3 + 5 + 5
    fig.clear()
    heat = pd.DataFrame([dict(dataset=DATASET, cell=c, state=STATE, t=t, lag=k, mean=BETA[c] ** k)
                         for c in CELLS for t in range(K + 1) for k in range(t + 1)])
    fig = plots.plot_heatmap(heat)
    assert [t.split("\n")[1] for t in _titles(fig)] == [f"{c} cell" for c in CELLS]
    fig.clear()
    sentences = pd.DataFrame([dict(dataset=DATASET, cell=c, state=STATE, sentence=i, tau=tau, parameter="all",
                                   rel_error=BETA[c] ** (tau + 1), cosine=0.9)
                              for c in CELLS for i in range(3) for tau in range(K + 1)])
    fig = plots.plot_gap_sentences(sentences)
    assert len(_titles(fig)) == 3
    fig.clear()
    decay = pd.DataFrame([dict(dataset=DATASET, cell=c, state=STATE, beta=BETA[c], half_life=1.0, slope=np.log(BETA[c]),
                               intercept=0.0, spectral_radius=0.8 if c == "elman" else np.nan,
                               sigma_max=np.nan, mean_fprime=np.nan, growth_bound=np.nan, floor=1e-3, reach=K)
                          for c in CELLS])
    fig = plots.plot_decay(decay)
    beta_ax = fig.axes[0]
    assert [t.get_text().split("\n")[0] for t in beta_ax.get_xticklabels()] == [f"{c} cell" for c in CELLS]
    assert "Elman cell only" in fig._suptitle.get_text()
    fig.clear()


def test_snapshot_gap_of_a_study_of_cells_has_a_column_per_cell():
    from gradlab.report.figures.snapshot_gap import plot_snapshot_gap
    rows = []
    for c in CELLS:
        for at in ("init", "end"):
            for p in CELLS[c] + ("all",):
                for tau in range(K + 1):
                    rows.append(dict(run=f"{c}_h4_full_lr0.5_seed0", cell=c, hidden_size=4, scheme="full",
                                     learning_rate=0.5, seed=0, dataset=DATASET, state=f"full @ {at}", snapshot=at,
                                     epochs_trained=0, gap_scheme=f"tbptt:{tau}", family="tbptt", tau=float(tau),
                                     parameter=p, rel_error=BETA[c] ** (tau + 1), cosine=0.9, estimate=np.nan))
    fig = plot_snapshot_gap(pd.DataFrame(rows))
    titles = _titles(fig)
    assert len(fig.axes) == 2 * 3 and len(titles) == 6
    assert [t.split("  ·  ")[0] for t in titles[:3]] == [f"parameter all · {c} cell" for c in CELLS]
    assert all("full @ init" in t for t in titles[:3]) and all("full @ end" in t for t in titles[3:])
    fig.clear()


def test_panel_titles_show_an_init_activation_only_for_the_cells_that_take_one():
    state = "init:scale=0.316228,seed=0,activation=sigmoid"
    frame = pd.DataFrame({"cell": ["elman", "rnn", "gru", "lstm", "linear"], "state": [state] * 5})
    titles = st.by_cell(frame)["state"].tolist()
    assert titles[:2] == [f"elman cell\n{state}", f"rnn cell\n{state}"]
    assert titles[2:] == [f"{c} cell\ninit:scale=0.316228,seed=0" for c in ("gru", "lstm", "linear")]
    one = pd.DataFrame({"cell": ["gru", "gru"], "state": ["init:activation=tanh,seed=2", "init:activation=relu"]})
    assert st.by_cell(one)["state"].tolist() == ["gru cell\ninit:seed=2", "gru cell\ninit"]
