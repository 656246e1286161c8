"""Run a spec: one unit of work per dataset x model state, resumable, written atomically.

Layout of ``<out>/<spec.name>/``::

    spec.toml                 the exact spec (with gradlab version and seed in manifest.json)
    units/<slug>/<frame>.csv  one folder per dataset x state; done.json is written last
    <frame>.csv               every unit's rows, with dataset and state columns
    <figure>.png, <figure>.svg
    index.html

A unit whose ``done.json`` matches its parameters is not recomputed, so an
interrupted run resumes where it stopped and loses nothing it finished.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..analysis.study import analyse
from .._io import atomic_write
from .html import COLUMN_DOCS
from .spec import Spec, validate

#: Frames a report writes (their columns are documented in ``html.COLUMN_DOCS``).
FRAMES = tuple(COLUMN_DOCS)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    atomic_write(path, text.encode("utf-8"))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, frame.to_csv(index=False, float_format="%.10g", lineterminator="\n"))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:80]


def units(spec: Spec) -> list[dict]:
    """The dataset x state work items of a spec, each with its parameters and fingerprint."""
    out = []
    for d in spec.datasets:
        for raw, state in zip(spec.states, spec.model_states()):
            params = {"dataset": d, "state": asdict(state), "seed": spec.seed, "task": spec.task,
                      "hidden_size": spec.hidden_size,
                      "max_lag": spec.max_lag, "n_sentences": spec.n_sentences, "block_schemes": spec.block_schemes,
                      "floor": spec.floor, "per_sentence": spec.per_sentence, "version": __version__}
            digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
            out.append({"dataset": d, "state": state, "state_text": raw, "params": params, "digest": digest,
                        "slug": f"{_slug(d)}__{_slug(state.label)}__{digest}"})
    return out


def _is_done(folder: Path, digest: str) -> bool:
    done = folder / "done.json"
    if not done.exists():
        return False
    try:
        return json.loads(done.read_text())["digest"] == digest
    except (ValueError, KeyError):
        return False


def _load_unit_dataset(spec: Spec, dataset: str):
    """(dataset limited to the spec's n_sentences, label of the whole dataset)."""
    from ..data import load_dataset
    ds = load_dataset(dataset)
    label = ds.label
    if spec.n_sentences is not None and spec.n_sentences < ds.n_sentences:
        ds = ds.select(np.arange(spec.n_sentences))
    return ds, label


def _build_model(spec: Spec, unit: dict, ds):
    return unit["state"].build(len(ds.vocab), spec.hidden_size, ds.n_outputs(spec.task), key=unit["dataset"],
                               default_seed=spec.seed, dataset=ds, task=spec.task)


def unit_inputs(spec: Spec, unit: dict):
    """(dataset, dataset label, model, batch) of one unit, exactly as a run computes it."""
    ds, label = _load_unit_dataset(spec, unit["dataset"])
    model = _build_model(spec, unit, ds)
    return ds, label, model, ds.batch(spec.task)


def _labelled(frames: dict, label: str, state_label: str) -> dict:
    out = {}
    for name, frame in frames.items():
        frame = frame.copy()
        frame.insert(0, "state", state_label)
        frame.insert(0, "dataset", label)
        out[name] = frame
    return out


def compute_unit(spec: Spec, unit: dict, ds, label: str, model=None) -> dict:
    """Analyse one dataset x state (where the executor runs it); :func:`write_unit` writes the result.

    ``model`` is built from the unit's state when None ("train" states train here).

    Returns
    -------
    dict
        ``frames`` (the report's tables with dataset and state columns) and ``model``
        (the trained model of a "train" state, else None).
    """
    if model is None:
        model = _build_model(spec, unit, ds)
    frames = analyse(model, ds.batch(spec.task), max_lag=spec.max_lag, deps=ds.dependencies(spec.task),
                     block_schemes=spec.block_schemes, floor=spec.floor, per_sentence=spec.per_sentence)
    return {"frames": _labelled(frames, label, unit["state"].label),
            "model": model if unit["state"].kind == "train" else None}


def write_unit(unit: dict, folder: Path, result: dict) -> None:
    """Write a unit's CSVs (and trained model), then ``done.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in result["frames"].items():
        write_csv(frame, folder / f"{name}.csv")
    if result["model"] is not None:  # the trained model, for reuse (RNN.load, a "file:" state)
        result["model"].save(folder / "model.npz")
    write_atomic(folder / "done.json", json.dumps({"digest": unit["digest"], "params": unit["params"]},
                                                  indent=1, sort_keys=True, default=str))


def run_unit(spec: Spec, unit: dict, folder: Path) -> None:
    """Compute one dataset x state and write its CSVs, then ``done.json``."""
    ds, label = _load_unit_dataset(spec, unit["dataset"])
    write_unit(unit, folder, compute_unit(spec, unit, ds, label))


def _run_local(spec: Spec, unit: dict, folder: Path) -> None:
    run_unit(spec, unit, folder)


def _partition_task(spec: Spec, model, ds, lo: int, hi: int):
    """The mergeable statistics of sentences lo..hi-1 of a unit (a task of its own)."""
    from ..analysis.streaming import partition_stats
    part = ds.select(np.arange(lo, hi))
    return partition_stats(model, part.batch(spec.task), max_lag=spec.max_lag, block_schemes=spec.block_schemes,
                           deps=part.dependencies(spec.task))


def run_spec(spec: Spec, out_root: str | os.PathLike = "reports", *, progress: bool = True,
             render: bool = True, client=None, workers: int | None = None, scheduler: str | None = None,
             threads_per_worker: int | None = None) -> Path:
    """Compute every unit of ``spec`` not yet done, combine the CSVs and render the report.

    Units run in this process, or as tasks on a Dask cluster when ``client`` (a
    ``dask.distributed.Client``), ``workers`` (a local cluster of that many processes) or
    ``scheduler`` (an address; also ``$DASK_SCHEDULER_ADDRESS``) is given. Every result
    comes back here and is written at once, so a killed run loses only unfinished units.
    With ``spec.partition_size`` each unit is computed as partitions of sentences whose
    statistics are merged in order (memory bounded by the partition size). A unit that
    fails does not stop the others: :class:`gradlab.executor.UnitsFailed` is raised at
    the end. Returns the report folder.
    """
    from tqdm.auto import tqdm

    from ..executor import InProcess, TaskFailure, UnitsFailed, executor
    validate(spec)
    root = Path(out_root) / spec.name
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / "spec.toml", spec.to_toml())
    todo = units(spec)
    pending = [u for u in todo if not _is_done(root / "units" / u["slug"], u["digest"])]
    failures = []
    with executor(workers, scheduler, threads_per_worker, client) as ex, \
            tqdm(total=len(todo), initial=len(todo) - len(pending), desc=spec.name, unit="unit",
                 disable=not progress) as bar:

        def finished(unit, result):
            bar.set_postfix_str(f"{unit['dataset']} | {unit['state'].label}")
            if isinstance(result, TaskFailure):
                failures.append(result)
            elif result is not None:       # None: written by run_unit in this process
                write_unit(unit, root / "units" / unit["slug"], result)
            bar.update()

        names = [f"{u['dataset']} | {u['state'].label}" for u in pending]
        if spec.partition_size is None and isinstance(ex, InProcess):
            calls, fn = [(spec, u, root / "units" / u["slug"]) for u in pending], _run_local
        else:
            loaded = {}
            for u in pending:
                if u["dataset"] not in loaded:
                    ds, label = _load_unit_dataset(spec, u["dataset"])
                    loaded[u["dataset"]] = (ex.share(ds), label, ds)
            calls = [(spec, u, loaded[u["dataset"]][0], loaded[u["dataset"]][1]) for u in pending]
            fn = compute_unit
        if spec.partition_size is None:
            for i, result in ex.map(fn, calls, names):
                finished(pending[i], result)
        else:
            _run_partitioned(spec, pending, names, loaded, ex, finished)
    if failures:
        raise UnitsFailed(failures, len(todo))
    combine(root, [root / "units" / u["slug"] for u in todo])
    write_atomic(root / "manifest.json", json.dumps(
        {"gradlab_version": __version__, "seed": spec.seed, "spec": asdict(spec),
         "units": [{"dataset": u["dataset"], "state": u["state"].label, "digest": u["digest"]} for u in todo]},
        indent=1, default=str))
    if render:
        from .render import render_report
        render_report(root)
    return root


def _run_partitioned(spec: Spec, pending: list, names: list, loaded: dict, ex, finished) -> None:
    """Every pending unit as partition tasks; each unit's statistics merge in partition order."""
    from ..analysis.streaming import frames_from_stats, merge, partitions
    from ..executor import TaskFailure
    calls, owner = [], []
    models, parts_of, merged, next_part, failed = {}, {}, {}, {}, set()
    for j, u in enumerate(pending):
        handle, label, ds = loaded[u["dataset"]]
        try:
            model = _build_model(spec, u, ds)        # "train" states train here, in the client
        except Exception as exc:  # noqa: BLE001 - reported like any failing unit
            finished(u, TaskFailure.from_exception(names[j], exc))
            continue
        models[j] = model
        shared = ex.share(model)
        bounds = partitions(ds.n_sentences, spec.partition_size)
        parts_of[j], next_part[j], merged[j] = len(bounds), 0, None
        for p, (lo, hi) in enumerate(bounds):
            calls.append((spec, shared, handle, lo, hi))
            owner.append((j, p))
    waiting: dict = {}
    for i, result in ex.map(_partition_task, calls, [f"{names[j]} | part {p}" for j, p in owner]):
        j, p = owner[i]
        if j in failed:
            continue
        if isinstance(result, TaskFailure):
            failed.add(j)
            finished(pending[j], result)
            continue
        waiting[(j, p)] = result
        while (j, next_part[j]) in waiting:       # merge in partition order: the same bytes however scheduled
            st = waiting.pop((j, next_part[j]))
            merged[j] = st if merged[j] is None else merge(merged[j], st)
            next_part[j] += 1
        if next_part[j] == parts_of[j]:
            u = pending[j]
            frames = frames_from_stats(merged.pop(j), models[j], floor=spec.floor, max_tau=spec.max_lag)
            finished(u, {"frames": _labelled(frames, loaded[u["dataset"]][1], u["state"].label),
                         "model": models[j] if u["state"].kind == "train" else None})


def combine(root: Path, folders: list[Path]) -> dict[str, Path]:
    """Concatenate the units' CSVs (in spec order) into one CSV per frame.

    The units' files share one writer and one header per frame, so their text is
    joined as it is (header once) rather than parsed and formatted again.
    """
    written = {}
    for name in FRAMES:
        texts = [(f / f"{name}.csv").read_text(encoding="utf-8") for f in folders if (f / f"{name}.csv").exists()]
        if not texts:
            continue
        headers = {t.split("\n", 1)[0] for t in texts}
        if len(headers) != 1:
            raise ValueError(f"{root}: the units' {name}.csv files have different columns ({sorted(headers)}); "
                             "they were written by different gradlab versions — delete the units folder and rerun")
        header = headers.pop()
        body = "".join(t.split("\n", 1)[1] if "\n" in t else "" for t in texts)
        write_atomic(root / f"{name}.csv", header + "\n" + body)
        written[name] = root / f"{name}.csv"
    return written


def load_frames(root: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """Read the combined CSVs of a report folder."""
    root = Path(root)
    return {name: pd.read_csv(root / f"{name}.csv") for name in FRAMES if (root / f"{name}.csv").exists()}
