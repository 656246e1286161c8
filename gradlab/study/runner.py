"""The one resumable runner of reports, training studies and suites.

A study is planned first (every check before any work: :mod:`gradlab.study.plan`), then::

    lock the output folder -> write spec.toml -> the executor maps the units that are not done
    -> each finished unit is written atomically, its done marker last -> combine the units' tables
    -> manifest.json -> render the figures and index.html

A *unit* is a report's dataset x model state, a training study's run, or a suite's study.
The kinds differ only in their plan (:class:`RunPlan` subclasses: what a unit computes, how
its result is written and combined); this loop is the same for all, and it is the loop an
executor (:mod:`gradlab.executor`: this process, or a Dask cluster) runs: the runner hands
it one task per unit and writes every result where it runs. A unit that raises does not
stop the others: :class:`gradlab.executor.UnitsFailed` names them once the others are written.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from .._io import atomic_write
from .plan import output_lock

#: Name of the file that marks a unit's folder as finished (written last, holding the unit's key).
DONE = "done.json"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    atomic_write(path, text.encode("utf-8"))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """A table as CSV (floats with 10 significant digits, ``\\n`` line ends), atomically."""
    write_atomic(path, frame.to_csv(index=False, float_format="%.10g", lineterminator="\n"))


def slug(text: str) -> str:
    """A folder name made of ``text``: runs of other characters become ``_``, at most 80 characters."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")[:80]


def done_key(folder: Path, field: str = "key") -> str | None:
    """The key in a unit folder's done marker (None: not finished, or unreadable)."""
    try:
        return json.loads((folder / DONE).read_text())[field]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_done(folder: Path, key: str, field: str = "key") -> bool:
    """Whether ``folder`` holds a finished unit with this key."""
    return done_key(folder, field) == key


def write_done(folder: Path, key: str, params: dict, field: str = "key") -> None:
    """Mark a unit folder finished: its done marker, holding the key and parameters, written last."""
    write_atomic(folder / DONE, json.dumps({field: key, "params": params}, indent=1, sort_keys=True, default=str))


class RunPlan:
    """What the runner needs of a planned study; the kinds of plan override the hooks.

    Attributes a subclass provides: ``root`` (the output folder), ``spec``, ``units`` (each
    with a ``["status"]`` of "reuse" or "compute" once planned).
    """

    #: What a unit is called in messages ("unit", "run", ...).
    what = "unit"
    #: Show a progress bar, and log one line per unit (reused or computed).
    bar = True
    log_units = True

    @property
    def n_units(self) -> int:
        """Units counted in :class:`~gradlab.executor.UnitsFailed`'s message."""
        return len(self.units)

    def refresh(self) -> None:
        """Decide again which units are done (another run may have finished some while this one waited)."""

    def unit_name(self, unit) -> str:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def start(self) -> None:
        """Before any unit: write the exact spec."""
        write_atomic(self.root / "spec.toml", self.spec.to_toml())

    def calls(self, todo: list, ex) -> tuple:  # pragma: no cover - every kind overrides it or map
        """(function, one argument tuple per unit): the tasks the executor runs."""
        raise NotImplementedError

    def map(self, todo: list, ex, finished) -> None:
        """Run ``todo`` on the executor; ``finished(unit, result)`` as each ends (a TaskFailure when it raised)."""
        fn, calls = self.calls(todo, ex)
        for i, result in ex.map(fn, calls, [self.unit_name(u) for u in todo]):
            finished(todo[i], result)

    def done(self, unit, result) -> None:
        """A unit finished: write what came back (when it was computed elsewhere) and note its result."""

    def finish(self) -> None:  # pragma: no cover - every kind overrides it
        """Every unit is done: combine their tables and write the manifest."""
        raise NotImplementedError

    def render(self) -> None:  # pragma: no cover - every kind overrides it
        raise NotImplementedError


def run(plan: RunPlan, *, progress: bool = True, render: bool = True, wait: bool = False, log=None, client=None,
        workers: int | None = None, scheduler: str | None = None, threads_per_worker: int | None = None) -> Path:
    """Run a planned study: lock its folder, compute the units not done, combine, render; returns the folder.

    ``wait``: when another gradlab run holds the folder, wait for it instead of stopping with
    an error that names its pid. ``log`` receives one line per unit: reused or computed.
    ``client``, ``workers``, ``scheduler``, ``threads_per_worker``: where the units run
    (:func:`gradlab.executor.executor`).
    """
    from ..executor import executor
    with output_lock(plan.root, wait=wait):
        plan.refresh()
        with executor(workers, scheduler, threads_per_worker, client) as ex:
            return execute(plan, ex, progress=progress, render=render, log=log)


def execute(plan: RunPlan, ex, *, progress: bool = True, render: bool = True, log=None) -> Path:
    """The loop of :func:`run` (the folder locked, the executor ``ex`` open)."""
    from tqdm.auto import tqdm

    from ..executor import TaskFailure, UnitsFailed
    plan.start()
    units = plan.units
    todo = [u for u in units if u["status"] != "reuse"]
    log = log if plan.log_units else None
    failures = []
    with tqdm(total=len(units), initial=len(units) - len(todo), desc=plan.spec.name, unit=plan.what,
              disable=not (progress and plan.bar)) as bar:
        if log is not None:
            for u in units:
                if u["status"] == "reuse":
                    log(f"reused: {plan.unit_name(u)}")

        def finished(unit, result) -> None:
            bar.set_postfix_str(plan.unit_name(unit))
            if isinstance(result, TaskFailure):
                result = [result]
            if isinstance(result, list):      # the unit raised (a study of a suite: the runs that did)
                failures.extend(result)
            else:
                plan.done(unit, result)
                if log is not None:
                    log(f"computed: {plan.unit_name(unit)}")
            bar.update()

        plan.map(todo, ex, finished)
    if failures:
        raise UnitsFailed(failures, plan.n_units, what=plan.what)
    plan.finish()
    if render:
        plan.render()
    return plan.root
