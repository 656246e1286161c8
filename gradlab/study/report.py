"""Reports: one unit of work per dataset x model state of a :class:`~gradlab.study.spec.ReportSpec`, planned
first, run by the one resumable runner (:mod:`gradlab.study.runner`), written atomically.

Layout of ``<out>/<spec.name>/``::

    spec.toml                 the exact spec
    manifest.json             gradlab version, seed, and every unit's key and input-file hashes
    units/<slug>/done.json    one folder per dataset x state; done.json (the unit's key) is written last
    <frame>.csv[.gz]          every unit's rows, with dataset and state columns (the only copy)
    timings.csv               per unit: reused or computed, seconds (the one file that changes between runs)
    <figure>.png, <figure>.svg
    index.html

Before any work, :func:`plan` checks everything (spec keys, every dataset and model
file, model sizes against datasets, the output folder, each unit's estimated memory
against ``max_memory``). A unit's key covers everything its result depends on (the
canonical dataset and state texts, the bytes of the files it reads, the options and
the gradlab version): a unit whose ``done.json`` holds its key is reused, any other is
computed, so a changed input recomputes exactly the units that read it. A unit's
tables wait in its folder until they are merged into the combined tables, then are
removed; an interrupted run (Ctrl-C, ``kill -9``) resumes where it stopped.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from .._io import atomic_write
from ..analysis.study import analyse
from ..report.frames import COMPRESSED, FRAMES, load_frames, table_name
from .plan import (Estimate, PlanError, check_memory, check_writable, dataset_inputs, describe, estimate_analysis,
                   file_sha256, memory_limit, unit_key)
from . import runner
from .runner import RunPlan, done_key, slug, write_atomic, write_csv, write_done
from .spec import ReportSpec, Spec, validate
from .states import ELMAN, build_state, estimated_size, load_model, model_cell, state_cells

__all__ = ["Plan", "Unit", "plan", "units", "run_spec", "unit_inputs", "compute_unit", "write_unit", "run_unit",
           "combine", "load_frames", "table_name", "FRAMES", "COMPRESSED", "write_atomic", "write_csv", "Spec",
           "ReportSpec"]

#: Options of a spec that change no number (presentation, resources), or that the unit records itself (its
#: own cell of the spec's list): not part of a unit's key.
_NOT_IN_KEY = ("name", "title", "datasets", "states", "max_memory", "cell")


def encode_table(text: str, gz: bool) -> bytes:
    """UTF-8 bytes, gzip-compressed with no time stamp or file name when ``gz`` (same text, same bytes)."""
    data = text.encode("utf-8")
    return gzip.compress(data, compresslevel=6, mtime=0) if gz else data


def read_table_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


@dataclass
class Unit:
    """One dataset x model state of a spec.

    ``dataset`` and ``state.label`` are the canonical texts used in the tables'
    dataset and state columns; ``cell`` the cell of the model ("elman": :class:`gradlab.RNN`), in the
    tables' cell column when the spec names other cells (``cell_column``; an Elman-only spec's tables have
    none); ``key`` is the content key; ``status`` is "reuse" or "compute" once planned.
    """

    dataset: str
    state: object
    params: dict
    key: str
    slug: str
    data: object = field(default=None, repr=False)
    estimate: object = None
    status: str = "compute"
    cell: str = "elman"
    cell_column: bool = False

    def __getitem__(self, name):  # dict-style access, as older code and tests use
        return getattr(self, name)

    @property
    def labels(self) -> dict:
        """The columns that say which unit a row belongs to: dataset, cell (when the spec has cells), state."""
        return {"dataset": self.dataset, **({"cell": self.cell} if self.cell_column else {}),
                "state": self.state.label}

    @property
    def name(self) -> str:
        """The unit as the progress lines and errors name it: ``dataset | [cell | ]state``."""
        return " | ".join(self.labels.values())


def units(spec: Spec) -> list[Unit]:
    """The dataset x state (x cell) work items of a spec in spec order, with their parameters and keys.

    With several cells, each state is analysed for every cell (a "file" state for the cell its
    file holds), the cells of a state next to each other. Reads (hashes) every file the units
    depend on (and reads the cell of each model file when the spec has cells), and nothing else.
    """
    from ..data import canonical_spec
    options = {k: v for k, v in spec.recorded().items() if k not in _NOT_IN_KEY}
    cells = spec.has_cells
    out = []
    for text in spec.datasets:
        dataset = canonical_spec(text)
        inputs_d = dataset_inputs(dataset)
        for state in spec.model_states():
            inputs = dict(inputs_d)
            if state.kind == "file":
                inputs["model"] = file_sha256(state.path)
            for cell in (state_cells(state, spec.cells) if cells else spec.cells):
                own = {"cell": cell} if cells else {}      # Elman-only specs keep their keys and folders
                params = {"dataset": dataset, "state": state.canonical, "state_values": asdict(state),
                          "inputs": inputs, **options, **own, "version": __version__}
                name = f"{dataset}|{state.canonical}|{state.label}" + (f"|{cell}" if cells else "")
                ident = hashlib.sha256(name.encode()).hexdigest()[:8]
                out.append(Unit(dataset, state, params, unit_key(params),
                                f"{slug(dataset)}__{slug(cell) + '__' if cells else ''}{slug(state.label)}__{ident}",
                                cell=cell, cell_column=cells))
    return out


@dataclass
class Plan(RunPlan):
    """What a run of a spec will do: its folder, its units (reuse or compute, with estimates) and the limit."""

    spec: Spec
    root: Path
    units: list
    limit: tuple
    seconds: dict = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """A table of the units: sizes, estimated peak memory and time, reuse or compute."""
        rows = []
        for u in self.units:
            b = u.data.batch(self.spec.task)
            sizes = f"N = {b.n_tokens} tokens in {b.n_sentences} sentences, T <= {int(np.diff(b.offsets).max())}"
            rows.append((u.status, u.name, sizes, u.estimate))
        return describe(self.root, self.limit, rows)

    # the runner's hooks (gradlab.study.runner)
    def refresh(self) -> None:
        _set_status(self)

    def unit_name(self, unit: Unit) -> str:
        return unit.name

    def start(self) -> None:
        super().start()
        self.seconds = {u.key: 0.0 for u in self.units if u.status == "reuse"}

    def map(self, todo: list, ex, finished) -> None:
        if self.spec.partition_size is not None:
            _run_partitioned(self.spec, todo, [self.unit_name(u) for u in todo], ex, finished)
        else:
            super().map(todo, ex, finished)

    def calls(self, todo: list, ex) -> tuple:
        from ..executor import InProcess
        spec, root = self.spec, self.root
        if isinstance(ex, InProcess):     # computed and written in this process
            return _run_local, [(spec, u, root / "units" / u.slug) for u in todo]
        shared = {}                       # each dataset is sent to the cluster once
        for u in todo:
            if id(u.data) not in shared:
                shared[id(u.data)] = ex.share(u.data)
        return compute_unit, [(spec, replace(u, data=None), shared[id(u.data)]) for u in todo]

    def done(self, unit: Unit, result: dict) -> None:
        if "frames" in result:     # computed elsewhere: written here
            write_unit(unit, self.root / "units" / unit.slug, result)
        self.seconds[unit.key] = result["seconds"]

    def finish(self) -> None:
        _finish(self)

    def render(self) -> None:
        from ..report.render import render_report
        render_report(self.root)


def _state_size(state, spec: Spec, models: dict, cell: str = ELMAN) -> int:
    size = models[state.path].hidden_size if state.kind == "file" else spec.hidden_size
    return estimated_size(cell, size, spec.num_layers)


def plan(spec: Spec, out_root: str | os.PathLike = "reports", *, source: str = "spec") -> Plan:
    """Check everything a run of ``spec`` needs, before any work: raises :class:`PlanError` (a ValueError).

    Validates the spec; checks the output folder can be written; opens every dataset
    (file datasets are read and parsed) and model file; checks each model's |V| and
    |O| against each dataset; estimates each unit's peak memory and time from its
    sizes (N, T, K, H, |V|) and refuses a unit above the memory limit (``max_memory``,
    default half of this machine's RAM) — data too large even to generate is refused
    from its estimated size, before it is generated.
    """
    from ..data import canonical_spec, check_spec, estimated_tokens, load_dataset
    validate(spec, source)
    root = Path(out_root) / spec.name
    check_writable(root)
    limit = memory_limit(spec.max_memory)
    try:
        todo = units(spec)
    except OSError as exc:
        raise PlanError(f"{source}: cannot read an input file: {exc}") from None
    K = spec.max_lag
    now = f"now {spec.n_sentences or 'all'} sentences, K = {K}"
    tail = ", or set per_sentence = false" if spec.per_sentence else ""
    fix = f"lower n_sentences or max_lag ({now}){tail}"
    models = {}
    for state in spec.model_states():
        if state.kind == "file" and state.path not in models:
            try:
                models[state.path] = load_model(state.path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise PlanError(f"{source}: states: model file {state.path} cannot be loaded ({exc}); give a "
                                "file written by RNN.save or CellModel.save") from None
    loaded = {}
    for text in spec.datasets:
        dataset = canonical_spec(text)
        guess = estimated_tokens(dataset)
        if guess is not None:
            n_full = check_spec(dataset)[1]["n"]
            n = min(spec.n_sentences or n_full, n_full)
            tokens = guess * n // n_full
            for state in spec.model_states():
                est = _estimate_unit(spec, n, tokens, tokens, n,
                                     max(_state_size(state, spec, models, c) for c in spec.cells), 1, 1)
                check_memory(f"{source}: datasets: {text!r} (about {tokens:,} tokens, before generating it)", est,
                             limit, f"lower n_sentences, the dataset's n or its distance/length, or max_lag "
                                    f"({now}){tail}")
        try:
            ds = load_dataset(dataset)
        except (ValueError, TypeError, OSError, IndexError) as exc:
            raise PlanError(f"{source}: datasets: {text!r}: {exc}") from None
        if spec.n_sentences is not None and spec.n_sentences < ds.n_sentences:
            ds = ds.select(np.arange(spec.n_sentences))
        loaded[dataset] = ds
    for u in todo:
        ds = loaded[u.dataset]
        n_out = ds.n_outputs(spec.task)
        if u.state.kind == "file":
            m = models[u.state.path]
            if model_cell(m)[0] != u.cell:
                raise PlanError(f"{source}: states: model file {u.state.path} holds a {model_cell(m)[0]!r} "
                                f"model; the spec's cell is {spec.cell!r}")
            if (m.vocab_size, m.output_size) != (len(ds.vocab), n_out):
                raise PlanError(f"{source}: states: model file {u.state.path} has |V| = {m.vocab_size}, "
                                f"|O| = {m.output_size}, but dataset {u.dataset!r} with task {spec.task!r} needs "
                                f"|V| = {len(ds.vocab)}, |O| = {n_out}; use a model saved for this dataset's "
                                "vocabulary (and task), or drop the state")
        batch = ds.batch(spec.task)
        deps = ds.dependencies(spec.task)
        u.data = ds
        u.estimate = _estimate_unit(spec, batch.n_sentences, batch.n_tokens, int((batch.targets >= 0).sum()),
                                    len(deps), _state_size(u.state, spec, models, u.cell), len(ds.vocab), n_out)
        check_memory(f"{source}: unit {u.name} ({batch.n_tokens:,} tokens, "
                     f"{batch.n_sentences} sentences)", u.estimate, limit, fix)
    p = Plan(spec, root, todo, limit)
    _set_status(p)
    return p


def _estimate_unit(spec: Spec, n: int, N: int, L: int, n_deps: int, hidden_size: int, vocab_size: int,
                   output_size: int):
    """A unit's estimated peak memory and time from its sentences n, tokens N and losses L; with
    ``partition_size``, one partition's memory at a time (besides the dataset itself) and every
    partition's time."""
    part = 1.0 if spec.partition_size is None else min(1.0, spec.partition_size / max(n, 1))
    est = estimate_analysis(n_tokens=int(N * part), n_losses=int(L * part), n_sentences=max(1, int(n * part)),
                            max_lag=spec.max_lag, hidden_size=hidden_size, vocab_size=vocab_size,
                            output_size=output_size, n_dependencies=int(n_deps * part),
                            per_sentence=spec.per_sentence, n_schemes=len(spec.block_schemes))
    if part == 1.0:
        return est
    return Estimate(est.memory + 8 * 10 * N, est.seconds / part)


def _set_status(p: Plan) -> None:
    combined = _combined_keys(p.root)
    for u in p.units:
        folder = p.root / "units" / u.slug
        has_rows = (folder / "summary.csv").exists() or u.key in combined
        u.status = "reuse" if done_key(folder) == u.key and has_rows else "compute"


def _combined_keys(root: Path) -> set:
    """Keys of the units whose rows the combined tables hold (from manifest.json)."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
        if not all((root / table_name(n)).exists() for n in manifest.get("tables", [])):
            return set()
        return {u["key"] for u in manifest["units"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def unit_inputs(spec: Spec, unit: Unit):
    """(dataset, dataset label, model, batch) of one unit, exactly as a run computes it."""
    from ..data import load_dataset
    ds = unit.data
    if ds is None:
        ds = load_dataset(unit.dataset)
        if spec.n_sentences is not None and spec.n_sentences < ds.n_sentences:
            ds = ds.select(np.arange(spec.n_sentences))
    model = build_state(unit.state, len(ds.vocab), spec.hidden_size, ds.n_outputs(spec.task), key=unit.dataset,
                        default_seed=spec.seed, dataset=ds, task=spec.task, dtype=spec.dtype, cell=unit.cell,
                        num_layers=spec.num_layers)
    return ds, unit.dataset, model, ds.batch(spec.task)


def _labelled(frames: dict, unit: Unit) -> dict:
    """The unit's tables with its label columns (:attr:`Unit.labels`) in front."""
    out = {}
    for name, frame in frames.items():
        frame = frame.copy()
        for i, (column, value) in enumerate(unit.labels.items()):
            frame.insert(i, column, value)
        out[name] = frame
    return out


def compute_unit(spec: Spec, unit: Unit, data=None) -> dict:
    """Analyse one dataset x state, where the executor runs it; :func:`write_unit` writes the result.

    ``data``: the unit's dataset (sent once to a cluster's workers); default ``unit.data``.

    Returns
    -------
    dict
        ``frames`` (the report's tables with their dataset and state columns), ``model``
        (the trained model of a "train" state, else None) and ``seconds``.
    """
    t0 = time.perf_counter()
    if data is not None:
        unit = replace(unit, data=data)
    ds, label, model, batch = unit_inputs(spec, unit)
    # the dependency signal is measured for the Elman cell only: the other cells' units have no such rows
    deps = ds.dependencies(spec.task) if unit.cell == ELMAN else None
    frames = analyse(model, batch, max_lag=spec.max_lag, deps=deps, block_schemes=spec.block_schemes,
                     floor=spec.floor, per_sentence=spec.per_sentence)
    return {"frames": _labelled(frames, unit),
            "model": model if unit.state.kind == "train" else None, "seconds": time.perf_counter() - t0}


def write_unit(unit: Unit, folder: Path, result: dict) -> None:
    """Write a unit's tables (and trained model) into its folder, then ``done.json``."""
    with contextlib.suppress(FileNotFoundError):
        (folder / "done.json").unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in result["frames"].items():
        write_csv(frame, folder / f"{name}.csv")
    if result["model"] is not None:  # the trained model, for reuse (RNN.load or CellModel.load, a "file:" state)
        result["model"].save(folder / "model.npz")
    write_done(folder, unit.key, unit.params)


def run_unit(spec: Spec, unit: Unit, folder: Path) -> None:
    """Compute one dataset x state and write its tables into its folder, then ``done.json``."""
    write_unit(unit, folder, compute_unit(spec, unit))


def _run_local(spec: Spec, unit: Unit, folder: Path) -> dict:
    """A unit in this process: computed and written by :func:`run_unit`."""
    t0 = time.perf_counter()
    run_unit(spec, unit, folder)
    return {"seconds": time.perf_counter() - t0}


def _partition_task(spec: Spec, model, part):
    """The mergeable statistics of one partition of a unit's sentences (a task of its own); the dependency
    signal for the Elman cell only, as in memory."""
    from ..analysis.streaming import partition_stats
    from ..cellmodel import CellModel
    deps = None if isinstance(model, CellModel) else part.dependencies(spec.task)
    return partition_stats(model, part.batch(spec.task), max_lag=spec.max_lag, block_schemes=spec.block_schemes,
                           deps=deps)


def run_spec(spec: Spec, out_root: str | os.PathLike = "reports", *, progress: bool = True,
             render: bool = True, wait: bool = False, log=None, client=None, workers: int | None = None,
             scheduler: str | None = None, threads_per_worker: int | None = None) -> Path:
    """Plan, then compute every unit of ``spec`` whose key is not done, combine the tables and render.

    Parameters
    ----------
    spec : Spec
    out_root : path
        The report goes to ``out_root / spec.name``.
    progress : bool
        A progress bar (it counts finished units, on a cluster too).
    render : bool
        Draw the figures and index.html.
    wait : bool
        When another run holds the folder: wait for it (True) or stop with an error naming
        its pid (False).
    log : callable, optional
        Receives one line per unit: reused or computed.
    client : dask.distributed.Client, optional
        Run the units as tasks on this Dask cluster. Or ``workers``: a local cluster of
        that many processes; or ``scheduler``: an existing cluster's address (also
        ``$DASK_SCHEDULER_ADDRESS``); ``threads_per_worker``: Numba/BLAS threads per worker.
        Results come back here and are written as each finishes; the outputs are the same
        bytes as in this process.

    Returns
    -------
    Path
        The report folder.

    Raises
    ------
    PlanError
        From :func:`plan`, before any work, or when the folder is in use.
    gradlab.executor.UnitsFailed
        After every other unit is written, when some units raised.
    """
    return runner.run(plan(spec, out_root), progress=progress, render=render, wait=wait, log=log, client=client,
                      workers=workers, scheduler=scheduler, threads_per_worker=threads_per_worker)


def _finish(p: Plan) -> None:
    """Combine the units' tables, write the manifest, then remove what the combined tables now hold."""
    spec, root = p.spec, p.root
    timings = [{**u.labels, "key": u.key,
                "status": "reused" if u.status == "reuse" else "computed", "seconds": p.seconds[u.key]}
               for u in p.units]
    tables = combine(root, p.units)
    write_atomic(root / "manifest.json", json.dumps(
        {"gradlab_version": __version__, "seed": spec.seed, "spec": spec.recorded(), "tables": sorted(tables),
         "units": [{**u.labels, "key": u.key, "slug": u.slug, "inputs": u.params["inputs"]} for u in p.units]},
        indent=1, default=str))
    for unit in p.units:  # the combined tables are now the only copy
        for name in FRAMES:
            with contextlib.suppress(FileNotFoundError):
                (root / "units" / unit.slug / f"{name}.csv").unlink()
    _prune(root, p.units, tables)
    write_csv(pd.DataFrame(timings), root / "timings.csv")


def _run_partitioned(spec: Spec, todo: list, names: list, ex, finished) -> None:
    """Every unit as tasks over partitions of its sentences; each unit's statistics merge in partition order
    (so the bytes never depend on where or in which order the partitions ran)."""
    from ..analysis.streaming import frames_from_stats, merge, partitions
    from ..executor import TaskFailure
    owner, models, n_parts, merged, next_part, t0 = [], {}, {}, {}, {}, {}
    sources = []
    for j, u in enumerate(todo):
        t0[j] = time.perf_counter()
        try:
            ds, _, model, _ = unit_inputs(spec, u)       # "train" states train here, in this process
        except Exception as exc:  # noqa: BLE001 - reported like any failing unit
            finished(u, TaskFailure.from_exception(names[j], exc))
            continue
        models[j] = model
        shared_model = ex.share(model)
        bounds = partitions(ds.n_sentences, spec.partition_size)
        n_parts[j], next_part[j], merged[j] = len(bounds), 0, None
        for k, (lo, hi) in enumerate(bounds):
            owner.append((j, k))
            sources.append((shared_model, ds, lo, hi))

    window = 2 * getattr(ex, "n_workers", 1) + 2   # partitions per wave: in flight, or waiting to merge in order
    waiting, failed = {}, set()
    for start in range(0, len(owner), window):
        wave = range(start, min(start + window, len(owner)))
        calls = [(spec, sources[i][0], sources[i][1].select(np.arange(*sources[i][2:]))) for i in wave
                 if owner[i][0] not in failed]
        live = [i for i in wave if owner[i][0] not in failed]
        names_ = [f"{names[owner[i][0]]} | sentences part {owner[i][1]}" for i in live]
        for n, result in ex.map(_partition_task, calls, names_):
            j, k = owner[live[n]]
            if j in failed:
                continue
            if isinstance(result, TaskFailure):
                failed.add(j)
                for key in [key for key in waiting if key[0] == j]:
                    del waiting[key]
                finished(todo[j], result)
                continue
            waiting[(j, k)] = result
            while (j, next_part[j]) in waiting:
                st = waiting.pop((j, next_part[j]))
                merged[j] = st if merged[j] is None else merge(merged[j], st)
                next_part[j] += 1
            if next_part[j] == n_parts[j]:
                u = todo[j]
                frames = frames_from_stats(merged.pop(j), models[j], floor=spec.floor, max_tau=spec.max_lag)
                finished(u, {"frames": _labelled(frames, u),
                             "model": models[j] if u.state.kind == "train" else None,
                             "seconds": time.perf_counter() - t0[j]})


def _prune(root: Path, todo: list, tables: list) -> None:
    """Remove unit folders that this spec no longer has and tables this run did not write (an edited spec,
    an older layout)."""
    keep = {u.slug for u in todo}
    units_dir = root / "units"
    if units_dir.is_dir():
        for folder in units_dir.iterdir():
            if folder.is_dir() and folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
    for name in FRAMES:  # a table stored in the other format by an older gradlab, or no longer made
        stale = [f"{name}.csv" if name in COMPRESSED else f"{name}.csv.gz"]
        if name not in tables:
            stale.append(table_name(name))
        for file in stale:
            with contextlib.suppress(FileNotFoundError):
                (root / file).unlink()


def _row_prefix(labels) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(list(labels))
    return buf.getvalue() + ","


def _rows_by_unit(text: str, todo: list) -> dict:
    """The body lines of a combined table, grouped by unit key (rows start with their unit's labels)."""
    prefixes = {_row_prefix(u.labels.values()): u.key for u in todo}
    groups: dict = {}
    current, key = None, None
    for line in text.split("\n")[1:]:
        if not line:
            continue
        if current is None or not line.startswith(current):
            current = next((p for p in prefixes if line.startswith(p)), None)
            key = prefixes.get(current)
            if current is None:
                continue  # a unit this spec no longer has
        groups.setdefault(key, []).append(line + "\n")
    return groups


def combine(root: Path, todo: list) -> list[str]:
    """Write one combined table per frame: every unit's rows, in spec order.

    A unit computed in this run contributes its folder's CSV (a table it does not have,
    none); a reused one its rows of the existing combined table. The CSVs share one writer and one header per frame,
    so their text is joined as it is (header once). Returns the frames written.
    """
    written = []
    for name in FRAMES:
        path = root / table_name(name)
        old = None
        header, parts = None, []
        for u in todo:
            own = root / "units" / u.slug / f"{name}.csv"
            if own.exists():
                text = own.read_text(encoding="utf-8")
                head, _, body = text.partition("\n")
                if header is not None and head != header:
                    raise ValueError(f"{root}: the units' {name}.csv files have different columns; they were "
                                     "written by different gradlab versions — delete the units folder and rerun")
                header = head
                parts.append(body)
                continue
            if u.status != "reuse":   # computed now without this table: no rows, never the old run's
                continue
            if old is None:
                text = read_table_text(path) if path.exists() else ""
                old = (text.partition("\n")[0], _rows_by_unit(text, todo)) if text else ("", {})
            if old[0]:
                if header is not None and old[0] != header:
                    raise ValueError(f"{path} has other columns than this gradlab writes; delete the report "
                                     "folder and rerun")
                header = old[0]
            parts.append("".join(old[1].get(u.key, [])))
        if header is None:
            continue
        atomic_write(path, encode_table(header + "\n" + "".join(parts), name in COMPRESSED))
        written.append(name)
    return written
