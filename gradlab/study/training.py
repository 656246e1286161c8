"""Training studies: a grid of training runs (hidden size x scheme x learning rate x seed) from a TOML spec.

``gradlab train SPEC [--out reports] [--quick]`` writes ``reports/<name>/``::

    spec.toml, manifest.json
    runs/<slug>/               one folder per run: checkpoint.npz (resume; removed once done), mid.npz, model.npz,
                               history.csv, evaluation.csv, by_distance.csv, by_attractors.csv,
                               snapshots_*.csv, timing.csv; done.json is written last
    history.csv                per run and epoch: train and dev loss (no timings)
    evaluation.csv             per run and eval task: loss, perplexities, accuracy
    by_distance.csv            per run, eval task and dependency distance: n, accuracy, mean loss
    by_attractors.csv          per run, eval task and number of attractors
    agreement_sets.csv         per run (task lm with agreement_sets), test set, sentence type and attractors
    snapshots_profile.csv      vanishing profile at init / mid / end (snapshots = true)
    snapshots_gap.csv          TBPTT gap at init / mid / end
    snapshots_decay.csv        fitted decay at init / mid / end
    snapshots_dependency_signal.csv   on annotated data: dependency signal by lag at init / mid / end
    snapshots_dependency_kept.csv     and the share of it TBPTT(tau) keeps, tau = 0..max_lag
    summary.csv                one row per run: final losses and accuracies
    timings.csv                one row per run: seconds (the only file that changes between reruns)
    <figure>.png, .svg, index.html

The spec is a :class:`gradlab.study.spec.TrainSpec`; the runs are run by the one resumable runner
(:mod:`gradlab.study.runner`). A run whose ``done.json`` matches its parameters is skipped; an unfinished one resumes
from its checkpoint (the Trainer's resume is bitwise equal to an uninterrupted run), so
the same inputs give the same CSVs, timings.csv and the wall time in index.html aside.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..model import RNN
from ..report.frames import TRAIN_FRAMES
from .plan import (PlanError, check_memory, check_writable, dataset_inputs, describe, estimate_analysis,
                   estimate_training, memory_limit)
from . import runner
from .runner import RunPlan, is_done, slug, write_atomic, write_csv, write_done
from .spec import TrainSpec, load_train_spec, train_spec_from_dict, validate_train_spec
from .states import ELMAN, estimated_size, load_model

__all__ = ["TrainSpec", "load_train_spec", "train_spec_from_dict", "validate_train_spec", "runs", "run_study",
           "plan_study", "StudyPlan", "render_study", "TRAIN_FRAMES"]

RUN_COLUMNS = ("run", "hidden_size", "scheme", "learning_rate", "seed")


def run_columns(run: dict) -> tuple:
    """The columns that say which run wrote a row: :data:`RUN_COLUMNS`, with ``cell`` after ``run`` in a study of
    cells (whose runs have one)."""
    return RUN_COLUMNS[:1] + ("cell",) + RUN_COLUMNS[1:] if "cell" in run else RUN_COLUMNS
SNAPSHOTS = ("init", "mid", "end")


# ---------------------------------------------------------------------- runs
def runs(spec: TrainSpec) -> list[dict]:
    """The runs of a study in grid order ([cell,] hidden, scheme, lr, seed), with parameters and content key.

    The key covers the canonical train and dev dataset texts and the bytes of every file
    they read, so a changed data file retrains the runs that use it. A study of cells (a
    ``cell`` key other than "elman", or a list) has a run per cell, named ``<cell>_h...``.
    """
    from ..data import canonical_spec
    common = {k: v for k, v in spec.recorded().items()
              if k not in ("name", "title", "hidden_sizes", "schemes", "learning_rates", "seeds", "max_memory",
                           "cell")}
    if spec.agreement_sets is None:       # left out: the runs of specs without the key keep their keys
        del common["agreement_sets"]
    common["train"] = canonical_spec(spec.train)
    common["dev"] = canonical_spec(spec.dev) if spec.dev is not None else None
    common["inputs"] = {**dataset_inputs(common["train"], "train"),
                        **(dataset_inputs(common["dev"], "dev") if spec.dev is not None else {}),
                        **agreement_set_inputs(spec)}
    out = []
    for cell in spec.cells:
        own = {"cell": cell} if spec.has_cells else {}       # Elman-only studies keep their runs' digests
        for h in spec.hidden_sizes:
            for scheme in spec.schemes:
                for lr in spec.learning_rates:
                    for seed in spec.seeds:
                        params = {**common, **own, "hidden_size": h, "scheme": scheme, "learning_rate": lr,
                                  "seed": seed, "version": __version__}
                        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
                        run = (f"{cell}_" if own else "") + f"h{h}_{scheme}_lr{lr:g}_seed{seed}"
                        out.append({"run": run, **own, "hidden_size": h, "scheme": scheme, "learning_rate": lr,
                                    "seed": seed, "params": params, "digest": digest,
                                    "slug": f"{slug(run)}__{digest}"})
    return out


def agreement_set_files(text: str) -> dict[str, Path]:
    """{"path"[, "gold"]: file} that an ``agreement_sets`` entry reads."""
    from .spec import parse_agreement_set
    p = parse_agreement_set(text)
    files = {"path": Path(p["path"])}
    if p["name"] == "linzen_testset":
        files["gold"] = Path(p["gold"]) if p["gold"] else Path(p["path"]).with_suffix(".gold")
    return files


def agreement_set_inputs(spec: TrainSpec) -> dict[str, str]:
    """{"agreement_sets.<set>.<file>": sha256} of the test-set files (a changed file re-evaluates the runs)."""
    from .plan import file_sha256
    from .spec import parse_agreement_set
    return {f"agreement_sets.{parse_agreement_set(t)['name']}.{k}": file_sha256(f)
            for t in spec.agreement_sets or () for k, f in agreement_set_files(t).items()}


def load_agreement_sets(spec: TrainSpec) -> list:
    """[(AgreementTestSet, lowercase)] of the spec's ``agreement_sets``, read in their published formats."""
    from ..data.readers import read_gulordava_set, read_linzen_testset
    from .spec import parse_agreement_set
    out = []
    for text in spec.agreement_sets or ():
        p = parse_agreement_set(text)
        files = agreement_set_files(text)
        try:
            test_set = (read_linzen_testset(files["path"], files["gold"]) if p["name"] == "linzen_testset"
                        else read_gulordava_set(files["path"]))
        except (ValueError, OSError) as exc:
            raise ValueError(f"agreement_sets: {text!r}: {exc}") from None
        out.append((test_set, p["lowercase"]))
    return out


#: Columns of a run's agreement_sets table after the run columns.
AGREEMENT_SET_COLUMNS = ("test_set", "type", "n_attractors", "n", "n_correct", "accuracy", "mean_loss")


def agreement_set_table(evaluation) -> pd.DataFrame:
    """One AgreementSetEvaluation as rows per (type, n_attractors) of its comparable items (both verb forms in
    the vocabulary): n, n_correct, accuracy, mean_loss (-log P(correct form))."""
    items = evaluation.items[evaluation.items["comparable"]]
    g = items.groupby(["type", "n_attractors"], sort=True)
    out = pd.DataFrame({"n": g.size(), "n_correct": g["correct"].sum(),
                        "accuracy": g["correct"].mean(), "mean_loss": g["loss"].mean()}).reset_index()
    out.insert(0, "test_set", evaluation.test_set)
    out = out.astype({"n_attractors": np.int64, "n": np.int64, "n_correct": np.int64, "accuracy": np.float64,
                      "mean_loss": np.float64})
    return out[list(AGREEMENT_SET_COLUMNS)]


def evaluate_agreement_sets(model: RNN, sets: list, vocab, run: dict) -> pd.DataFrame:
    """The agreement_sets table of one run: each test set evaluated with ``vocab`` (the train data's)."""
    from ..train.evaluate import evaluate_agreement_set
    parts = [_with_run(agreement_set_table(evaluate_agreement_set(model, ts, vocab, lowercase=lower,
                                                                  label=run["run"])), run)
             for ts, lower in sets]
    return pd.concat(parts, ignore_index=True)


def load_data(spec: TrainSpec):
    """(train, dev) Datasets of a study, exactly as its runs use them."""
    from ..data import load_dataset
    train = load_dataset(spec.train) if spec.distribution == "fixed" else \
        load_dataset(spec.train, min_distance=spec.min_distance)
    if spec.n_sentences is not None and spec.n_sentences < train.n_sentences:
        train = train.select(np.arange(spec.n_sentences))
    if spec.dev is None:
        train, dev = train.split(spec.dev_fraction, seed=0)
    else:
        dev = load_dataset(spec.dev)
        if dev.vocab != train.vocab:
            raise ValueError(f"dev: dataset {spec.dev!r} has another vocabulary than train {spec.train!r} "
                             f"(|V| {len(dev.vocab)} vs {len(train.vocab)}); give both the same vocab=")
    if spec.n_dev is not None and spec.n_dev < dev.n_sentences:
        dev = dev.select(np.arange(spec.n_dev))
    for t in spec.evaluation_tasks:
        if dev.n_outputs(t) != dev.n_outputs(spec.task):
            raise ValueError(f"eval_tasks: task {t!r} needs {dev.n_outputs(t)} outputs, the trained model "
                             f"has {dev.n_outputs(spec.task)}")
    return train, dev


def initial_model(spec: TrainSpec, run: dict, train):
    """The run's initial model: the report's ``init:scale=S,seed=N`` state drawn for the training dataset (for
    the run's cell: :func:`gradlab.study.states.build_state`)."""
    from ..analysis.states import ModelState
    from .states import ELMAN, build_state
    state = ModelState("init", scale=spec.scale, seed=run["seed"], activation=spec.activation,
                       recurrent=spec.recurrent_init, gain=spec.recurrent_gain)
    from ..data import canonical_spec
    return build_state(state, len(train.vocab), run["hidden_size"], train.n_outputs(spec.task),
                       key=canonical_spec(spec.train), dtype=spec.dtype, cell=run.get("cell", ELMAN),
                       num_layers=spec.num_layers)


def _make_trainer(**options):
    """The Trainer of a run (tests replace this to watch or interrupt runs)."""
    from ..train import Trainer
    return Trainer(**options)


def _with_run(frame: pd.DataFrame, run: dict, **extra) -> pd.DataFrame:
    frame = frame.copy()
    cols = {**{k: run[k] for k in run_columns(run)}, **extra}
    for i, (k, v) in enumerate(cols.items()):
        frame.insert(i, k, v)
    return frame


def compute_run(spec: TrainSpec, run: dict, train, dev, folder: Path | None = None) -> dict:
    """Train one run, evaluate it and analyse its snapshots; :func:`write_run` writes what this returns.

    ``folder`` holds the run's checkpoints and mid-training snapshot, so that an interrupted
    run resumes from them (the run's own folder in this process, a temporary one on a Dask
    worker); None keeps none. Either way the result is the same.

    Returns
    -------
    dict
        ``frames`` (history, evaluation, by_distance, by_attractors, snapshots_*, summary,
        timing), ``model`` and ``mid`` (the model after epochs // 2 epochs, or None).
    """
    from ..analysis.study import analyse
    from ..train import evaluate

    t0 = time.perf_counter()
    init = initial_model(spec, run, train)
    options = dict(task=spec.task, scheme=run["scheme"], learning_rate=run["learning_rate"], anneal=spec.anneal,
                   batch_size=spec.batch_size, seed=run["seed"], progress=False, clip=spec.clip)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        options.update(checkpoint=folder / "checkpoint.npz", resume=True)
        n_batches = math.ceil(train.n_sentences / spec.batch_size)
        if n_batches >= 8:  # a crash mid-epoch loses at most a quarter of an epoch
            options["checkpoint_every"] = max(1, n_batches // 4)
    mid_epochs = spec.epochs // 2
    mid, stages = None, []
    if spec.distribution == "curriculum":
        result, mid, mid_epochs, stages = _train_curriculum(spec, options, init, train, dev, folder)
    else:
        if spec.snapshots and mid_epochs >= 1:
            if folder is not None and (folder / "mid.npz").exists():
                mid = load_model(folder / "mid.npz")
            else:
                mid = _make_trainer(epochs=mid_epochs, **options).fit(init, train, dev).model
                if folder is not None:
                    mid.save(folder / "mid.npz")
        result = _make_trainer(epochs=spec.epochs, **options).fit(init, train, dev)
    if not result.completed:
        raise RuntimeError(f"run {run['run']} stopped early ({result.stopped_by})")
    model = result.model
    history = result.history
    seconds = float(history["seconds"].sum()) if "seconds" in history else float("nan")
    frames = {"history": _with_run(history.drop(columns=["seconds"], errors="ignore"), run)}

    evals, by_distance, by_attractors = [], [], []
    for t in spec.evaluation_tasks:
        ev = evaluate(model, dev, t)
        evals.append(_with_run(ev.to_frame(), run))
        by_distance.append(_with_run(ev.by_distance, run, dataset=dev.label, task=t))
        by_attractors.append(_with_run(ev.by_attractors, run, dataset=dev.label, task=t))
    frames["evaluation"] = pd.concat(evals, ignore_index=True)
    frames["by_distance"] = pd.concat(by_distance, ignore_index=True)
    frames["by_attractors"] = pd.concat(by_attractors, ignore_index=True)
    if spec.agreement_sets:
        frames["agreement_sets"] = evaluate_agreement_sets(model, load_agreement_sets(spec), train.vocab, run)

    if spec.snapshots:
        snap = dev.select(np.arange(min(spec.snapshot_sentences, dev.n_sentences)))
        batch = snap.batch(spec.task)
        deps = snap.dependencies(spec.task)
        # annotated data: the dependency signal too (measured for the Elman cell only)
        deps = deps if len(deps) and run.get("cell", ELMAN) == ELMAN else None
        parts: dict[str, list] = {"profile": [], "gap": [], "decay": []}
        if deps is not None:
            parts.update(dependency_signal=[], dependency_kept=[])
        for at, m in zip(SNAPSHOTS, (init, init if mid is None else mid, model)):
            analysed = analyse(m, batch, max_lag=spec.max_lag, block_schemes=(), per_sentence=False)
            epochs_done = {"init": 0, "mid": mid_epochs, "end": spec.epochs}[at]
            analysed["gap"] = analysed["gap"].rename(columns={"scheme": "gap_scheme"})
            if deps is not None:
                analysed.update(_dependency_snapshot(m, batch, deps, spec.max_lag))
            for name in parts:
                parts[name].append(_with_run(analysed[name], run, dataset=dev.label,
                                             state=f"{run['scheme']} @ {at}", snapshot=at,
                                             epochs_trained=epochs_done))
        for name, pieces in parts.items():
            frames[f"snapshots_{name}"] = pd.concat(pieces, ignore_index=True)

    last = history.iloc[-1] if len(history) else {}
    row = {k: run[k] for k in run_columns(run)}
    row.update(epochs=int(result.epochs_done), updates=int(result.updates),
               train_loss=float(last.get("train_loss", np.nan)), dev_loss=float(last.get("dev_loss", np.nan)))
    for e in evals:
        row[f"accuracy_{e['task'].iloc[0]}"] = float(e["accuracy"].iloc[0])
        row[f"mean_loss_{e['task'].iloc[0]}"] = float(e["mean_loss"].iloc[0])
    frames["summary"] = pd.DataFrame([row])
    timing = {k: run[k] for k in run_columns(run)}
    timing.update(train_seconds=seconds, wall_seconds=time.perf_counter() - t0,
                  resumed_from_update=result.resumed_from)
    frames["timing"] = pd.DataFrame([timing])
    return {"frames": frames, "model": model, "mid": mid, "stages": stages}


def _dependency_snapshot(model: RNN, batch, deps: pd.DataFrame, max_lag: int) -> dict:
    """A snapshot's dependency tables, as the report measures them (:func:`gradlab.analysis.deps.dependency_signal`,
    ``dependency_kept``): ``dependency_signal`` (by lag) and ``dependency_kept`` (per tau = 0..max_lag: the share
    of the dependency signal TBPTT(tau) keeps)."""
    from ..analysis.deps import dependency_kept, dependency_signal, dependency_signal_by_lag
    signal = dependency_signal(model, batch, deps)
    return {"dependency_signal": dependency_signal_by_lag(signal), "dependency_kept": dependency_kept(signal, max_lag)}


def _same_model(model: RNN, batch, decay_csv: Path, snapshot: str) -> bool:
    """Whether ``model`` has the sigma_max and mean f' a run's ``snapshots_decay.csv`` holds for ``snapshot``."""
    from ..analysis.vanishing import recurrence_stats
    if not decay_csv.exists():
        return False
    row = pd.read_csv(decay_csv).set_index("snapshot").loc[snapshot]
    stats = recurrence_stats(model, batch)
    return all(math.isclose(stats[k], float(row[k]), rel_tol=1e-8) for k in ("sigma_max", "mean_fprime"))


def _add_dependency_snapshots(p: StudyPlan) -> None:
    """Give finished runs written without the snapshots' dependency tables (by a gradlab before them) those tables,
    from the run's stored models (the initial model drawn again, mid.npz, model.npz) and the epochs of its other
    snapshot tables: the rows a fresh run writes, without training again. A snapshot's model is the stored model
    (mid.npz, a curriculum's stage<s>.npz, the initial model) whose sigma_max and mean f' its ``snapshots_decay.csv``
    holds; a run without one for each snapshot is left without the tables."""
    spec = p.spec
    if not spec.snapshots:
        return
    snap = p.dev.select(np.arange(min(spec.snapshot_sentences, p.dev.n_sentences)))
    deps = snap.dependencies(spec.task)
    if not len(deps):
        return
    batch = snap.batch(spec.task)
    for run in p.runs:
        if run.get("cell", ELMAN) != ELMAN:     # the dependency signal is the Elman cell's only
            continue
        folder = p.root / "runs" / run["slug"]
        names = [f"snapshots_dependency_{n}" for n in ("signal", "kept")]
        if not (folder / "model.npz").exists() or not (folder / "snapshots_profile.csv").exists() \
                or all((folder / f"{n}.csv").exists() for n in names):
            continue
        epochs = pd.read_csv(folder / "snapshots_profile.csv").drop_duplicates("snapshot") \
            .set_index("snapshot")["epochs_trained"]
        init = initial_model(spec, run, p.train)
        # each snapshot's model is the stored one whose statistics its snapshots_decay row holds (the mid model of
        # a curriculum is a stage's); none found (an initial model this gradlab does not draw): no rows, not wrong ones
        stored = [RNN.load(f) for f in [folder / "mid.npz", *sorted(folder.glob("stage*.npz"))] if f.exists()]
        candidates = {"init": [init], "mid": stored + [init], "end": [RNN.load(folder / "model.npz")]}
        models = {at: next((m for m in ms if _same_model(m, batch, folder / "snapshots_decay.csv", at)), None)
                  for at, ms in candidates.items()}
        if any(m is None for m in models.values()):
            continue
        parts: dict[str, list] = {"dependency_signal": [], "dependency_kept": []}
        for at in SNAPSHOTS:
            for name, frame in _dependency_snapshot(models[at], batch, deps, spec.max_lag).items():
                parts[name].append(_with_run(frame, run, dataset=p.dev.label, state=f"{run['scheme']} @ {at}",
                                             snapshot=at, epochs_trained=int(epochs[at])))
        for name, pieces in parts.items():
            write_csv(pd.concat(pieces, ignore_index=True), folder / f"snapshots_{name}.csv")


def write_run(folder: Path, run: dict, result: dict) -> None:
    """Write what :func:`compute_run` returned — the run's CSVs, model.npz, mid.npz and each curriculum
    stage's stage<s>.npz — remove the resume state (checkpoints, which hold wall-clock seconds), then write
    done.json."""
    folder.mkdir(parents=True, exist_ok=True)
    if result["mid"] is not None and not (folder / "mid.npz").exists():
        result["mid"].save(folder / "mid.npz")
    for s, stage in enumerate(result.get("stages", ()), start=1):
        stage.save(folder / f"stage{s}.npz")
    result["model"].save(folder / "model.npz")
    for name, frame in result["frames"].items():
        write_csv(frame, folder / f"{name}.csv")
    for ckpt in [folder / "checkpoint.npz", *folder.glob("checkpoint_stage*.npz")]:
        ckpt.unlink(missing_ok=True)
    write_done(folder, run["digest"], run["params"], field="digest")


def run_one(spec: TrainSpec, run: dict, folder: Path, train, dev) -> None:
    """Train one run (resuming from its checkpoint), evaluate it, analyse its snapshots, then write done.json."""
    write_run(folder, run, compute_run(spec, run, train, dev, folder))


def _compute_remote(spec: TrainSpec, run: dict, train, dev) -> dict:
    """A run as a Dask task: its checkpoints live in a temporary folder of the worker (the full run resumes
    from the mid snapshot's, as in this process), and nothing else is written there."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="gradlab-run-") as tmp:
        return compute_run(spec, run, train, dev, Path(tmp))


@dataclass
class StudyPlan(RunPlan):
    """What a run of a study will do: its folder, data, runs (reuse or compute) and estimates."""

    spec: TrainSpec
    root: Path
    train: object
    dev: object
    runs: list
    limit: tuple

    what = "run"

    @property
    def units(self) -> list:
        return self.runs

    def describe(self) -> str:
        return describe(self.root, self.limit, [(r["status"], r["run"], "", r["estimate"]) for r in self.runs],
                        "run", f" on {self.train.n_sentences} train / {self.dev.n_sentences} dev sentences")

    # the runner's hooks (gradlab.study.runner)
    def refresh(self) -> None:
        _set_status(self)

    def unit_name(self, run: dict) -> str:
        return run["run"]

    def calls(self, todo: list, ex) -> tuple:
        from ..executor import InProcess
        if isinstance(ex, InProcess):     # trains and writes in this process
            return run_one, [(self.spec, r, self.root / "runs" / r["slug"], self.train, self.dev) for r in todo]
        train_h, dev_h = ex.share(self.train), ex.share(self.dev)
        return _compute_remote, [(self.spec, r, train_h, dev_h) for r in todo]

    def done(self, run: dict, result) -> None:
        if result is not None:          # computed on a worker: written here
            write_run(self.root / "runs" / run["slug"], run, result)

    def finish(self) -> None:
        _finish(self)

    def render(self) -> None:
        render_study(self.root)


def plan_study(spec: TrainSpec, out_root: str | os.PathLike = "reports", *,
               source: str = "training spec") -> StudyPlan:
    """Check everything a study needs before any training (raises ``PlanError``, a ValueError).

    Validates the spec, checks the output folder can be written, reads the train and
    dev data (file datasets are parsed), estimates each run's peak memory and time and
    refuses a run above ``max_memory``.
    """
    validate_train_spec(spec, source)
    root = Path(out_root) / spec.name
    check_writable(root)
    try:
        train, dev = load_data(spec)
        todo = runs(spec)
        load_agreement_sets(spec)          # their format is checked before any training
    except (ValueError, TypeError, OSError, IndexError) as exc:
        raise PlanError(f"{source}: {exc}") from None
    limit = memory_limit(spec.max_memory)
    n_tok = lambda ds: int(ds.batch(spec.task).n_tokens)  # noqa: E731
    for run in todo:
        size = estimated_size(run.get("cell", ELMAN), run["hidden_size"], spec.num_layers)
        est = estimate_training(n_tokens=n_tok(train), n_sentences=train.n_sentences, hidden_size=size,
                                vocab_size=len(train.vocab), output_size=train.n_outputs(spec.task),
                                epochs=spec.epochs, n_eval_tokens=n_tok(dev))
        if spec.snapshots:
            n_snap = min(spec.snapshot_sentences, dev.n_sentences)
            snap_tokens = n_tok(dev) * n_snap // max(dev.n_sentences, 1)
            snap = estimate_analysis(n_tokens=snap_tokens, n_losses=snap_tokens, n_sentences=n_snap,
                                     max_lag=spec.max_lag, hidden_size=size, vocab_size=len(train.vocab),
                                     output_size=train.n_outputs(spec.task), per_sentence=False)
            est = type(est)(max(est.memory, snap.memory), est.seconds + 3 * snap.seconds)
        run["estimate"] = est
        check_memory(f"{source}: run {run['run']}", est, limit,
                     "lower n_sentences, n_dev or hidden_sizes")
    p = StudyPlan(spec, root, train, dev, todo, limit)
    _set_status(p)
    return p


def _set_status(p: StudyPlan) -> None:
    for run in p.runs:
        run["status"] = "reuse" if is_done(p.root / "runs" / run["slug"], run["digest"], "digest") else "compute"


def curriculum_stages(spec: TrainSpec, train) -> list[tuple[int, int]]:
    """(largest distance, epochs) of each stage of a curriculum (see :class:`TrainSpec`)."""
    hi = int(np.nanmax(train.describe()["distance"].to_numpy(dtype=np.float64)))
    lo, S = spec.min_distance, spec.curriculum_stages
    per, extra = divmod(spec.epochs, S)
    return [(lo + math.ceil((hi - lo) * s / S), per + (1 if s > S - extra else 0)) for s in range(1, S + 1)]


def _train_curriculum(spec: TrainSpec, options: dict, init: RNN, train, dev, folder: Path | None):
    """Stage by stage, each on the sentences up to its distance, from the last stage's model.

    Each stage resumes from its own checkpoint (in ``folder``; None: none). Returns a
    TrainResult over all stages (history with a ``stage`` column and epochs counted over
    the run), the model after the stage that reaches half of the epochs, that number of
    epochs, and each finished stage's model (:func:`write_run` keeps them as ``stage<s>.npz``).
    """
    from ..train import TrainResult
    dist = train.describe()["distance"].to_numpy(dtype=np.float64)
    model, histories, updates, done, stages = init, [], 0, 0, []
    mid, mid_epochs = init, 0
    for s, (d_max, n_epochs) in enumerate(curriculum_stages(spec, train), start=1):
        opts = dict(options)
        if folder is not None:     # folder None: no checkpoints
            opts["checkpoint"] = folder / f"checkpoint_stage{s}.npz"
        result = _make_trainer(epochs=n_epochs, **opts).fit(model, train.select(dist <= d_max), dev)
        if not result.completed:
            return result, mid, mid_epochs, stages
        model = result.model
        stages.append(model)
        h = result.history.copy()
        h.insert(0, "stage", s)
        h["max_distance"] = d_max
        h["epoch"] += done
        h["update"] += updates
        for col in ("sentences_seen", "tokens_seen"):
            h[col] += int(histories[-1][col].iloc[-1]) if histories else 0
        histories.append(h)
        done += n_epochs
        updates += result.updates
        if mid_epochs == 0 and done >= spec.epochs // 2:
            mid, mid_epochs = model, done
    return (TrainResult(model, pd.concat(histories, ignore_index=True), updates, done, True), mid, mid_epochs,
            stages)


def run_study(spec: TrainSpec, out_root: str | os.PathLike = "reports", *, progress: bool = True,
              render: bool = True, wait: bool = False, log=None, client=None, workers: int | None = None,
              scheduler: str | None = None, threads_per_worker: int | None = None) -> Path:
    """Plan, then train every run of ``spec`` not yet done, combine the CSVs and render; returns the folder.

    ``wait``: when another gradlab run holds the folder, wait for it instead of stopping with
    an error that names its pid. ``log`` receives one line per run: reused or computed.
    ``client`` (a ``dask.distributed.Client``), ``workers`` (a local cluster of that many
    processes) or ``scheduler`` (an existing cluster's address; also ``$DASK_SCHEDULER_ADDRESS``)
    run the runs as tasks on a Dask cluster (``threads_per_worker``: Numba/BLAS threads per
    worker); each finished run comes back here and is written at once, with the same bytes as
    in this process. A run that raises does not stop the others:
    :class:`gradlab.executor.UnitsFailed` is raised once every other run is written.
    """
    return runner.run(plan_study(spec, out_root), progress=progress, render=render, wait=wait, log=log,
                      client=client, workers=workers, scheduler=scheduler, threads_per_worker=threads_per_worker)


def _finish(p: StudyPlan) -> None:
    """Combine the runs' CSVs (first adding the snapshots' dependency tables to runs finished without them),
    write timings.csv and the manifest."""
    spec, root, train, dev, todo = p.spec, p.root, p.train, p.dev, p.runs
    _add_dependency_snapshots(p)
    folders = [root / "runs" / r["slug"] for r in todo]
    for name in TRAIN_FRAMES:
        parts = [pd.read_csv(f / f"{name}.csv") for f in folders if (f / f"{name}.csv").exists()]
        if parts:
            write_csv(pd.concat(parts, ignore_index=True), root / f"{name}.csv")
    timings = pd.concat([pd.read_csv(f / "timing.csv") for f in folders], ignore_index=True)
    timings.insert(len(run_columns(todo[0])), "status",
                   ["reused" if r["status"] == "reuse" else "computed" for r in todo])
    write_csv(timings, root / "timings.csv")
    write_atomic(root / "manifest.json", json.dumps(
        {"gradlab_version": __version__, "seeds": spec.seeds, "spec": spec.recorded(),
         "train": train.label, "dev": dev.label, "n_train": train.n_sentences, "n_dev": dev.n_sentences,
         "runs": [{"run": r["run"], "digest": r["digest"], "inputs": r["params"]["inputs"]} for r in todo]},
        indent=1, default=str))


def render_study(folder: str | os.PathLike) -> Path:
    """Draw the study's figures (PNG and SVG) and write ``index.html`` from its CSVs (one renderer: render)."""
    from ..report.render import render
    return render(folder, "study")
