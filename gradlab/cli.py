"""The ``gradlab`` command line.

Run with no arguments it writes the default report on the built-in datasets to
``reports/default/``. ``gradlab --help`` lists the subcommands.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None,
                  help="Exact per-loss, per-lag BPTT gradients of Elman RNNs, and what truncation keeps of them.")

OUT_HELP = "Folder that receives one sub-folder per report."


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


WORKERS = typer.Option(None, "--workers", min=1, help="Run units on a local Dask cluster of this many worker "
                                                      "processes (default: in this process).")
SCHEDULER = typer.Option(None, "--scheduler", envvar="DASK_SCHEDULER_ADDRESS",
                         help="Run units on an existing Dask cluster: its scheduler's address, e.g. "
                              "tcp://scheduler.example.org:8786 (also $DASK_SCHEDULER_ADDRESS).")
THREADS = typer.Option(None, "--threads-per-worker", min=1,
                       help="Numba and BLAS threads in each worker (default: 1 with several workers).")


def _run_jobs(jobs, out: Path, cluster: dict) -> None:
    """Run (runner, spec) jobs on one executor; units that fail are listed at the end (exit code 1)."""
    from .executor import UnitsFailed, executor
    failed = []
    try:
        with executor(cluster["workers"], cluster["scheduler"], cluster["threads_per_worker"]) as ex:
            client = getattr(ex, "client", None)
            for runner, spec in jobs:
                try:
                    folder = runner(spec, out, client=client)
                except UnitsFailed as exc:
                    failed.append((spec.name, exc))
                    continue
                typer.echo(f"report: {folder / 'index.html'}")
    except ValueError as exc:   # bad --workers / --scheduler
        _fail(exc)
    for name, exc in failed:
        typer.echo(exc.tracebacks(), err=True)
        typer.echo(f"error: {name}: {exc}", err=True)
    if failed:
        raise typer.Exit(code=1)


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context,
         out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
         quick: bool = typer.Option(False, help="A small version (200 sentences, K = 20) for a first look.")):
    """With no subcommand: the default report (vanishing profile and truncation gap of four built-in datasets)."""
    if ctx.invoked_subcommand is not None:
        return
    from .report.spec import DEFAULT_SPEC
    spec = DEFAULT_SPEC.reduced(200, max_lag=20) if quick else DEFAULT_SPEC
    from .report.pipeline import run_spec
    typer.echo(f"report: {run_spec(spec, out) / 'index.html'}")


@app.command()
def datasets(parameters: bool = typer.Option(True, help="Show every parameter with its default.")):
    """List the datasets, their tasks and parameters (spec syntax: NAME:key=value,key=value)."""
    import pandas as pd
    from .data import list_datasets
    frame = list_datasets(parameters=parameters)
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 70, "display.width", 200):
        typer.echo(frame.to_string(index=False))


@app.command()
def describe(dataset: str = typer.Argument(..., help="Dataset spec, e.g. agreement:distance=8."),
             csv: Optional[Path] = typer.Option(None, help="Also write the per-sentence table to this CSV.")):
    """Sentence lengths and dependency distances of a dataset."""
    from .data import load_dataset
    try:
        ds = load_dataset(dataset)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
    table = ds.describe()
    typer.echo(repr(ds))
    typer.echo(table.drop(columns=[c for c in ("sentence", "row") if c in table]).describe().T.to_string())
    if csv is not None:
        from .report.pipeline import write_csv
        write_csv(table, csv)
        typer.echo(f"wrote {csv}")


@app.command()
def run(spec: str = typer.Argument(..., help="A .toml spec (report or training study), or the name of one in "
                                             "analyses/."),
        out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
        quick: bool = typer.Option(False, help="Reduced size (reports: 100 sentences, K <= 10, H <= 16; "
                                               "studies: 20 sentences, 1 epoch, H = 4): a smoke run."),
        workers: Optional[int] = WORKERS, scheduler: Optional[str] = SCHEDULER,
        threads_per_worker: Optional[int] = THREADS):
    """Run one spec; an interrupted run resumes where it stopped."""
    run_batch([spec], out, quick, workers, scheduler, threads_per_worker)


@app.command("batch")
def run_batch(specs: List[str] = typer.Argument(..., help="Specs (.toml paths or names in analyses/)."),
              out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
              quick: bool = typer.Option(False, help="Reduced size for every spec."),
              workers: Optional[int] = WORKERS, scheduler: Optional[str] = SCHEDULER,
              threads_per_worker: Optional[int] = THREADS):
    """Run several specs (reports and training studies); every spec is checked before any work starts."""
    from .report.pipeline import run_spec
    from .report.spec import is_training_spec, read_spec_file, spec_from_dict
    from .train.study import run_study, train_spec_from_dict
    jobs = []
    try:
        for name in specs:
            path, data = read_spec_file(name)
            if is_training_spec(data):
                study = train_spec_from_dict(data, source=str(path))
                jobs.append((run_study, study.quick() if quick else study))
            else:
                spec = spec_from_dict(data, str(path))
                jobs.append((run_spec, spec.reduced(100, max_lag=10, hidden_size=min(16, spec.hidden_size))
                             if quick else spec))
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
    _run_jobs(jobs, out, dict(workers=workers, scheduler=scheduler, threads_per_worker=threads_per_worker))


@app.command("train")
def train_study(spec: str = typer.Argument(..., help="A training .toml spec, or the name of one in analyses/."),
                out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
                quick: bool = typer.Option(False, help="Reduced size (20 sentences, 1 epoch, H = 4): a smoke run."),
                workers: Optional[int] = WORKERS, scheduler: Optional[str] = SCHEDULER,
                threads_per_worker: Optional[int] = THREADS):
    """Run a training study (grid of runs, evaluation, figures); an interrupted study resumes where it stopped."""
    from .train.study import load_train_spec, run_study
    try:
        loaded = load_train_spec(spec)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
    _run_jobs([(run_study, loaded.quick() if quick else loaded)], out,
              dict(workers=workers, scheduler=scheduler, threads_per_worker=threads_per_worker))


@app.command()
def render(folder: Path = typer.Argument(..., help="A report folder with its CSVs (reports/NAME).")):
    """Redraw the figures and index.html of a report from its CSVs."""
    from .report.render import render_report
    try:
        index = render_report(folder)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    typer.echo(f"report: {index}")


@app.command()
def warmup():
    """Compile (or load from cache) every kernel and print the time it took."""
    from .engine import warmup as _warmup
    typer.echo(f"kernels ready in {_warmup():.1f} s")


if __name__ == "__main__":  # pragma: no cover
    app()
