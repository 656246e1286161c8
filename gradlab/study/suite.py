"""Study suites: one training study per (task, distance distribution), run and combined.

The suite spec (:class:`gradlab.study.spec.Suite`) lists the keys every study shares, the
``distributions`` and one ``[[tasks]]`` table per task; ``analyses/truncation-learning.toml``
is one.

``gradlab train SUITE [--quick]`` writes ``reports/<suite>/<task>-<distribution>/`` (each a
complete study with its own index.html) and, at the top, the studies' CSVs combined with
the columns ``part`` (the task's name) and ``distribution`` in front, plus ``index.html``.
Finished runs are skipped and interrupted ones resume, as in every study: the suite is run
by the same runner (:mod:`gradlab.study.runner`) with the studies as its units.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..report.frames import SUITE, frames_of
from . import runner
from .runner import RunPlan, write_atomic, write_csv
from .spec import SUITE_DISTRIBUTIONS, Suite, TrainSpec, is_suite_spec, load_suite, suite_from_dict

__all__ = ["Suite", "SuitePlan", "is_suite_spec", "suite_from_dict", "load_suite", "plan_suite", "run_suite",
           "render_suite", "SUITE_DISTRIBUTIONS"]



def _part_and_distribution(suite: Suite, spec: TrainSpec) -> tuple[str, str]:
    inverse = {v: k for k, v in SUITE_DISTRIBUTIONS.items()}
    dist = inverse[spec.distribution]
    return spec.name[: -len(dist) - 1], dist


@dataclass
class SuitePlan(RunPlan):
    """The plans of a suite's studies (every check of every study, before any training); its units are the
    studies, each run by the runner in turn."""

    root: Path
    plans: list
    suite: Suite | None = None
    #: How each study runs (run_suite's options).
    wait: bool = False
    progress: bool = True
    log: object = None

    what = "run"
    bar = False          # each study shows its own progress and logs its own runs
    log_units = False

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.plans)

    # the runner's hooks (gradlab.study.runner)
    @property
    def spec(self) -> Suite:
        return self.suite

    @property
    def units(self) -> list:
        return [{"status": "compute", "plan": p} for p in self.plans]

    @property
    def n_units(self) -> int:
        return sum(len(p.runs) for p in self.plans)

    def unit_name(self, unit: dict) -> str:
        return unit["plan"].spec.name

    def start(self) -> None:
        self.folders = []

    def map(self, todo: list, ex, finished) -> None:
        from ..executor import UnitsFailed
        for unit in todo:
            p = unit["plan"]
            try:
                self.folders.append((p.spec, runner.run(p, progress=self.progress, wait=self.wait, log=self.log,
                                                        client=ex)))
            except UnitsFailed as exc:     # the run names repeat across studies: say which study
                finished(unit, [replace(f, name=f"{p.spec.name}/{f.name}") for f in exc.failures])
            else:
                finished(unit, None)

    def finish(self) -> None:
        suite, root = self.suite, self.root
        for name in [f.name for f in frames_of(SUITE)]:
            parts = []
            for spec, folder in self.folders:
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
             "studies": [{"name": s.name, "spec": s.recorded()} for s in suite.studies]}, indent=1, default=str))

    def render(self) -> None:
        render_suite(self.root)


def plan_suite(suite: Suite, out_root: str | os.PathLike = "reports", *, source: str = "suite spec") -> SuitePlan:
    """Plan every study of ``suite`` (:func:`gradlab.study.training.plan_study`): raises before any work."""
    from .training import plan_study
    root = Path(out_root) / suite.name
    return SuitePlan(root, [plan_study(s, root, source=f"{source} ({s.name})") for s in suite.studies], suite)


def run_suite(suite: Suite, out_root: str | os.PathLike = "reports", *, progress: bool = True, wait: bool = False,
              log=None, client=None, workers: int | None = None, scheduler: str | None = None,
              threads_per_worker: int | None = None) -> Path:
    """Run every study of ``suite`` not yet done, combine their CSVs, and render the suite's page.

    ``wait``, ``log`` and the Dask options (``client``, ``workers``, ``scheduler``,
    ``threads_per_worker``) as for :func:`gradlab.study.training.run_study`; one cluster serves
    every study. A study whose runs fail does not stop the others:
    :class:`gradlab.executor.UnitsFailed` names every failed run at the end.
    """
    p = replace(plan_suite(suite, out_root), wait=wait, progress=progress, log=log)
    p.root.mkdir(parents=True, exist_ok=True)
    return runner.run(p, wait=wait, log=log, client=client, workers=workers, scheduler=scheduler,
                      threads_per_worker=threads_per_worker)


def render_suite(folder: str | os.PathLike) -> Path:
    """Write the suite's figures and ``index.html`` from its combined CSVs (one renderer: render)."""
    from ..report.render import render
    return render(folder, "suite")
