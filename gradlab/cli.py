"""The ``gradlab`` command line.

Run with no arguments it writes the default report on the built-in datasets to
``reports/default/``. ``gradlab --help`` lists the subcommands.
"""
from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="Exact per-loss, per-lag BPTT gradients of Elman RNNs, and what truncation keeps of them.")

OUT_HELP = "Folder that receives one sub-folder per report."
DRY_HELP = "Check everything and print the plan (units, sizes, estimated memory and time); compute nothing."
WAIT_HELP = "If another gradlab run writes into the same report folder, wait for it instead of stopping."
_OPTIONS = {"debug": False}


def _fail(exc: BaseException) -> None:
    """One ``error:`` line and exit code 2; the traceback only with ``--debug``."""
    if _OPTIONS["debug"]:
        raise exc
    message = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (ValueError, TypeError, OSError, LookupError, RuntimeError)):
        message = f"{type(exc).__name__}: {message}"
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _guarded(command):
    """Run a command so that any failure reaches the user as one ``error:`` line (see :func:`_fail`)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt, SystemExit):
            raise
        except MemoryError:
            _fail(MemoryError("out of memory; lower n_sentences or max_lag, or set max_memory lower so the plan "
                              "refuses such units before starting"))
        except Exception as exc:  # noqa: BLE001 - every error becomes one line
            _fail(exc)
    return wrapper


def _quick_name(spec):
    """A quick run writes to its own folder (NAME-quick), never over a full report."""
    return replace(spec, name=f"{spec.name}-quick")


@app.callback(invoke_without_command=True)
@_guarded
def main(ctx: typer.Context,
         out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
         quick: bool = typer.Option(False, help="A small version (200 sentences, K = 20) for a first look, "
                                                "in reports/default-quick."),
         dry_run: bool = typer.Option(False, "--dry-run", help=DRY_HELP),
         wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
         debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error.")):
    """With no subcommand: the default report (vanishing profile and truncation gap of four built-in datasets)."""
    _OPTIONS["debug"] = debug
    if ctx.invoked_subcommand is not None:
        return
    from .study.spec import DEFAULT_SPEC
    spec = DEFAULT_SPEC.reduced(200, max_lag=20, name="default-quick") if quick else DEFAULT_SPEC
    _run_jobs([(spec, "default report")], out, dry_run=dry_run, wait=wait)


WORKERS_HELP = "Run the units on a local Dask cluster of this many worker processes (default: in this process)."
SCHEDULER_HELP = ("Run the units on an existing Dask cluster: its scheduler's address, e.g. "
                  "tcp://scheduler.example.org:8786 (default: $DASK_SCHEDULER_ADDRESS).")
THREADS_HELP = "Numba and BLAS threads in each Dask worker (default: 1 with several workers)."
FAILURES_LOG = "failures.log"
WORKERS = typer.Option(None, "--workers", min=1, help=WORKERS_HELP)
SCHEDULER = typer.Option(None, "--scheduler", envvar="DASK_SCHEDULER_ADDRESS", help=SCHEDULER_HELP)
THREADS = typer.Option(None, "--threads-per-worker", min=1, help=THREADS_HELP)
DTYPE_HELP = ("Set every spec's dtype key: float64 (the default) or float32 (faster training, about 7 "
              "significant digits).")
DTYPE = typer.Option(None, "--dtype", help=DTYPE_HELP)


def _cluster(workers: Optional[int], scheduler: Optional[str], threads_per_worker: Optional[int]) -> dict:
    return {"workers": workers, "scheduler": scheduler, "threads_per_worker": threads_per_worker}


def _run_jobs(jobs, out: Path, *, dry_run: bool, wait: bool, cluster: Optional[dict] = None) -> None:
    """Plan every (spec, source) — all checks, before any work — then run them in order, in this process
    or on the Dask cluster ``cluster`` asks for. Units that fail are named at the end in one ``error:`` line
    per spec (exit code 2), their tracebacks in the report folder's failures.log; the other units are written."""
    from ._io import atomic_write
    from .executor import UnitsFailed, executor
    planners = _planners()
    plans = [planners[s.KIND][0](s, out, source=src) for s, src in jobs]
    specs = [s for s, _ in jobs]
    if dry_run:
        for p in plans:
            typer.echo(p.describe())
        return
    failed = []
    try:
        with executor(**(cluster or {})) as ex:
            for spec, p in zip(specs, plans):
                runner = planners[spec.KIND][1]
                log_file = p.root / FAILURES_LOG
                try:
                    folder = runner(spec, out, wait=wait, log=typer.echo, client=ex)
                except UnitsFailed as exc:
                    if _OPTIONS["debug"]:
                        typer.echo(exc.tracebacks(), err=True)
                    atomic_write(log_file, exc.tracebacks().encode("utf-8"))
                    failed.append((spec.name, exc, log_file))
                    continue
                log_file.unlink(missing_ok=True)
                typer.echo(f"report: {folder / 'index.html'}")
    finally:   # the specs that failed before another error stopped the batch are still named
        for name, exc, log_file in failed:     # one line per spec, exit code 2, as every error
            typer.echo(f"error: {name}: {exc.summary()}; the others are written, rerun to retry only these "
                       f"(tracebacks in {log_file})", err=True)
    if failed:
        raise typer.Exit(code=2)


def _planners() -> dict:
    """(plan, run) of each kind of spec (looked up when called, so that tests can replace them)."""
    from .study import report, suite, training
    return {"report": (report.plan, report.run_spec), "train": (training.plan_study, training.run_study),
            "suite": (suite.plan_suite, suite.run_suite)}


@app.command()
def datasets(parameters: bool = typer.Option(True, help="Show every parameter with its default.")):
    """List the datasets, their tasks and parameters (spec syntax: NAME:key=value,key=value)."""
    import pandas as pd
    from .data import list_datasets
    frame = list_datasets(parameters=parameters)
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 70, "display.width", 200):
        typer.echo(frame.to_string(index=False))


@app.command()
@_guarded
def describe(dataset: str = typer.Argument(..., help="Dataset spec, e.g. agreement:distance=8."),
             csv: Optional[Path] = typer.Option(None, help="Also write the per-sentence table to this CSV.")):
    """Sentence lengths and dependency distances of a dataset."""
    from .data import load_dataset
    ds = load_dataset(dataset)
    table = ds.describe()
    typer.echo(repr(ds))
    typer.echo(table.drop(columns=[c for c in ("sentence", "row") if c in table]).describe().T.to_string())
    if csv is not None:
        from .study.runner import write_csv
        write_csv(table, csv)
        typer.echo(f"wrote {csv}")


@app.command()
@_guarded
def run(spec: str = typer.Argument(..., help="A .toml spec (report or training study), or the name of one in "
                                             "analyses/."),
        out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
        quick: bool = typer.Option(False, help="Reduced size (reports: 100 sentences, K <= 10, H <= 16; "
                                               "studies: 20 sentences, 1 epoch, H = 4), in NAME-quick: a smoke run."),
        dry_run: bool = typer.Option(False, "--dry-run", help=DRY_HELP),
        wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
        workers: Optional[int] = WORKERS, scheduler: Optional[str] = SCHEDULER,
        threads_per_worker: Optional[int] = THREADS, dtype: Optional[str] = DTYPE):
    """Run one spec; an interrupted run resumes where it stopped, and only units whose inputs changed are redone."""
    _run_jobs(_load_specs([spec], quick, dtype), out, dry_run=dry_run, wait=wait,
              cluster=_cluster(workers, scheduler, threads_per_worker))


def _load_specs(names, quick: bool, dtype: Optional[str] = None) -> list:
    """(spec, source) of each name: a report spec, a training study or a suite of studies; ``dtype`` (--dtype)
    replaces the specs' dtype key (every study's, in a suite)."""
    from .study.spec import load
    jobs = []
    for name in names:
        spec, source = load(name)
        if dtype is not None:
            studies = getattr(spec, "studies", None)
            spec = replace(spec, studies=tuple(replace(s, dtype=dtype) for s in studies)) if studies is not None \
                else replace(spec, dtype=dtype)
            spec.validate(f"{source} (--dtype)")
        jobs.append((_quick_name(spec.quick()) if quick else spec, source))
    return jobs


@app.command("batch")
@_guarded
def run_batch(specs: List[str] = typer.Argument(..., help="Specs (.toml paths or names in analyses/)."),
              out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
              quick: bool = typer.Option(False, help="Reduced size for every spec (in NAME-quick)."),
              dry_run: bool = typer.Option(False, "--dry-run", help=DRY_HELP),
              wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
              workers: Optional[int] = WORKERS, scheduler: Optional[str] = SCHEDULER,
        threads_per_worker: Optional[int] = THREADS, dtype: Optional[str] = DTYPE):
    """Run several specs (reports and training studies); every spec is checked before any work starts."""
    _run_jobs(_load_specs(specs, quick, dtype), out, dry_run=dry_run, wait=wait,
              cluster=_cluster(workers, scheduler, threads_per_worker))


@app.command("train")
@_guarded
def train_study(spec: str = typer.Argument(..., help="A training .toml spec, or the name of one in analyses/."),
                out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
                quick: bool = typer.Option(False, help="Reduced size (20 sentences, 1 epoch, H = 4), in NAME-quick: "
                                                       "a smoke run."),
                dry_run: bool = typer.Option(False, "--dry-run", help=DRY_HELP),
                wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
                workers: Optional[int] = WORKERS, scheduler: Optional[str] = SCHEDULER,
                threads_per_worker: Optional[int] = THREADS, dtype: Optional[str] = DTYPE):
    """Run a training study or suite (grid of runs, evaluation, figures); an interrupted one resumes where it
    stopped."""
    jobs = _load_specs([spec], quick, dtype)
    if jobs[0][0].KIND == "report":
        raise ValueError(f"{jobs[0][1]} is a report spec, not a training study (it has no 'train' key); run it "
                         f"with `gradlab run {spec}`")
    _run_jobs(jobs, out, dry_run=dry_run, wait=wait, cluster=_cluster(workers, scheduler, threads_per_worker))


@app.command()
@_guarded
def render(folder: Path = typer.Argument(..., help="An output folder with its CSVs (reports/NAME): a report, a "
                                                  "training study or a suite."),
           wait: bool = typer.Option(False, "--wait", help=WAIT_HELP)):
    """Redraw the figures and index.html of a report, study or suite from its CSVs."""
    from .report.render import render as _render
    from .study.plan import output_lock
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder} is not a report folder; give reports/NAME")
    with output_lock(Path(folder), wait=wait):
        index = _render(folder)
    typer.echo(f"report: {index}")


@app.command("agreement-test")
@_guarded
def agreement_test(model: Path = typer.Argument(..., help="A language model saved with RNN.save (.npz)."),
                   vocab: Path = typer.Option(..., help="The model's vocabulary: counts file word<TAB>count "
                                                        "(its first --n-vocab entries)."),
                   n_vocab: int = typer.Option(2000, help="Vocabulary size |V| (<s> </s> UNK included)."),
                   linzen: Optional[Path] = typer.Option(None, help="Linzen et al.'s subj_agr_filtered.text "
                                                                    "(the .gold file beside it)."),
                   gulordava: Optional[Path] = typer.Option(None, help="Gulordava et al.'s English generated.tab."),
                   lowercase: bool = typer.Option(False, help="Lower-case the words before the vocabulary lookup."),
                   csv: Optional[Path] = typer.Option(None, help="Also write the per-item table(s) to this CSV.")):
    """Agreement accuracy of a language model on the standard test sets, by attractors and original vs nonsense."""
    import pandas as pd
    from .data.readers import read_gulordava_set, read_linzen_testset
    from .data.vocab import Vocabulary
    from .model import RNN
    from .train.evaluate import evaluate_agreement_set
    if linzen is None and gulordava is None:
        raise ValueError("give --linzen PATH.text and/or --gulordava PATH.tab")
    voc = Vocabulary.from_counts(vocab, n_vocab)
    net = RNN.load(model)
    sets = ([read_linzen_testset(linzen)] if linzen is not None else []) + \
           ([read_gulordava_set(gulordava)] if gulordava is not None else [])
    results = [evaluate_agreement_set(net, s, voc, lowercase=lowercase, label=model.name) for s in sets]
    frames = []
    for r in results:
        typer.echo(f"{r.test_set}: accuracy {r.accuracy:.3f} on {r.n_comparable} of {r.n_items} items "
                   "(the others have a verb form outside the vocabulary)")
        typer.echo(r.by_attractors.to_string(index=False))
        typer.echo(r.comparison.to_string(index=False))
        frames.append(r.items.assign(test_set=r.test_set))
    if csv is not None:
        from .study.runner import write_csv
        table = pd.concat(frames, ignore_index=True)
        table["prefix"] = table["prefix"].map(" ".join)
        write_csv(table, csv)
        typer.echo(f"wrote {csv}")


@app.command()
@_guarded
def warmup():
    """Compile (or load from cache) every kernel and print the time it took."""
    from .engine import warmup as _warmup
    typer.echo(f"kernels ready in {_warmup():.1f} s")


if __name__ == "__main__":  # pragma: no cover
    app()
