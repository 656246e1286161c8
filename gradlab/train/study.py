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
    snapshots_profile.csv      vanishing profile at init / mid / end (snapshots = true)
    snapshots_gap.csv          TBPTT gap at init / mid / end
    snapshots_decay.csv        fitted decay at init / mid / end
    summary.csv                one row per run: final losses and accuracies
    timings.csv                one row per run: seconds (the only file that changes between reruns)
    <figure>.png, .svg, index.html

A run whose ``done.json`` matches its parameters is skipped; an unfinished one resumes
from its checkpoint (the Trainer's resume is bitwise equal to an uninterrupted run), so
the same inputs give the same CSVs, timings.csv and the wall time in index.html aside.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..model import DEFAULT_SCALE, RNN
from ..report.frames import TRAIN_FRAMES  # combined CSVs of a study (timings.csv aside)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["TrainSpec", "load_train_spec", "train_spec_from_dict", "validate_train_spec", "runs", "run_study",
           "render_study", "TRAIN_FRAMES"]

#: Tasks a study can train on, and the evaluation tasks each allows (same output layer).
TRAIN_TASKS = {"lm": ("lm", "agreement", "recall", "closing"), "number": ("number",), "recall": ("recall", "lm"),
               "closing": ("closing", "lm")}
#: How the training data's dependency distances are spread (``distribution``): as the ``train`` spec
#: gives them; uniform on min_distance..distance; or that uniform data in a curriculum, short to long.
DISTRIBUTIONS = ("fixed", "uniform", "curriculum")
RUN_COLUMNS = ("run", "hidden_size", "scheme", "learning_rate", "seed")
SNAPSHOTS = ("init", "mid", "end")


@dataclass(frozen=True)
class TrainSpec:
    """A training study (the keys of its TOML file).

    Attributes
    ----------
    name, title : str
    train : str
        Dataset spec of the training data (``gradlab datasets``).
    dev : str or None
        Dataset spec of the dev data (same vocabulary); None: a ``dev_fraction`` split of ``train``.
    dev_fraction : float
    task : {"lm", "number"}
    hidden_sizes, schemes, learning_rates, seeds : list
        The grid: one run per combination. ``seeds`` seed the initial model (drawn as the
        report's ``init`` state with ``scale``) and the order of the sentences.
    epochs, batch_size : int
    anneal : float
        lr_epoch = lr / (1 + epoch / anneal); 0: constant.
    n_sentences : int or None
        First n training sentences (before a dev split).
    n_dev : int or None
        First n dev sentences.
    eval_tasks : list of str
        Tasks the final model is evaluated on (dev data): lm, agreement, recall, closing
        for task lm; number for task number. Default: [task].
    snapshots : bool
        Analyse the model at init, after epochs // 2 epochs and at the end (vanishing
        profile, TBPTT gap) on the first ``snapshot_sentences`` dev sentences, lags 0..max_lag.
    max_lag, snapshot_sentences : int
    scale : float
        Initial weight scale.
    max_memory : float or None
        GiB a run may use (its estimated peak); None: half of this machine's RAM.
    activation : str
        Activation of the models (sigmoid, tanh, relu).
    recurrent_init, recurrent_gain : str, float
        How U is initialised: "normal" (N(0, scale^2)), "orthogonal" or "identity" times
        the gain (:meth:`gradlab.RNN.init`).
    clip : float or None
        Global-norm gradient clipping of the updates (Trainer's ``clip``).
    distribution : {"fixed", "uniform", "curriculum"}
        The training data's distances: as ``train`` says ("fixed"); uniform on
        ``min_distance``..the train spec's ``distance`` ("uniform": ``train`` gets
        ``min_distance``); or that uniform data as a curriculum ("curriculum"): the epochs
        are split into ``curriculum_stages`` stages, stage s of S training only on the
        sentences whose longest dependency is at most min_distance + (distance -
        min_distance) * s / S (rounded up), each stage continuing from the last.
    min_distance : int or None
        Lower end of the distances for "uniform" and "curriculum".
    curriculum_stages : int
        Stages of a curriculum (<= epochs).
    """

    name: str = "training"
    title: str = "Training study"
    train: str = "agreement:distance=8,min_distance=1"
    dev: str | None = None
    dev_fraction: float = 0.1
    task: str = "lm"
    hidden_sizes: list = field(default_factory=lambda: [50])
    schemes: list = field(default_factory=lambda: ["full"])
    learning_rates: list = field(default_factory=lambda: [0.5])
    seeds: list = field(default_factory=lambda: [0])
    epochs: int = 10
    batch_size: int = 1
    anneal: float = 0.0
    n_sentences: int | None = None
    n_dev: int | None = None
    eval_tasks: list | None = None
    snapshots: bool = False
    max_lag: int = 20
    snapshot_sentences: int = 200
    scale: float = DEFAULT_SCALE
    max_memory: float | None = None
    activation: str = "sigmoid"
    recurrent_init: str = "normal"
    recurrent_gain: float = 1.0
    clip: float | None = None
    distribution: str = "fixed"
    min_distance: int | None = None
    curriculum_stages: int = 4

    @property
    def evaluation_tasks(self) -> list:
        return list(self.eval_tasks) if self.eval_tasks else [self.task]

    def to_toml(self) -> str:
        from ..report.spec import _toml_value
        return "".join(f"{k} = {_toml_value(v)}\n" for k, v in asdict(self).items() if v is not None)

    def quick(self, n_sentences: int = 20, epochs: int = 1, hidden_size: int = 4, max_lag: int = 4) -> "TrainSpec":
        """A reduced version for smoke runs: 20 sentences (train and dev), 1 epoch, H = 4, K = 4."""
        return replace(self, n_sentences=min(n_sentences, self.n_sentences or n_sentences),
                       n_dev=min(n_sentences, self.n_dev or n_sentences), epochs=min(epochs, self.epochs),
                       hidden_sizes=[min(hidden_size, h) for h in dict.fromkeys(self.hidden_sizes)][:1],
                       max_lag=min(max_lag, self.max_lag),
                       snapshot_sentences=min(n_sentences, self.snapshot_sentences),
                       curriculum_stages=min(self.curriculum_stages, epochs, self.epochs))


_TYPES = {"name": str, "title": str, "train": str, "dev": str, "dev_fraction": float, "task": str,
          "hidden_sizes": list, "schemes": list, "learning_rates": list, "seeds": list, "epochs": int,
          "batch_size": int, "anneal": float, "n_sentences": int, "n_dev": int, "eval_tasks": list,
          "snapshots": bool, "max_lag": int, "snapshot_sentences": int, "scale": float, "activation": str,
          "recurrent_init": str, "recurrent_gain": float, "clip": float, "distribution": str, "min_distance": int,
          "curriculum_stages": int, "max_memory": float}
_ITEM_TYPES = {"hidden_sizes": int, "schemes": str, "learning_rates": float, "seeds": int, "eval_tasks": str}


def train_spec_from_dict(data: dict, source: str = "training spec") -> TrainSpec:
    """Build and fully validate a TrainSpec; errors name ``source``, the key and the allowed values."""
    from ..report.spec import typed_values
    values = typed_values(data, _TYPES, _ITEM_TYPES, source)
    spec = TrainSpec(**values)
    validate_train_spec(spec, source)
    return spec


def validate_train_spec(spec: TrainSpec, source: str = "training spec") -> None:
    """Check everything that can be checked without training."""
    from ..data import check_spec, dataset_info
    from ..schemes import parse_scheme

    def fail(key, msg):
        raise ValueError(f"{source}: {key}: {msg}")

    if not spec.name or any(c in spec.name for c in "/\\") or spec.name.startswith("."):
        fail("name", f"must be a plain folder name; received {spec.name!r}")
    if spec.task not in TRAIN_TASKS:
        fail("task", f"must be one of {tuple(TRAIN_TASKS)}; received {spec.task!r}")
    for key in ("train", "dev"):
        text = getattr(spec, key)
        if text is None:
            continue
        try:
            name, _ = check_spec(text)
        except (ValueError, TypeError, FileNotFoundError) as exc:
            fail(key, str(exc))
        tasks = dataset_info(name).tasks
        if spec.task not in tasks:
            fail("task", f"{key} dataset {text!r} offers tasks {tasks}; received task {spec.task!r}")
        if key == (spec.dev and "dev" or "train"):
            for t in spec.evaluation_tasks:
                if t not in TRAIN_TASKS[spec.task]:
                    fail("eval_tasks", f"a model trained on task {spec.task!r} can be evaluated on "
                                       f"{TRAIN_TASKS[spec.task]}; received {t!r}")
                if t not in tasks:
                    fail("eval_tasks", f"the dev dataset {text!r} offers tasks {tasks}; received {t!r}")
    if not 0 < spec.dev_fraction < 1:
        fail("dev_fraction", f"must be between 0 and 1; received {spec.dev_fraction}")
    for key in ("hidden_sizes", "schemes", "learning_rates", "seeds"):
        values = getattr(spec, key)
        if not values:
            fail(key, "needs at least one value")
        if len(set(values)) != len(values):
            fail(key, f"values must be unique; received {values}")
    if any(h < 1 for h in spec.hidden_sizes):
        fail("hidden_sizes", f"must be integers >= 1; received {spec.hidden_sizes}")
    for s in spec.schemes:
        try:
            parse_scheme(s)
        except (ValueError, TypeError) as exc:
            fail("schemes", f"{exc} (allowed: full, tbptt:TAU, chunked:H, mikolov:BPTT,BLOCK, block:K1,K2, "
                            "adaptive:delta=D[,every=N,...])")
    if any(not math.isfinite(r) or r <= 0 for r in spec.learning_rates):
        fail("learning_rates", f"must be finite numbers > 0; received {spec.learning_rates}")
    if any(s < 0 for s in spec.seeds):
        fail("seeds", f"must be integers >= 0; received {spec.seeds}")
    for key, lo in (("epochs", 1), ("batch_size", 1), ("n_sentences", 1), ("n_dev", 1), ("max_lag", 0),
                    ("snapshot_sentences", 1)):
        value = getattr(spec, key)
        if value is not None and value < lo:
            fail(key, f"must be an integer >= {lo}; received {value}")
    if not math.isfinite(spec.anneal) or spec.anneal < 0:
        fail("anneal", f"must be a finite number >= 0 (0: constant learning rate); received {spec.anneal}")
    if not math.isfinite(spec.scale) or spec.scale < 0:
        fail("scale", f"must be a finite number >= 0; received {spec.scale}")
    if spec.max_memory is not None and not 0 < spec.max_memory < float("inf"):
        fail("max_memory", f"must be a number of GiB > 0; received {spec.max_memory}")
    _validate_model_and_distribution(spec, fail)


def _validate_model_and_distribution(spec: TrainSpec, fail) -> None:
    from ..data import check_spec, dataset_info, parse_spec
    from ..model import ACTIVATIONS, RECURRENT_INITS
    if spec.activation not in ACTIVATIONS:
        fail("activation", f"must be one of {tuple(ACTIVATIONS)}; received {spec.activation!r}")
    if spec.recurrent_init not in RECURRENT_INITS:
        fail("recurrent_init", f"must be one of {RECURRENT_INITS}; received {spec.recurrent_init!r}")
    if not math.isfinite(spec.recurrent_gain) or spec.recurrent_gain < 0:
        fail("recurrent_gain", f"must be a finite number >= 0; received {spec.recurrent_gain}")
    if spec.clip is not None and (not math.isfinite(spec.clip) or spec.clip <= 0):
        fail("clip", f"must be a finite number > 0 (or left out: no clipping); received {spec.clip}")
    if spec.distribution not in DISTRIBUTIONS:
        fail("distribution", f"must be one of {DISTRIBUTIONS}; received {spec.distribution!r}")
    if spec.distribution == "fixed":
        if spec.min_distance is not None:
            fail("min_distance", "applies to distribution = 'uniform' or 'curriculum'; put min_distance into the "
                                 "train dataset spec for fixed data")
        return
    name, given = parse_spec(spec.train)
    if "min_distance" not in {p.name for p in dataset_info(name).parameters} or "distance" not in given:
        fail("distribution", f"{spec.distribution!r} needs a train dataset with distance and min_distance "
                             f"parameters and distance given (e.g. 'recall:distance=20'); received {spec.train!r}")
    if "min_distance" in given:
        fail("train", f"distribution = {spec.distribution!r} sets min_distance itself; remove it from {spec.train!r}")
    if spec.min_distance is None:
        fail("min_distance", f"distribution = {spec.distribution!r} needs min_distance (the shortest distance)")
    try:
        check_spec(spec.train, min_distance=spec.min_distance)
    except (ValueError, TypeError) as exc:
        fail("min_distance", str(exc))
    if spec.distribution == "curriculum" and not 1 <= spec.curriculum_stages <= spec.epochs:
        fail("curriculum_stages", f"must be between 1 and epochs ({spec.epochs}); received {spec.curriculum_stages}")


def load_train_spec(path_or_name) -> TrainSpec:
    """Read a training TOML spec from a path, or one in ``analyses/`` by name."""
    from ..report.spec import is_training_spec, read_spec_file
    path, data = read_spec_file(path_or_name)
    if "tasks" in data:
        raise ValueError(f"{path} is a suite of studies (it has [[tasks]] tables); run it with "
                         f"`gradlab train {path_or_name}` or gradlab.train.suite.load_suite")
    if not is_training_spec(data):
        raise ValueError(f"{path} is a report spec, not a training study (it has no 'train' key); run it with "
                         f"`gradlab run {path_or_name}`")
    return train_spec_from_dict(data, source=str(path))


# ---------------------------------------------------------------------- runs
def _slug(text: str) -> str:
    from ..report.pipeline import _slug as slug
    return slug(text)


def runs(spec: TrainSpec) -> list[dict]:
    """The runs of a study in grid order (hidden, scheme, lr, seed), with parameters and content key.

    The key covers the canonical train and dev dataset texts and the bytes of every file
    they read, so a changed data file retrains the runs that use it.
    """
    from ..data import canonical_spec
    from ..report.plan import dataset_inputs
    common = {k: v for k, v in asdict(spec).items()
              if k not in ("name", "title", "hidden_sizes", "schemes", "learning_rates", "seeds", "max_memory")}
    common["train"] = canonical_spec(spec.train)
    common["dev"] = canonical_spec(spec.dev) if spec.dev is not None else None
    common["inputs"] = {**dataset_inputs(common["train"], "train"),
                        **(dataset_inputs(common["dev"], "dev") if spec.dev is not None else {})}
    out = []
    for h in spec.hidden_sizes:
        for scheme in spec.schemes:
            for lr in spec.learning_rates:
                for seed in spec.seeds:
                    params = {**common, "hidden_size": h, "scheme": scheme, "learning_rate": lr, "seed": seed,
                              "version": __version__}
                    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
                    run = f"h{h}_{scheme}_lr{lr:g}_seed{seed}"
                    out.append({"run": run, "hidden_size": h, "scheme": scheme, "learning_rate": lr, "seed": seed,
                                "params": params, "digest": digest, "slug": f"{_slug(run)}__{digest}"})
    return out


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


def initial_model(spec: TrainSpec, run: dict, train) -> RNN:
    """The run's initial model: the report's ``init:scale=S,seed=N`` state drawn for the training dataset."""
    from ..analysis.states import ModelState
    state = ModelState("init", scale=spec.scale, seed=run["seed"], activation=spec.activation,
                       recurrent=spec.recurrent_init, gain=spec.recurrent_gain)
    from ..data import canonical_spec
    return state.build(len(train.vocab), run["hidden_size"], train.n_outputs(spec.task),
                       key=canonical_spec(spec.train))


def _make_trainer(**options):
    """The Trainer of a run (tests replace this to watch or interrupt runs)."""
    from .trainer import Trainer
    return Trainer(**options)


def _is_done(folder: Path, digest: str) -> bool:
    try:
        return json.loads((folder / "done.json").read_text())["digest"] == digest
    except (OSError, ValueError, KeyError):
        return False


def _with_run(frame: pd.DataFrame, run: dict, **extra) -> pd.DataFrame:
    frame = frame.copy()
    cols = {**{k: run[k] for k in RUN_COLUMNS}, **extra}
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
    from .evaluate import evaluate

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
                mid = RNN.load(folder / "mid.npz")
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

    if spec.snapshots:
        snap = dev.select(np.arange(min(spec.snapshot_sentences, dev.n_sentences)))
        batch = snap.batch(spec.task)
        parts: dict[str, list] = {"profile": [], "gap": [], "decay": []}
        for at, m in zip(SNAPSHOTS, (init, init if mid is None else mid, model)):
            analysed = analyse(m, batch, max_lag=spec.max_lag, block_schemes=(), per_sentence=False)
            epochs_done = {"init": 0, "mid": mid_epochs, "end": spec.epochs}[at]
            analysed["gap"] = analysed["gap"].rename(columns={"scheme": "gap_scheme"})
            for name in parts:
                parts[name].append(_with_run(analysed[name], run, dataset=dev.label,
                                             state=f"{run['scheme']} @ {at}", snapshot=at,
                                             epochs_trained=epochs_done))
        for name, pieces in parts.items():
            frames[f"snapshots_{name}"] = pd.concat(pieces, ignore_index=True)

    last = history.iloc[-1] if len(history) else {}
    row = {k: run[k] for k in RUN_COLUMNS}
    row.update(epochs=int(result.epochs_done), updates=int(result.updates),
               train_loss=float(last.get("train_loss", np.nan)), dev_loss=float(last.get("dev_loss", np.nan)))
    for e in evals:
        row[f"accuracy_{e['task'].iloc[0]}"] = float(e["accuracy"].iloc[0])
        row[f"mean_loss_{e['task'].iloc[0]}"] = float(e["mean_loss"].iloc[0])
    frames["summary"] = pd.DataFrame([row])
    timing = {k: run[k] for k in RUN_COLUMNS}
    timing.update(train_seconds=seconds, wall_seconds=time.perf_counter() - t0,
                  resumed_from_update=result.resumed_from)
    frames["timing"] = pd.DataFrame([timing])
    return {"frames": frames, "model": model, "mid": mid, "stages": stages}


def write_run(folder: Path, run: dict, result: dict) -> None:
    """Write what :func:`compute_run` returned — the run's CSVs, model.npz, mid.npz and each curriculum
    stage's stage<s>.npz — remove the resume state (checkpoints, which hold wall-clock seconds), then write
    done.json."""
    from ..report.pipeline import write_atomic, write_csv
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
    write_atomic(folder / "done.json", json.dumps({"digest": run["digest"], "params": run["params"]}, indent=1,
                                                  sort_keys=True, default=str))


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
class StudyPlan:
    """What a run of a study will do: its folder, data, runs (reuse or compute) and estimates."""

    spec: TrainSpec
    root: Path
    train: object
    dev: object
    runs: list
    limit: tuple

    def describe(self) -> str:
        from ..report.plan import describe
        return describe(self.root, self.limit, [(r["status"], r["run"], "", r["estimate"]) for r in self.runs],
                        "run", f" on {self.train.n_sentences} train / {self.dev.n_sentences} dev sentences")


def plan_study(spec: TrainSpec, out_root: str | os.PathLike = "reports", *,
               source: str = "training spec") -> StudyPlan:
    """Check everything a study needs before any training (raises ``PlanError``, a ValueError).

    Validates the spec, checks the output folder can be written, reads the train and
    dev data (file datasets are parsed), estimates each run's peak memory and time and
    refuses a run above ``max_memory``.
    """
    from ..report.plan import PlanError, check_memory, check_writable, estimate_analysis, estimate_training, \
        memory_limit
    validate_train_spec(spec, source)
    root = Path(out_root) / spec.name
    check_writable(root)
    try:
        train, dev = load_data(spec)
        todo = runs(spec)
    except (ValueError, TypeError, OSError, IndexError) as exc:
        raise PlanError(f"{source}: {exc}") from None
    limit = memory_limit(spec.max_memory)
    n_tok = lambda ds: int(ds.batch(spec.task).n_tokens)  # noqa: E731
    for run in todo:
        est = estimate_training(n_tokens=n_tok(train), n_sentences=train.n_sentences, hidden_size=run["hidden_size"],
                                vocab_size=len(train.vocab), output_size=train.n_outputs(spec.task),
                                epochs=spec.epochs, n_eval_tokens=n_tok(dev))
        if spec.snapshots:
            n_snap = min(spec.snapshot_sentences, dev.n_sentences)
            snap_tokens = n_tok(dev) * n_snap // max(dev.n_sentences, 1)
            snap = estimate_analysis(n_tokens=snap_tokens, n_losses=snap_tokens, n_sentences=n_snap,
                                     max_lag=spec.max_lag, hidden_size=run["hidden_size"], vocab_size=len(train.vocab),
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
        run["status"] = "reuse" if _is_done(p.root / "runs" / run["slug"], run["digest"]) else "compute"


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
    from .trainer import TrainResult
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
    from ..executor import executor
    from ..report.plan import output_lock
    p = plan_study(spec, out_root)
    with output_lock(p.root, wait=wait):
        _set_status(p)
        with executor(workers, scheduler, threads_per_worker, client) as ex:
            return _execute_study(p, ex, progress=progress, render=render, log=log)


def _execute_study(p: StudyPlan, ex, *, progress: bool, render: bool, log) -> Path:
    from tqdm.auto import tqdm

    from ..executor import InProcess, TaskFailure, UnitsFailed
    from ..report.pipeline import write_atomic, write_csv
    spec, root, train, dev, todo = p.spec, p.root, p.train, p.dev, p.runs
    write_atomic(root / "spec.toml", spec.to_toml())
    pending = [r for r in todo if r["status"] != "reuse"]
    failures = []
    if log is not None:
        for r in todo:
            if r["status"] == "reuse":
                log(f"reused: {r['run']}")
    with tqdm(total=len(todo), initial=len(todo) - len(pending), desc=spec.name, unit="run",
              disable=not progress) as bar:
        if isinstance(ex, InProcess):
            calls = [(spec, r, root / "runs" / r["slug"], train, dev) for r in pending]
            fn = run_one          # trains and writes in this process
        else:
            train_h, dev_h = ex.share(train), ex.share(dev)
            calls, fn = [(spec, r, train_h, dev_h) for r in pending], _compute_remote
        for i, result in ex.map(fn, calls, [r["run"] for r in pending]):
            run = pending[i]
            bar.set_postfix_str(run["run"])
            if isinstance(result, TaskFailure):
                failures.append(result)
            else:
                if result is not None:          # computed on a worker: written here
                    write_run(root / "runs" / run["slug"], run, result)
                if log is not None:
                    log(f"computed: {run['run']}")
            bar.update()
    if failures:
        raise UnitsFailed(failures, len(todo), what="run")
    folders = [root / "runs" / r["slug"] for r in todo]
    for name in TRAIN_FRAMES:
        parts = [pd.read_csv(f / f"{name}.csv") for f in folders if (f / f"{name}.csv").exists()]
        if parts:
            write_csv(pd.concat(parts, ignore_index=True), root / f"{name}.csv")
    timings = pd.concat([pd.read_csv(f / "timing.csv") for f in folders], ignore_index=True)
    timings.insert(len(RUN_COLUMNS), "status", ["reused" if r["status"] == "reuse" else "computed" for r in todo])
    write_csv(timings, root / "timings.csv")
    write_atomic(root / "manifest.json", json.dumps(
        {"gradlab_version": __version__, "seeds": spec.seeds, "spec": asdict(spec),
         "train": train.label, "dev": dev.label, "n_train": train.n_sentences, "n_dev": dev.n_sentences,
         "runs": [{"run": r["run"], "digest": r["digest"], "inputs": r["params"]["inputs"]} for r in todo]},
        indent=1, default=str))
    if render:
        render_study(root)
    return root


def render_study(folder: str | os.PathLike) -> Path:
    """Draw the study's figures (PNG and SVG) and write ``index.html`` from its CSVs (one renderer: render)."""
    from ..report.render import render
    return render(folder, "study")
