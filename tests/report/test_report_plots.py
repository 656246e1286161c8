"""Figures of the report: each plot function on small synthetic frames with the contract columns."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from gradlab.report import figures as plots

DATASETS = ("agreement:distance=8", "recall:keys=4")
STATES = ("init:scale=0.316228,seed=0,activation=sigmoid", "trained:tbptt:3")
K = 6          # largest lag / tau
T = 8          # sentence length of the heatmap
N_SENTENCES = 5
BETA = {DATASETS[0]: 0.55, DATASETS[1]: 0.8}


def _cells():
    for dataset in DATASETS:
        for state in STATES:
            yield dataset, state


def make_profile(rng) -> pd.DataFrame:
    rows = []
    for dataset, state in _cells():
        for lag in range(K + 1):
            mean = BETA[dataset] ** lag * (1 + 0.05 * rng.random())
            rows.append(dict(dataset=dataset, state=state, lag=lag, n=T - lag, mean=mean, median=0.8 * mean,
                             q25=0.5 * mean, q75=1.2 * mean, rel_mean=mean / 1.0))
    return pd.DataFrame(rows)


def make_heatmap(rng) -> pd.DataFrame:
    rows = [dict(dataset=d, state=s, t=t, lag=k, mean=BETA[d] ** k * (1 + rng.random()))
            for d, s in _cells() for t in range(T) for k in range(t + 1)]
    return pd.DataFrame(rows)


def make_decay() -> pd.DataFrame:
    rows = []
    for dataset, state in _cells():
        beta = BETA[dataset] if state == STATES[0] else 1.02
        rows.append(dict(dataset=dataset, state=state, beta=beta,
                         half_life=np.log(2) / -np.log(beta) if beta < 1 else np.inf,
                         slope=np.log(beta), intercept=0.0, spectral_radius=2.1 * beta, sigma_max=3.0 * beta,
                         mean_fprime=0.2, growth_bound=0.75 * beta, floor=1e-3, reach=K))
    return pd.DataFrame(rows)


def make_gap(rng, *, blocks=True) -> pd.DataFrame:
    rows = []
    for dataset, state in _cells():
        beta = BETA[dataset]
        for parameter in ("U", "V", "all"):
            for tau in range(K + 1):
                err = beta ** (tau + 1) * (0.5 + 0.5 * rng.random())
                rows.append(dict(dataset=dataset, state=state, scheme=f"tbptt:{tau}", family="tbptt", tau=tau,
                                 parameter=parameter, rel_error=err, cosine=1 - err ** 2 / 2,
                                 estimate=beta ** (tau + 1)))
            if blocks:
                for label in ("block:5,5", "block:10,14"):
                    rows.append(dict(dataset=dataset, state=state, scheme=label, family="block", tau=np.nan,
                                     parameter=parameter, rel_error=0.3 * rng.random(), cosine=0.9,
                                     estimate=np.nan))
    return pd.DataFrame(rows)


def make_gap_sentences(rng) -> pd.DataFrame:
    rows = [dict(dataset=d, state=s, sentence=i, tau=tau, parameter=p,
                 rel_error=BETA[d] ** (tau + 1) * rng.random(), cosine=0.9)
            for d, s in _cells() for i in range(N_SENTENCES) for tau in range(K + 1) for p in ("U", "all")]
    return pd.DataFrame(rows)


def make_dependencies(rng) -> pd.DataFrame:
    rows = []
    for dataset, state in _cells():
        for i in range(N_SENTENCES):
            lag = int(rng.integers(1, K + 1))
            signal = BETA[dataset] ** lag
            rows.append(dict(dataset=dataset, state=state, sentence=i, source=0, dependent=lag,
                             lag=lag, signal=signal, signal_rel=signal / 1.5))
    return pd.DataFrame(rows)


def make_kept() -> pd.DataFrame:
    return pd.DataFrame([dict(dataset=d, state=s, tau=tau, kept_share=min(1.0, tau / K))
                         for d, s in _cells() for tau in range(K + 1)])


@pytest.fixture
def frames(rng):
    return dict(profile=make_profile(rng), heatmap=make_heatmap(rng), decay=make_decay(), gap=make_gap(rng),
                gap_sentences=make_gap_sentences(rng), dependencies=make_dependencies(rng), kept=make_kept())


@pytest.fixture
def close():
    """Collects figures and clears them after the test, so nothing leaks."""
    made = []
    yield made.append
    for fig in made:
        fig.clear()


# --------------------------------------------------------------------------- helpers

def legend_texts(fig: Figure, i: int = 0) -> list[str]:
    return [t.get_text() for t in fig.legends[i].get_texts()]


def tagged(ax, role: str) -> dict[str, object]:
    """Artists of ``ax`` labelled ``_role|dataset``, by dataset."""
    artists = list(ax.lines) + list(ax.collections) + list(ax.containers) + list(ax.texts)
    out = {}
    for artist in artists:
        label = artist.get_label() or ""
        if label.startswith(f"_{role}|"):
            out[label.split("|", 1)[1]] = artist
    return out


def visible_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


# --------------------------------------------------------------------------- figures

def test_profile(frames, close):
    fig = plots.plot_profile(frames["profile"], frames["decay"])
    close(fig)
    assert isinstance(fig, Figure)
    assert legend_texts(fig) == list(DATASETS)
    axes = visible_axes(fig)
    assert len(axes) == len(STATES)
    for ax, state in zip(axes, STATES):
        assert ax.get_yscale() == "log"
        assert state in ax.get_title()
        for role in ("median", "mean", "band", "fit"):
            assert set(tagged(ax, role)) == set(DATASETS), role
        median = tagged(ax, "median")[DATASETS[0]]
        np.testing.assert_array_equal(median.get_xdata(), np.arange(K + 1))
        assert tagged(ax, "mean")[DATASETS[0]].get_linestyle() == "--"


def test_profile_without_decay_and_min_n(frames, close):
    fig = plots.plot_profile(frames["profile"], min_n=T - 2)
    close(fig)
    ax = visible_axes(fig)[0]
    assert tagged(ax, "fit") == {}
    assert len(tagged(ax, "median")[DATASETS[0]].get_xdata()) == 3  # lags with n >= T - 2


def test_heatmap_log_colour_scale(frames, close):
    fig = plots.plot_heatmap(frames["heatmap"])
    close(fig)
    panels = [ax for ax in visible_axes(fig) if tagged(ax, "heatmap")]
    assert len(panels) == len(DATASETS) * len(STATES)
    mesh = next(iter(tagged(panels[0], "heatmap").values()))
    assert isinstance(mesh.norm, LogNorm)
    assert mesh.get_array().shape == (T, T)  # lags 0..T-1 by t 0..T-1
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_heatmap_caps_facets(frames, close):
    fig = plots.plot_heatmap(frames["heatmap"], max_facets=2)
    close(fig)
    panels = [ax for ax in visible_axes(fig) if tagged(ax, "heatmap")]
    assert len(panels) == 2
    assert "showing 2 of 4" in fig.get_suptitle()


def test_gap_has_estimate_and_references(frames, close):
    fig = plots.plot_gap(frames["gap"])
    close(fig)
    assert legend_texts(fig) == list(DATASETS)
    axes = visible_axes(fig)
    assert len(axes) == len(STATES) * 3
    assert [ax.get_title().split()[1] for ax in axes[:3]] == ["U", "V", "all"]
    for ax in axes:
        assert ax.get_yscale() == "log"
        assert set(tagged(ax, "rel_error")) == set(DATASETS)
        bounds = tagged(ax, "estimate")
        assert set(bounds) == set(DATASETS)
        assert all(line.get_linestyle() == "--" for line in bounds.values())
        assert {float(line.get_ydata()[0]) for line in tagged(ax, "ref").values()} == {0.1, 0.01}
        # only the tbptt rows are drawn, tau 0..K
        np.testing.assert_array_equal(tagged(ax, "rel_error")[DATASETS[1]].get_xdata(), np.arange(K + 1))
    bound = tagged(axes[2], "estimate")[DATASETS[0]]
    np.testing.assert_allclose(bound.get_ydata(), BETA[DATASETS[0]] ** (np.arange(K + 1) + 1))


def test_gap_parameter_selection(frames, close):
    fig = plots.plot_gap(frames["gap"], parameters=["all"], states=[STATES[1]], show_estimate=False)
    close(fig)
    axes = visible_axes(fig)
    assert len(axes) == 1 and "all" in axes[0].get_title() and STATES[1] in axes[0].get_title()
    assert tagged(axes[0], "estimate") == {}


def test_cosine(frames, close):
    fig = plots.plot_cosine(frames["gap"])
    close(fig)
    assert legend_texts(fig) == list(DATASETS)
    for ax in visible_axes(fig):
        assert ax.get_yscale() == "linear"
        assert set(tagged(ax, "cosine")) == set(DATASETS)


def test_gap_sentences(frames, close):
    fig = plots.plot_gap_sentences(frames["gap_sentences"])
    close(fig)
    assert legend_texts(fig) == list(DATASETS)
    axes = visible_axes(fig)
    assert len(axes) == len(STATES)
    for ax in axes:
        assert ax.get_yscale() == "log"
        assert "all" in ax.get_title()
        for role in ("median", "band", "band90"):
            assert set(tagged(ax, role)) == set(DATASETS)
    # the median line is the median over sentences
    data = frames["gap_sentences"]
    sel = data[(data.dataset == DATASETS[0]) & (data.state == STATES[0]) & (data.parameter == "all")]
    np.testing.assert_allclose(tagged(axes[0], "median")[DATASETS[0]].get_ydata(),
                               sel.groupby("tau")["rel_error"].median().to_numpy())


def test_blocks(frames, close):
    fig = plots.plot_blocks(frames["gap"])
    close(fig)
    assert legend_texts(fig) == list(DATASETS)
    axes = visible_axes(fig)
    assert len(axes) == len(STATES) * 3
    for ax in axes:
        assert ax.get_yscale() == "log"
        bars = tagged(ax, "bars")
        assert set(bars) == set(DATASETS)
        assert all(len(c) == 2 for c in bars.values())  # two block schemes
        assert [t.get_text() for t in ax.get_xticklabels()] == ["block:5,5", "block:10,14"]


def test_dependencies(frames, close):
    fig = plots.plot_dependencies(frames["dependencies"], frames["kept"])
    close(fig)
    assert legend_texts(fig) == list(DATASETS)
    axes = visible_axes(fig)
    assert len(axes) == 2 * len(STATES)
    left, right = axes[0], axes[1]
    assert left.get_yscale() == "log"
    assert set(tagged(left, "mean")) == set(DATASETS)
    n_points = sum(len(c.get_offsets()) for c in left.collections)
    assert n_points == N_SENTENCES * len(DATASETS)
    assert set(tagged(right, "kept")) == set(DATASETS)


def test_dependencies_without_kept(frames, close):
    fig = plots.plot_dependencies(frames["dependencies"], None)
    close(fig)
    assert any("no kept-share rows" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_decay(frames, close):
    fig = plots.plot_decay(frames["decay"])
    close(fig)
    assert legend_texts(fig) == list(DATASETS)
    axes = visible_axes(fig)
    assert len(axes) == 7
    beta_ax = axes[0]
    bars = tagged(beta_ax, "beta")
    assert set(bars) == set(DATASETS)
    assert [round(p.get_height(), 6) for p in bars[DATASETS[0]]] == [BETA[DATASETS[0]], 1.02]
    # the trained state has beta > 1: infinite half-life, written as ∞, one per dataset
    assert set(tagged(axes[1], "inf:half_life")) == set(DATASETS)
    assert [p.get_height() for p in tagged(axes[1], "half_life")[DATASETS[0]]] == pytest.approx(
        [np.log(2) / -np.log(BETA[DATASETS[0]])])


@pytest.mark.parametrize("func, key", [
    (plots.plot_profile, "profile"), (plots.plot_heatmap, "heatmap"), (plots.plot_gap, "gap"),
    (plots.plot_cosine, "gap"), (plots.plot_gap_sentences, "gap_sentences"), (plots.plot_blocks, "gap"),
    (plots.plot_dependencies, "dependencies"), (plots.plot_decay, "decay"),
])
def test_empty_frame_gives_none(frames, func, key):
    assert func(frames[key].iloc[:0]) is None


def test_blocks_none_without_block_rows(rng):
    assert plots.plot_blocks(make_gap(rng, blocks=False)) is None


def test_missing_column_is_named(frames):
    with pytest.raises(ValueError, match=r"profile frame is missing column\(s\) \['q75'\]"):
        plots.plot_profile(frames["profile"].drop(columns="q75"))


def test_not_a_frame():
    with pytest.raises(TypeError, match="gap must be a pandas DataFrame"):
        plots.plot_gap([1, 2, 3])


def test_unknown_dataset_lists_allowed(frames):
    with pytest.raises(ValueError, match=r"datasets names \['nope'\].*allowed values"):
        plots.plot_gap(frames["gap"], datasets=["nope"])


def test_unknown_parameter(frames):
    with pytest.raises(ValueError, match=r"parameter must be one of \['U', 'all'\].*received 'V'"):
        plots.plot_gap_sentences(frames["gap_sentences"], parameter="V")


def test_dataset_order_and_colours_consistent(frames, close):
    order = list(reversed(DATASETS))
    a = plots.plot_gap(frames["gap"], datasets=order)
    b = plots.plot_profile(frames["profile"], datasets=order)
    close(a)
    close(b)
    assert legend_texts(a) == legend_texts(b) == order
    colour_a = tagged(visible_axes(a)[0], "rel_error")[order[0]].get_color()
    colour_b = tagged(visible_axes(b)[0], "median")[order[0]].get_color()
    assert colour_a == colour_b


def test_shared_palette_keeps_colours_for_a_subset(frames, close):
    palette = plots.dataset_palette(["other:dataset", *reversed(DATASETS)])
    subset = frames["dependencies"][frames["dependencies"].dataset == DATASETS[0]]
    fig = plots.plot_dependencies(subset, frames["kept"], palette=palette)
    close(fig)
    assert legend_texts(fig) == [DATASETS[1], DATASETS[0]]  # palette order, kept frame has both
    line = tagged(visible_axes(fig)[0], "mean")[DATASETS[0]]
    assert line.get_color() == palette[DATASETS[0]]


def test_palette_must_cover_the_datasets(frames):
    with pytest.raises(ValueError, match=r"palette has no colour for dataset\(s\) \['recall:keys=4'\]"):
        plots.plot_decay(frames["decay"], palette=plots.dataset_palette([DATASETS[0]]))


def test_dependency_figure_bytes_do_not_change_between_draws(frames, tmp_path):
    """The strip plot's jitter is seeded: the same rows give the same PNG and SVG bytes."""
    from gradlab.report.html import write_figure
    outputs = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        np.random.seed(None)  # whatever the global generator holds
        np.random.random(17)
        write_figure(plots.plot_dependencies(frames["dependencies"], frames["kept"]), folder, "dependencies")
        outputs.append({fmt: (folder / f"dependencies.{fmt}").read_bytes() for fmt in ("png", "svg")})
    assert outputs[0] == outputs[1]
