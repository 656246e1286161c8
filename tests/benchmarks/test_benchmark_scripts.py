"""Every benchmark script runs (at its smallest size) and cross-checks what it times.

Speed itself is never asserted here: the scripts report it. These smoke runs keep
the scripts working as the package changes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"

RUNS = [
    ("bench_engine.py", ["--quick", "--no-cold"]),
    ("bench_data.py", ["--rows", "2000"]),
    ("bench_train.py", ["--quick"]),
    ("bench_dask.py", ["--quick", "--skip", "report"]),
    # the coursework-size report through the CLI, tiny, with the Numba cache as it is (no cold compile)
    ("bench_report.py", ["--only", "coursework", "--sentences", "10", "--max-lag", "3", "--no-cold"]),
]


def _run(script, args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "NOT OK" not in proc.stdout and "MISMATCH" not in proc.stdout.upper()
    return proc.stdout


def _has_float32_api() -> bool:
    import inspect

    import gradlab
    return "dtype" in inspect.signature(gradlab.RNN.init).parameters and hasattr(gradlab.RNN, "astype")


@pytest.mark.slow
@pytest.mark.parametrize("script, args", RUNS, ids=[r[0] for r in RUNS])
def test_benchmark_script_runs(script, args):
    out = _run(script, args)
    if script == "bench_engine.py":
        # issue 11's table, the output-layer GEMM rates (float64 and float32) and the float32 rows
        assert "Targets (issue 11)" in out and out.count("output-layer GEMM rates") == 4
        assert "float32 matmul peak" in out and "torch manual f32" in out
        if _has_float32_api():
            assert "gradlab f32" in out
        else:
            assert "gradlab float32 rows skipped" in out and "gradlab f32" not in out
    if script == "bench_train.py":
        assert ("gradlab fused float32" in out) == _has_float32_api()


#: A tiny training study on built-in data: what --grid-run runs, without ../shared/data.
TINY_GRID = """title = "Tiny grid"
train = "markov:n_symbols=50,order=1,n=40"
hidden_sizes = [4]
schemes = ["tbptt:2"]
learning_rates = [0.1, 0.05]
epochs = 1
batch_size = 1
n_dev = 8
"""


@pytest.mark.slow
def test_grid_run_runs_a_study_with_two_workers(tmp_path):
    spec = tmp_path / "tiny-grid.toml"
    spec.write_text(TINY_GRID)
    out = _run("bench_train.py", ["--quick", "--grid-run", "--grid-spec", str(spec), "--no-float32"])
    assert "tuning grid run: tiny-grid.toml --quick, 2 runs" in out and "--workers 2" in out
    assert "2 runs took" in out and "(--quick: not evaluated)" in out


def test_grid_run_skips_a_spec_whose_data_is_missing(tmp_path, capsys):
    sys.path.insert(0, str(BENCH))
    import bench_train
    spec = tmp_path / "grid.toml"
    spec.write_text(TINY_GRID.replace('"markov:n_symbols=50,order=1,n=40"',
                                      f'"linzen:path={tmp_path}/absent.txt,vocab={tmp_path}/vocab.txt"'))
    assert bench_train.grid_run(spec) is None
    out = capsys.readouterr().out
    assert "data not found" in out and "absent.txt" in out and "skipped" in out


@pytest.mark.slow
def test_gated_cell_benchmark_runs():
    """bench_cells.py at its smallest size: nn.RNN, GRU and LSTM against PyTorch, every workload cross-checked."""
    from conftest import import_torch
    import_torch()                      # skipped without torch, unless GRADLAB_REQUIRE_TORCH=1
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(BENCH / "bench_cells.py"), "--quick"], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "NOT OK" not in proc.stdout and proc.stdout.count(" OK |") == 9     # 3 cells x 3 workloads


def test_train_float32_rows_run_with_the_api_and_catch_a_float64_model(monkeypatch, capsys):
    """With an RNN that has the float32 API's signature but stays float64, the float32 rows run and fail."""
    sys.path.insert(0, str(BENCH))
    import bench_train
    from float32_stub import RNNWithFloat32API
    monkeypatch.setattr(bench_train.gl, "RNN", RNNWithFloat32API)
    assert bench_train.main(["--quick"]) == 1
    out = capsys.readouterr().out
    assert out.count("gradlab fused float32") == 2
    assert "MISMATCH: gradlab float32 (tbptt:3)" in out and "parameters of dtype float64" in out


# ---------------------------------------------------------------------- cell training (bench_train_cells.py)
def _bench_train_cells():
    from conftest import import_torch
    import_torch()                      # skipped without torch, unless GRADLAB_REQUIRE_TORCH=1
    sys.path.insert(0, str(BENCH))
    import bench_train_cells
    return bench_train_cells


def test_cell_training_benchmark_runs_and_cross_checks(capsys):
    """bench_train_cells.py --quick: GRU and LSTM, full / tbptt:5 / chunked:10, each loop pair cross-checked."""
    bench = _bench_train_cells()
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "NOT OK" not in out and out.count(" OK |") == 6          # 2 cells x 3 schemes
    for cell in ("gru", "lstm"):
        for scheme in ("full", "tbptt:5", "chunked:10"):
            assert f"| {cell} | 8 | {scheme} |" in out and f"  {cell} {scheme} " in out   # table, first calls


def test_cell_training_benchmark_fails_when_the_loops_disagree(monkeypatch, capsys):
    """A torch loop that ends 1e-7 away from gradlab's parameters makes the script exit with status 1."""
    bench = _bench_train_cells()
    epoch = bench.TorchTraining.epoch

    def nudged(self, scheme, n_sentences=None):
        modules, updates = epoch(self, scheme, n_sentences)
        with self.torch.no_grad():
            modules[0].weight_hh_l0[0, 0] += 1e-7
        return modules, updates
    monkeypatch.setattr(bench.TorchTraining, "epoch", nudged)
    assert bench.main(["--quick", "--cells", "gru", "--schemes", "chunked:4", "--sentences", "4"]) == 1
    out = capsys.readouterr().out
    assert "NOT OK" in out and "cross-check NOT OK: the training loops disagree" in out


@pytest.mark.parametrize("option, value, message", [
    ("--cells", "gru,elman", "--cells must be a comma-separated subset of rnn,gru,lstm; received 'gru,elman'"),
    ("--schemes", "full,tbptt:0", "--schemes must be comma-separated full, tbptt:K or chunked:h (K, h >= 1); "
                                  "received 'tbptt:0'"),
    ("--schemes", "block:3,6", "received 'block:3'"),
    ("--schemes", ",", "--schemes names no scheme; received ','")])
def test_cell_training_benchmark_rejects_bad_options(option, value, message, capsys):
    bench = _bench_train_cells()
    with pytest.raises(SystemExit) as exc:
        bench.main(["--quick", option, value])
    assert exc.value.code == 2 and message in capsys.readouterr().err
