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
                                               "studies: 20 sentences, 1 epoch, H = 4): a smoke run.")):
    """Run one spec; an interrupted run resumes where it stopped."""
    run_batch([spec], out, quick)


@app.command("batch")
def run_batch(specs: List[str] = typer.Argument(..., help="Specs (.toml paths or names in analyses/)."),
              out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
              quick: bool = typer.Option(False, help="Reduced size for every spec.")):
    """Run several specs (reports and training studies); every spec is checked before any work starts."""
    from .report.pipeline import run_spec
    from .report.spec import is_training_spec, read_spec_file, spec_from_dict
    from .train.study import run_study, train_spec_from_dict
    from .train.suite import is_suite_spec, load_suite, run_suite
    jobs = []
    try:
        for name in specs:
            path, data = read_spec_file(name)
            if is_suite_spec(data):
                suite = load_suite(path)
                jobs.append((run_suite, suite.quick() if quick else suite))
            elif is_training_spec(data):
                study = train_spec_from_dict(data, source=str(path))
                jobs.append((run_study, study.quick() if quick else study))
            else:
                spec = spec_from_dict(data, str(path))
                jobs.append((run_spec, spec.reduced(100, max_lag=10, hidden_size=min(16, spec.hidden_size))
                             if quick else spec))
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
    for runner, spec in jobs:
        folder = runner(spec, out)
        typer.echo(f"report: {folder / 'index.html'}")


@app.command("train")
def train_study(spec: str = typer.Argument(..., help="A training .toml spec, or the name of one in analyses/."),
                out: Path = typer.Option(Path("reports"), "--out", "-o", help=OUT_HELP),
                quick: bool = typer.Option(False, help="Reduced size (20 sentences, 1 epoch, H = 4): a smoke run.")):
    """Run a training study or suite (grid of runs, evaluation, figures); an interrupted one resumes where it stopped."""
    from .report.spec import read_spec_file
    from .train.study import load_train_spec, run_study
    from .train.suite import is_suite_spec, load_suite, run_suite
    try:
        path, data = read_spec_file(spec)
        if is_suite_spec(data):
            suite = load_suite(path)
            runner, loaded = run_suite, (suite.quick() if quick else suite)
        else:
            study = load_train_spec(spec)
            runner, loaded = run_study, (study.quick() if quick else study)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
    folder = runner(loaded, out)
    typer.echo(f"report: {folder / 'index.html'}")


@app.command()
def render(folder: Path = typer.Argument(..., help="A report folder with its CSVs (reports/NAME).")):
    """Redraw the figures and index.html of a report from its CSVs."""
    from .report.render import render_report
    try:
        index = render_report(folder)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    typer.echo(f"report: {index}")


@app.command("agreement-test")
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
        _fail(ValueError("give --linzen PATH.text and/or --gulordava PATH.tab"))
    try:
        voc = Vocabulary.from_counts(vocab, n_vocab)
        net = RNN.load(model)
        sets = ([read_linzen_testset(linzen)] if linzen is not None else []) + \
               ([read_gulordava_set(gulordava)] if gulordava is not None else [])
        results = [evaluate_agreement_set(net, s, voc, lowercase=lowercase, label=model.name) for s in sets]
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(exc)
    frames = []
    for r in results:
        typer.echo(f"{r.test_set}: accuracy {r.accuracy:.3f} on {r.n_comparable} of {r.n_items} items "
                   "(the others have a verb form outside the vocabulary)")
        typer.echo(r.by_attractors.to_string(index=False))
        typer.echo(r.comparison.to_string(index=False))
        frames.append(r.items.assign(test_set=r.test_set))
    if csv is not None:
        from .report.pipeline import write_csv
        table = pd.concat(frames, ignore_index=True)
        table["prefix"] = table["prefix"].map(" ".join)
        write_csv(table, csv)
        typer.echo(f"wrote {csv}")


@app.command()
def warmup():
    """Compile (or load from cache) every kernel and print the time it took."""
    from .engine import warmup as _warmup
    typer.echo(f"kernels ready in {_warmup():.1f} s")


if __name__ == "__main__":  # pragma: no cover
    app()
