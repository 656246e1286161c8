"""Training snapshots on annotated data: the dependency signal by lag and the share TBPTT(tau) keeps, against
naive.py's per-pair delta norms and the report's own analyse(deps=...)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import naive
from gradlab.analysis import analyse
from gradlab.model import RNN
from gradlab.report.figures import snapshot_dependencies
from gradlab.report.frames import STUDY, columns
from gradlab.study import training as study
from gradlab.study.training import run_study, train_spec_from_dict

#: The shares are sums of the same norms in another order.
RTOL = 1e-9
MAX_LAG = 5
SPEC = {"name": "deps", "train": "recall:distance=5,min_distance=2,n=20", "task": "recall", "hidden_sizes": [4],
        "schemes": ["tbptt:1", "full"], "learning_rates": [0.3], "seeds": [0], "epochs": 2, "batch_size": 5,
        "eval_tasks": ["recall"], "snapshots": True, "max_lag": MAX_LAG, "snapshot_sentences": 8,
        "dev": "recall:distance=5,min_distance=2,n=10,seed=1"}


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    spec = train_spec_from_dict(SPEC)
    root = run_study(spec, tmp_path_factory.mktemp("deps"), progress=False)
    return spec, root


def _naive_signal(model: RNN, snap, task: str) -> pd.DataFrame:
    """Each annotated dependency's ||delta(dependent, source)|| from naive.py's per-pair norms."""
    batch = snap.batch(task)
    xs = [batch.ids[a:b] for a, b in zip(batch.offsets[:-1], batch.offsets[1:])]
    ds = [batch.targets[a:b] for a, b in zip(batch.offsets[:-1], batch.offsets[1:])]
    deps = snap.dependencies(task)
    nc = naive.contributions(model.U, model.V, model.W, model.activation, xs, ds, int(deps["lag"].max()))
    norms = {(s, t, k): v for s, t, k, v in zip(nc.sentence, nc.t, nc.lag, nc.delta_norm)}
    return deps.assign(signal=[norms[(s, d, k)] for s, d, k in zip(deps["sentence"], deps["dependent"], deps["lag"])])


def test_snapshots_hold_the_dependency_signal_and_the_share_each_tau_keeps(studied):
    spec, root = studied
    kept = pd.read_csv(root / "snapshots_dependency_kept.csv")
    signal = pd.read_csv(root / "snapshots_dependency_signal.csv")
    assert set(columns("snapshots_dependency_kept", STUDY)) <= set(kept.columns)
    assert set(columns("snapshots_dependency_signal", STUDY)) <= set(signal.columns)
    assert set(kept["snapshot"]) == {"init", "mid", "end"} == set(signal["snapshot"])
    assert len(kept) == 2 * 3 * (MAX_LAG + 1)
    assert set(kept.groupby(["run", "snapshot"])["tau"].apply(tuple)) == {tuple(range(MAX_LAG + 1))}
    # recall: lag = distance - 1 in 1..4, so tau = 0 keeps nothing and tau >= 4 keeps everything
    assert (kept.loc[kept["tau"] == 0, "kept_share"] == 0).all()
    np.testing.assert_allclose(kept.loc[kept["tau"] >= 4, "kept_share"], 1.0, rtol=RTOL)
    assert (kept.groupby(["run", "snapshot"])["kept_share"].apply(lambda s: s.is_monotonic_increasing)).all()

    train, dev = study.load_data(spec)
    snap = dev.select(np.arange(min(spec.snapshot_sentences, dev.n_sentences)))
    for run in study.runs(spec):
        folder = root / "runs" / run["slug"]
        models = {"init": study.initial_model(spec, run, train), "mid": RNN.load(folder / "mid.npz"),
                  "end": RNN.load(folder / "model.npz")}
        for at, model in models.items():
            ref = _naive_signal(model, snap, spec.task)
            total = ref["signal"].sum()
            want = [ref.loc[ref["lag"] <= tau, "signal"].sum() / total for tau in range(MAX_LAG + 1)]
            got = kept[(kept["run"] == run["run"]) & (kept["snapshot"] == at)].sort_values("tau")
            np.testing.assert_allclose(got["kept_share"], want, rtol=RTOL, err_msg=f"{run['run']} @ {at}")
            # the report's analyse on the same model and sentences gives the same shares
            same = analyse(model, snap.batch(spec.task), max_lag=MAX_LAG, deps=snap.dependencies(spec.task),
                           per_sentence=False)["dependency_kept"]
            np.testing.assert_allclose(got["kept_share"], same["kept_share"], rtol=RTOL)
            by_lag = ref.groupby("lag")["signal"].agg(["size", "mean"])
            sig = signal[(signal["run"] == run["run"]) & (signal["snapshot"] == at)].sort_values("lag")
            assert list(sig["lag"]) == list(by_lag.index) and list(sig["n"]) == list(by_lag["size"])
            np.testing.assert_allclose(sig["signal"], by_lag["mean"], rtol=RTOL)
            assert (sig["epochs_trained"] == {"init": 0, "mid": 1, "end": 2}[at]).all()
    assert (root / "snapshot_dependencies.png").is_file()
    assert "snapshots_dependency_kept.csv" in (root / "index.html").read_text()


def test_figure_draws_the_frames_and_nothing_without_them(studied):
    _, root = studied
    frames = {n: pd.read_csv(root / f"{n}.csv") for n in snapshot_dependencies.FRAMES}
    fig = snapshot_dependencies.draw(frames)
    assert fig is not None and len([ax for ax in fig.axes if ax.get_visible()]) == 6
    suite = {n: f.assign(part="recall", distribution="longest") for n, f in frames.items()}
    suite = {n: pd.concat([f, f.assign(distribution="uniform")]) for n, f in suite.items()}
    assert len(snapshot_dependencies.draw(suite).axes) == 2 * 4       # a row per part x distribution
    empty = {n: f.iloc[:0] for n, f in frames.items()}
    assert snapshot_dependencies.draw(empty) is None
    assert snapshot_dependencies.draw({}) is None


def test_data_without_dependencies_writes_no_dependency_tables(tmp_path):
    spec = train_spec_from_dict({**SPEC, "train": "markov:n=20,order=1,length=6", "task": "lm", "eval_tasks": ["lm"],
                                 "dev": "markov:n=8,order=1,length=6,seed=1", "schemes": ["full"], "epochs": 1})
    root = run_study(spec, tmp_path, progress=False, render=False)
    assert (root / "snapshots_gap.csv").is_file()
    assert not (root / "snapshots_dependency_kept.csv").exists()


@pytest.mark.parametrize("distribution", ["fixed", "curriculum"])
def test_runs_finished_without_the_tables_get_them_from_their_models(tmp_path, distribution):
    """A run finished by a gradlab before these tables (and, for a curriculum, before mid.npz: its mid model is a
    stage's): a rerun reuses it and writes the tables a fresh run writes."""
    extra = {"distribution": "curriculum", "min_distance": 2, "curriculum_stages": 2, "epochs": 4,
             "train": "recall:distance=5,n=20"} \
        if distribution == "curriculum" else {}
    spec = train_spec_from_dict({**SPEC, "schemes": ["tbptt:1"], **extra})
    root = run_study(spec, tmp_path, progress=False, render=False)
    names = ("snapshots_dependency_signal.csv", "snapshots_dependency_kept.csv")
    fresh = {p.relative_to(root): p.read_bytes() for n in names for p in root.rglob(n)}
    assert len(fresh) == 2 * 2
    for path in fresh:
        (root / path).unlink()
    if distribution == "curriculum":
        (mid,) = root.glob("runs/*/mid.npz")
        mid.unlink()
    run_study(spec, tmp_path, progress=False, render=False)
    assert list(pd.read_csv(root / "timings.csv")["status"]) == ["reused"]
    assert {p.relative_to(root): p.read_bytes() for n in names for p in root.rglob(n)} == fresh
    # a run whose initial model this gradlab would not draw again (its stored init stats differ): no rows
    for path in fresh:
        (root / path).unlink()
    (decay,) = root.glob("runs/*/snapshots_decay.csv")
    d = pd.read_csv(decay)
    d.loc[d["snapshot"] == "init", "mean_fprime"] *= 1.01
    d.to_csv(decay, index=False)
    run_study(spec, tmp_path, progress=False, render=False)
    assert not list(root.glob("runs/*/snapshots_dependency_*.csv"))
