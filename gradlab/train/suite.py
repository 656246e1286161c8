"""Study suites: one training study per (task, distance distribution), run and combined.

A suite spec is a TOML file with the keys every study shares (any key of a training
spec, :class:`gradlab.train.study.TrainSpec`, except ``name``, ``train``, ``dev``,
``task``, ``eval_tasks``, ``distribution`` and ``min_distance``), a list
``distributions`` (``"longest"``: the train spec as given, all sentences at its
distance; ``"uniform"``: uniform on min_distance..distance; ``"curriculum"``: that uniform
data short to long, see TrainSpec) and one ``[[tasks]]`` table per task with ``name``,
``train``, ``dev``, ``task``, ``min_distance`` and optionally ``eval_tasks``.
``analyses/truncation-learning.toml`` is one.

``gradlab train SUITE [--quick]`` writes ``reports/<suite>/<task>-<distribution>/`` (each a
complete study with its own index.html) and, at the top, the studies' CSVs combined with
the columns ``part`` (the task's name) and ``distribution`` in front, plus ``index.html``.
Finished runs are skipped and interrupted ones resume, as in every study.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..report.frames import SUITE, frames_of
from .study import TrainSpec, run_study, train_spec_from_dict

__all__ = ["Suite", "SuitePlan", "is_suite_spec", "suite_from_dict", "load_suite", "plan_suite", "run_suite",
           "SUITE_DISTRIBUTIONS"]

#: Distance distributions of a suite and the TrainSpec distribution each becomes.
SUITE_DISTRIBUTIONS = {"longest": "fixed", "uniform": "uniform", "curriculum": "curriculum"}
_TASK_KEYS = {"name": str, "train": str, "dev": str, "task": str, "min_distance": int, "eval_tasks": list}
_PER_TASK = ("name", "train", "dev", "task", "eval_tasks", "distribution", "min_distance")


@dataclass(frozen=True)
class Suite:
    """A validated suite: its name, title and the studies it runs (in order)."""

    name: str
    title: str
    studies: tuple
    distributions: tuple
    parts: tuple
    text: dict = field(default_factory=dict, compare=False)

    def quick(self) -> "Suite":
        """Smoke version: every study's ``quick()`` with its first seed only."""
        return replace(self, studies=tuple(replace(s.quick(), seeds=s.seeds[:1]) for s in self.studies))


def is_suite_spec(data: dict) -> bool:
    """Suites list their parts in ``[[tasks]]`` tables."""
    return "tasks" in data


def suite_from_dict(data: dict, source: str = "suite spec") -> Suite:
    """Build and validate every study of a suite before any work; errors name ``source``, the part and the key."""
    data = dict(data)
    name = data.pop("name", "suite")
    parts = data.pop("tasks", None)
    dists = data.pop("distributions", None)
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        raise ValueError(f"{source}: tasks must be a list of [[tasks]] tables (name, train, dev, task, min_distance)")
    if not isinstance(dists, list) or not dists or any(d not in SUITE_DISTRIBUTIONS for d in dists) \
            or len(set(dists)) != len(dists):
        raise ValueError(f"{source}: distributions must be a list of distinct values from "
                         f"{tuple(SUITE_DISTRIBUTIONS)}; received {dists!r}")
    shared = sorted(set(data) & set(_PER_TASK))
    if shared:
        raise ValueError(f"{source}: key(s) {shared} belong in each [[tasks]] table, not at the top")
    title = data.get("title", "Training suite")
    studies, names = [], []
    for i, part in enumerate(parts):
        where = f"{source}: tasks[{i}]"
        unknown = sorted(set(part) - set(_TASK_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_TASK_KEYS)}")
        for key in ("name", "train", "task"):
            if key not in part:
                raise ValueError(f"{where}: needs {key!r}")
        if part["name"] in names:
            raise ValueError(f"{where}: name {part['name']!r} is used twice")
        names.append(part["name"])
        for dist in dists:
            table = dict(data, **{k: v for k, v in part.items() if k not in ("name", "min_distance")})
            table["name"] = f"{part['name']}-{dist}"
            table["title"] = f"{title}: {part['name']}, {dist} distances"
            table["distribution"] = SUITE_DISTRIBUTIONS[dist]
            if dist != "longest":
                if "min_distance" not in part:
                    raise ValueError(f"{where}: distribution {dist!r} needs min_distance in the [[tasks]] table")
                table["min_distance"] = part["min_distance"]
            studies.append(train_spec_from_dict(table, source=f"{where} ({part['name']}, {dist})"))
    return Suite(name, title, tuple(studies), tuple(dists), tuple(names), {"source": source})


def load_suite(path_or_name) -> Suite:
    """Read a suite TOML from a path, or from ``analyses/`` by name."""
    from ..report.spec import read_spec_file
    path, data = read_spec_file(path_or_name)
    if not is_suite_spec(data):
        raise ValueError(f"{path} is not a suite (it has no [[tasks]] tables); run it with `gradlab train {path}`")
    return suite_from_dict(data, str(path))


def _part_and_distribution(suite: Suite, spec: TrainSpec) -> tuple[str, str]:
    inverse = {v: k for k, v in SUITE_DISTRIBUTIONS.items()}
    dist = inverse[spec.distribution]
    return spec.name[: -len(dist) - 1], dist


@dataclass
class SuitePlan:
    """The plans of a suite's studies (every check of every study, before any training)."""

    root: Path
    plans: list

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.plans)


def plan_suite(suite: Suite, out_root: str | os.PathLike = "reports", *, source: str = "suite spec") -> SuitePlan:
    """Plan every study of ``suite`` (:func:`gradlab.train.study.plan_study`): raises before any work."""
    from .study import plan_study
    root = Path(out_root) / suite.name
    return SuitePlan(root, [plan_study(s, root, source=f"{source} ({s.name})") for s in suite.studies])


def run_suite(suite: Suite, out_root: str | os.PathLike = "reports", *, progress: bool = True, wait: bool = False,
              log=None, client=None, workers: int | None = None, scheduler: str | None = None,
              threads_per_worker: int | None = None) -> Path:
    """Run every study of ``suite`` not yet done, combine their CSVs, and render the suite's page.

    ``wait``, ``log`` and the Dask options (``client``, ``workers``, ``scheduler``,
    ``threads_per_worker``) as for :func:`gradlab.train.study.run_study`; one cluster serves
    every study. A study whose runs fail does not stop the others:
    :class:`gradlab.executor.UnitsFailed` names every failed run at the end.
    """
    from ..executor import UnitsFailed, executor
    from ..report.pipeline import write_atomic, write_csv
    from ..report.plan import output_lock
    plans = plan_suite(suite, out_root).plans
    root = Path(out_root) / suite.name
    root.mkdir(parents=True, exist_ok=True)
    with output_lock(root, wait=wait), executor(workers, scheduler, threads_per_worker, client) as ex:
        folders, failures = [], []
        for spec in suite.studies:
            try:
                folders.append((spec, run_study(spec, root, progress=progress, wait=wait, log=log, client=ex)))
            except UnitsFailed as exc:     # the run names repeat across studies: say which study
                failures += [replace(f, name=f"{spec.name}/{f.name}") for f in exc.failures]
        if failures:
            raise UnitsFailed(failures, sum(len(p.runs) for p in plans), what="run")
        for name in [f.name for f in frames_of(SUITE)]:
            parts = []
            for spec, folder in folders:
                if (folder / f"{name}.csv").exists():
                    frame = pd.read_csv(folder / f"{name}.csv")
                    part, dist = _part_and_distribution(suite, spec)
                    frame.insert(0, "distribution", dist)
                    frame.insert(0, "part", part)
                    parts.append(frame)
            if parts:
                write_csv(pd.concat(parts, ignore_index=True), root / f"{name}.csv")
        write_atomic(root / "manifest.json", json.dumps(
            {"suite": suite.name, "title": suite.title, "parts": list(suite.parts),
             "distributions": list(suite.distributions),
             "studies": [{"name": s.name, "spec": asdict(s)} for s in suite.studies]}, indent=1, default=str))
        render_suite(root)
    return root


def render_suite(folder: str | os.PathLike) -> Path:
    """Write the suite's figures and ``index.html`` from its combined CSVs (one renderer: render)."""
    from ..report.render import render
    return render(folder, "suite")
