"""bench_engine's parts: the autograd peers against the NumPy student, the float32 guard and rows,
the output-layer GEMM rates and the targets table.

Speed is never asserted; these check that the numbers the benchmark prints are computed from
the right things.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_engine  # noqa: E402
import peers  # noqa: E402

import gradlab  # noqa: E402
from conftest import import_torch  # noqa: E402
from float32_stub import RNNWithFloat32API  # noqa: E402

#: The peers compute the NumPy student's sums in another order, in float64.
PEER_RTOL = 1e-10


@pytest.fixture(scope="module")
def data():
    """30 sentences of lengths 3..12 (more than the 4 buckets hold alike), |V| = 60, H = 7."""
    return bench_engine.make_data(30, 60, 7, (3, 12), seed=3)


@pytest.fixture(scope="module")
def layout(data):
    import_torch()
    peers.torch_setup(1)
    return peers.TorchLayout(data.xs, data.ds, n_groups=4)


def _grad_errors(g, ref):
    return {k: bench_engine.entry_errors(getattr(g, k), getattr(ref, k), None, bench_engine.AGREE_FLOOR)[0]
            for k in ("U", "V", "W")} | {"loss": abs(g.loss - ref.loss) / abs(ref.loss)}


def test_bucketed_autograd_peer_equals_the_student(data, layout):
    """The issue's autograd peer (padded buckets, masked cross-entropy, backward per bucket) is exact."""
    assert len(layout.buckets()) == 4
    ids, tgt = layout.buckets()[-1]
    assert (tgt == -100).any(), "the shortest bucket mixes lengths: it must have padding to mask"
    g = peers.torch_full_gradient(data.U, data.V, data.W, layout=layout, method="bucketed")
    ref = peers.numpy_full_gradient(data.U, data.V, data.W, data.xs, data.ds)
    assert max(_grad_errors(g, ref).values()) <= PEER_RTOL


@pytest.mark.parametrize("tau", [0, 1, 3, 11, 40])
def test_window_autograd_peer_gives_sliding_tbptt(data, layout, tau):
    g = peers.torch_window_autograd(data.U, data.V, data.W, tau, layout=layout, per_lag=False)
    ref = peers.numpy_tbptt_gradient(data.U, data.V, data.W, data.xs, data.ds, tau)
    assert max(_grad_errors(g, ref).values()) <= PEER_RTOL


@pytest.mark.parametrize("K", [0, 2, 5, 11, 40])
def test_window_autograd_peer_gives_every_contribution_in_gradlab_order(data, layout, K):
    norms, G_U = peers.torch_window_autograd(data.U, data.V, data.W, K, layout=layout, per_lag=True)
    ref_norms, ref_G = peers.numpy_contributions(data.U, data.V, data.W, data.xs, data.ds, K)
    lags = {"norms": bench_engine.pair_lags(data.xs, K)}
    worst, where, _ = bench_engine.compare({"ref": {"norms": ref_norms, "G_U": ref_G},
                                            "peer": {"norms": norms, "G_U": G_U}}, "ref", lags)["peer"]
    assert worst <= PEER_RTOL, where


def test_float32_peers_agree_at_float32_tolerance_and_return_float32(data, layout):
    f32 = [M.astype(np.float32) for M in (data.U, data.V, data.W)]
    g = peers.torch_full_gradient(*f32, layout=layout, method="manual")
    assert g.U.dtype == g.V.dtype == g.W.dtype == np.float32
    ref = peers.numpy_full_gradient(data.U, data.V, data.W, data.xs, data.ds)
    errors = _grad_errors(g, ref)
    assert max(errors.values()) <= bench_engine.F32_RTOL
    assert max(errors.values()) > bench_engine.AGREE_RTOL, "float32 rounding must show: the peer ran in float64?"


# ---------------------------------------------------------------------- the float32 guard
def _gradlab_with(rnn):
    return types.SimpleNamespace(RNN=rnn, Batch=gradlab.Batch, gradient=gradlab.gradient,
                                 contributions=gradlab.contributions, Full=gradlab.Full, Sliding=gradlab.Sliding)


def test_float32_api_is_detected_from_the_signature():
    has, why = bench_engine.float32_api(_gradlab_with(RNNWithFloat32API))
    assert has and why == ""

    class NoAstype(gradlab.RNN):
        astype = None
    assert bench_engine.float32_api(_gradlab_with(NoAstype)) == (False, "gradlab.RNN has no astype()")
    assert bench_engine.float32_api(_gradlab_with(PreFloat32))[0] is False
    assert bench_engine.float32_api(None)[0] is False
    assert bench_engine.float32_api(gradlab) == (True, "")


class PreFloat32(gradlab.RNN):
    """gradlab before the float32 API: ``RNN.init`` takes no dtype."""

    @classmethod
    def init(cls, vocab_size, hidden_size, output_size=None, **kwargs):
        return super().init(vocab_size, hidden_size, output_size, **kwargs)


def test_float32_rows_are_added_and_a_float64_result_is_a_mismatch(data):
    """With the API, 'gradlab f32' is timed; a float32 row whose arrays are float64 fails the cross-check."""
    w = bench_engine.Workload("W1", 7, 30, data=data)
    without = bench_engine.impls_for(w, _gradlab_with(PreFloat32), None, float32=True)
    assert "gradlab" in without and "gradlab" + bench_engine.F32 not in without
    impls = bench_engine.impls_for(w, _gradlab_with(RNNWithFloat32API), None, float32=True)
    assert set(impls) == {"numpy student", "gradlab", "gradlab" + bench_engine.F32}
    results = {name: f() for name, f in impls.items()}
    report = bench_engine.cross_check(results, None)
    assert report["gradlab"][0] <= bench_engine.AGREE_RTOL
    worst, where, detail = report["gradlab" + bench_engine.F32]
    assert worst == np.inf and where == "dtype" and "not float32" in detail["U"]
    # the same arrays in float32 pass
    results["gradlab" + bench_engine.F32] = {k: (v if k == "loss" else v.astype(np.float32))
                                            for k, v in results["gradlab"].items()}
    assert bench_engine.cross_check(results, None)["gradlab" + bench_engine.F32][0] <= bench_engine.F32_RTOL


def test_float32_speedups_pair_each_row_with_its_float64_twin(data):
    w = bench_engine.Workload("W2", 7, 30, tau=3, data=data)
    rows = [bench_engine.Row(w, name, times=[t]) for name, t in
            (("gradlab", 0.2), ("gradlab f32", 0.1), ("torch batched", 0.3), ("torch batched f32", 0.25),
             ("numpy student", 4.0))]
    out = {r["impl"]: r["speedup"] for r in bench_engine.float32_rows([w], rows)}
    assert out == pytest.approx({"gradlab": 2.0, "torch batched": 1.2})


# ---------------------------------------------------------------------- bounds and targets
def test_output_gemm_rates_cover_every_library_thread_count_and_tile():
    rates = bench_engine.output_gemm_rates(8, 50, (4, 16), (1, 2), 32, 1, np.float32)
    libs = ["numpy"] + (["torch"] if peers.torch_available() else [])
    assert set(rates) == {(lib, n, r) for lib in libs for n in (1, 2) for r in (4, 16)}
    for v in rates.values():
        assert set(v) == set(bench_engine.OUTPUT_GEMMS) | {"all"}
        assert all(np.isfinite(x) and x > 0 for x in v.values())
        # the three products together: their FLOP-weighted harmonic mean, within their range
        assert min(v[n] for n in bench_engine.OUTPUT_GEMMS) <= v["all"] * (1 + 1e-12)
        assert v["all"] <= max(v[n] for n in bench_engine.OUTPUT_GEMMS) * (1 + 1e-12)


def test_best_output_rate_counts_single_threaded_calls_once_per_core():
    def same(x):
        return {n: x for n in bench_engine.OUTPUT_GEMMS}
    rates = {("numpy", 1, 64): same(40.0), ("numpy", 2, 64): same(70.0), ("numpy", 1, 128): same(30.0),
             ("torch", 2, 64): same(500.0)}
    assert bench_engine.best_output_rate(rates, "numpy", 2) == (pytest.approx(80.0), "64 rows, 2 x 1 thread")
    assert bench_engine.best_output_rate(rates, "numpy", 1) == (pytest.approx(70.0), "64 rows, 2 threads")
    assert bench_engine.best_output_rate(rates, "nothing", 2) == (0.0, "")
    # products of equal FLOPs together: the harmonic mean of their rates
    mixed = {("numpy", 2, 64): dict(zip(bench_engine.OUTPUT_GEMMS, (20.0, 60.0, 1.0)))}
    two = tuple(bench_engine.OUTPUT_GEMMS)[:2]
    assert bench_engine.best_output_rate(mixed, "numpy", 2, two)[0] == pytest.approx(30.0)


def test_targets_are_issue_11s_against_the_hand_written_peer(data):
    assert bench_engine.TARGETS == {("W1", 50): 1.2, ("W2", 50): 1.2, ("W3", 50): 1.5, ("W1", 200): 1.1,
                                    ("W3", 200): 1.2}
    w = bench_engine.Workload("W1", 50, 30, data=bench_engine.make_data(30, 60, 50, (3, 12), seed=3))
    parts = w.flops_parts()
    assert parts["output"] + parts["recurrence"] == w.flops()
    assert parts["output"] == 3 * 2.0 * w.data.n_tokens * 60 * 50
    rows = [bench_engine.Row(w, name, times=[t]) for name, t in
            (("gradlab", 0.5), ("torch manual", 0.6), ("torch autograd", 2.0), ("torch autograd packed", 0.1))]
    rates = {50: {("numpy", 1, 64): {n: 40.0 for n in bench_engine.OUTPUT_GEMMS},
                  ("torch", 2, 128): {n: 100.0 for n in bench_engine.OUTPUT_GEMMS}}}
    (t,) = bench_engine.target_rows([w], rows, peak_gflops=100.0, out_rates=rates, cores=2)
    assert t["target"] == 1.2 and t["hand_written"] == "torch manual"
    assert t["vs_hand_written"] == pytest.approx(1.2) and t["vs_autograd"] == pytest.approx(4.0)
    assert t["blas_floor_s"] == pytest.approx(parts["output"] / 80e9)
    assert t["mkl_floor_s"] == pytest.approx(parts["output"] / 100e9)
    assert t["flops_floor_s"] == pytest.approx(w.flops() / 100e9)


def test_the_targets_table_says_when_a_target_is_below_the_floor(capsys):
    base = dict(key="W1", H=50, hand_written="torch manual", autograd_s=2.0, flops_floor_s=0.05, output_flops=7e9,
                blas_gflops=70.0, blas_where="", mkl_gflops=None, mkl_where="", mkl_floor_s=None)
    table = [dict(base, workload="reachable", target=1.2, gradlab_s=0.5, hand_written_s=0.6, vs_hand_written=1.2,
                  vs_autograd=4.0, blas_floor_s=0.1),
             dict(base, workload="out of reach", target=1.5, gradlab_s=0.5, hand_written_s=0.3, vs_hand_written=0.6,
                  vs_autograd=4.0, blas_floor_s=0.25)]
    bench_engine.print_targets(table, quick=False)
    lines = capsys.readouterr().out.splitlines()
    status = {name: next(line for line in lines if line.startswith(f"  {name}") and "x" in line)
              for name in ("reachable", "out of reach")}
    assert " MET " in status["reachable"] and "NOT MET" in status["out of reach"]
    floors = [line for line in lines if line.rstrip().endswith(("yes", "below the floor"))]
    assert floors[0].startswith("  reachable") and floors[0].rstrip().endswith("yes")
    assert floors[1].startswith("  out of reach") and floors[1].rstrip().endswith("no: below the floor")
