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


def unit_inputs(spec: Spec, unit: dict):
    """(dataset, dataset label, model, batch) of one unit, exactly as a run computes it."""
    from ..data import load_dataset
    ds = load_dataset(unit["dataset"])
    label = ds.label
    if spec.n_sentences is not None and spec.n_sentences < ds.n_sentences:
        ds = ds.select(np.arange(spec.n_sentences))
    model = unit["state"].build(len(ds.vocab), spec.hidden_size, ds.n_outputs(spec.task), key=unit["dataset"],
                                default_seed=spec.seed, dataset=ds, task=spec.task)
    return ds, label, model, ds.batch(spec.task)


def run_unit(spec: Spec, unit: dict, folder: Path) -> None:
    """Compute one dataset x state and write its CSVs, then ``done.json``."""
    ds, label, model, batch = unit_inputs(spec, unit)
    frames = analyse(model, batch, max_lag=spec.max_lag, deps=ds.dependencies(spec.task),
                     block_schemes=spec.block_schemes, floor=spec.floor, per_sentence=spec.per_sentence)
    for name, frame in frames.items():
        frame = frame.copy()
        frame.insert(0, "state", unit["state"].label)
        frame.insert(0, "dataset", label)
        write_csv(frame, folder / f"{name}.csv")
    if unit["state"].kind == "train":  # the trained model, for reuse (RNN.load, a "file:" state)
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / "model.npz")
    write_atomic(folder / "done.json", json.dumps({"digest": unit["digest"], "params": unit["params"]},
                                                  indent=1, sort_keys=True, default=str))


def run_spec(spec: Spec, out_root: str | os.PathLike = "reports", *, progress: bool = True,
             render: bool = True) -> Path:
    """Compute every unit of ``spec`` not yet done, combine the CSVs and render the report.

    Returns the report folder.
    """
    from tqdm.auto import tqdm
    validate(spec)
    root = Path(out_root) / spec.name
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / "spec.toml", spec.to_toml())
    todo = units(spec)
    bar = tqdm(todo, desc=f"{spec.name}", unit="unit", disable=not progress)
    for unit in bar:
        folder = root / "units" / unit["slug"]
        bar.set_postfix_str(f"{unit['dataset']} | {unit['state'].label}")
        if _is_done(folder, unit["digest"]):
            continue
        run_unit(spec, unit, folder)
    combine(root, [root / "units" / u["slug"] for u in todo])
    write_atomic(root / "manifest.json", json.dumps(
        {"gradlab_version": __version__, "seed": spec.seed, "spec": asdict(spec),
         "units": [{"dataset": u["dataset"], "state": u["state"].label, "digest": u["digest"]} for u in todo]},
        indent=1, default=str))
    if render:
        from .render import render_report
        render_report(root)
    return root


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
