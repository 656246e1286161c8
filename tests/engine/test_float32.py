"""float32 models: every engine function computes in float32 and agrees with float64 at float32 precision.

The float64 reference is the same model converted to float64 (``model.astype``), so the two
computations start from the same numbers and differ only by float32 rounding along the way.
The float32 softmax (a float32 polynomial exp) is checked against ``numpy.exp`` and SciPy's
softmax directly.
"""
from __future__ import annotations

import numpy as np
import pytest

import naive
from conftest import ACTIVATIONS, OBJECTIVES, random_problem, run_without_jit

from gradlab import RNN, Batch, contributions, forward, gradient, sentence_gaps
from gradlab.engine import backpropagate, dependency_deltas
from gradlab.gradcheck import check_gradient
from gradlab.kernels._common import softmax_inplace
from gradlab.kernels.output import softmax_rows

#: float32 carries 24 bits (eps 6e-8). A gradient is a sum of O(T) chains of O(T) products each
#: rounded there; on these small problems the relative error against float64 stays near 1e-6, so
#: 1e-4 leaves a wide margin while an error in the float32 path (a float64 scratch buffer read as
#: float32, a wrong softmax) is off by far more.
RTOL = 1e-4
#: Entries near zero (a cancelling sum, an unused column) are compared against the array's scale:
#: |a32 - a64| <= SCALE_ATOL * max |a64|.
SCALE_ATOL = 1e-5
#: A probability from the float32 exp: about 1 ulp (Cephes expf) times a normalisation, 2^-24 each.
PROB_RTOL = 1e-6

SCHEMES = ("full", "tbptt:0", "tbptt:2", "chunked:3", "block:2,5", "mikolov:2,3")
F32 = np.dtype(np.float32)


def assert_close32(a32, a64, what=""):
    a32, a64 = np.asarray(a32), np.asarray(a64)
    assert a32.dtype == F32, f"{what}: dtype {a32.dtype}, expected float32"
    scale = float(np.abs(a64).max()) if a64.size else 0.0
    np.testing.assert_allclose(a32, a64, rtol=RTOL, atol=SCALE_ATOL * scale, err_msg=what)


def problem32(rng, objective="lm", activation="sigmoid", lengths=None, **kw):
    """A random problem whose model is float32, and its float64 twin (the same numbers)."""
    lengths = rng.integers(1, 16, size=40) if lengths is None else lengths
    p = random_problem(rng, objective=objective, activation=activation, hidden_size=6, vocab_size=9,
                       lengths=lengths, drop_targets=0.2 if objective == "lm" else 0.0, **kw)
    m32 = p.model.astype("float32")
    return p, m32, m32.astype("float64")


# --------------------------------------------------------------------------- the model
@pytest.mark.parametrize("dtype", ["float32", np.float32, np.dtype("float32")])
def test_init_float32_is_the_float64_draw_rounded(dtype):
    m64 = RNN.init(7, 4, rng=3)
    m32 = RNN.init(7, 4, rng=3, dtype=dtype)
    assert m32.dtype == F32 and m64.dtype == np.float64
    for name, a in m32.parameters().items():
        assert a.dtype == F32 and a.flags.c_contiguous
        np.testing.assert_array_equal(a, getattr(m64, name).astype(np.float32))


def test_default_stays_float64_and_constructor_never_downcasts(rng):
    arrays = {n: rng.standard_normal(s).astype(np.float32) for n, s in (("U", (3, 3)), ("V", (3, 4)), ("W", (4, 3)))}
    assert RNN.init(4, 3, rng=0).dtype == np.float64
    widened = RNN(**arrays)
    assert widened.dtype == np.float64 and all(a.dtype == np.float64 for a in widened.parameters().values())
    kept = RNN(**arrays, dtype="float32")
    assert kept.dtype == F32
    asked = RNN(**{n: a.astype(np.float64) for n, a in arrays.items()}, dtype=np.float32)
    assert all(a.dtype == F32 for a in asked.parameters().values())


def test_astype_copy_and_save_keep_the_dtype(tmp_path):
    m32 = RNN.init(6, 3, rng=1, dtype="float32", activation="tanh")
    c = m32.copy()
    assert c.dtype == F32 and c.activation == "tanh" and c.U is not m32.U
    same = m32.astype("float32")
    assert same.U is not m32.U          # astype always copies
    back = m32.astype(np.float64)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back.V, m32.V)
    loaded = RNN.load(m32.save(tmp_path / "m.npz"))
    assert loaded.dtype == F32 and loaded.activation == "tanh"
    for name, a in m32.parameters().items():
        np.testing.assert_array_equal(getattr(loaded, name), a)
    assert RNN.load(back.save(tmp_path / "m64.npz")).dtype == np.float64


@pytest.mark.parametrize("bad", ["float16", np.int64, "int32", "double precision", None, 3])
def test_bad_dtype_is_refused(bad):
    with pytest.raises(TypeError, match="dtype must be one of"):
        RNN.init(4, 3, dtype=bad)
    with pytest.raises(TypeError, match="dtype must be one of"):
        RNN.init(4, 3).astype(bad)


def test_constructor_bad_dtype():
    with pytest.raises(TypeError, match="dtype must be one of"):
        RNN(np.zeros((3, 3)), np.zeros((3, 4)), np.zeros((4, 3)), dtype="float16")


@pytest.mark.parametrize("name", ["U", "V", "W"])
def test_validate_refuses_mixed_dtypes(name):
    m = RNN.init(4, 3, rng=0)
    setattr(m, name, getattr(m, name).astype(np.float32))
    with pytest.raises(TypeError, match=r"share one dtype.*astype"):
        m.validate()
    with pytest.raises(TypeError, match="share one dtype"):
        gradient(m, Batch.for_language_model([[0, 1]], [[1, 2]]))


@pytest.mark.parametrize("name", ["U", "V", "W"])
@pytest.mark.parametrize("dtype", [np.float16, np.int64])
def test_validate_refuses_other_types(name, dtype):
    m = RNN.init(4, 3, rng=0)
    setattr(m, name, getattr(m, name).astype(dtype))
    with pytest.raises(TypeError, match=rf"^{name} has dtype .*float32 or float64"):
        m.validate()


# --------------------------------------------------------------------------- engine functions
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_gradient_float32_matches_float64(rng, objective, activation, scheme):
    p, m32, m64 = problem32(rng, objective, activation)
    g32, g64 = gradient(m32, p.batch, scheme), gradient(m64, p.batch, scheme)
    for name in ("U", "V", "W"):
        assert_close32(getattr(g32, name), getattr(g64, name), f"{scheme} {name}")
    assert g32.loss == pytest.approx(g64.loss, rel=RTOL)
    assert g32.n_losses == g64.n_losses and g32.scheme == g64.scheme


def test_gradient_float32_matches_naive_reference(rng):
    """Against the slow float64 reference on the float32 model's numbers (not only the engine's float64)."""
    p, m32, m64 = problem32(rng, "lm", "tanh")
    ref = naive.gradient(m64.U, m64.V, m64.W, "tanh", p.xs, p.ds, naive.sliding_limit(2))
    g = gradient(m32, p.batch, "tbptt:2")
    for name in ("U", "V", "W"):
        assert_close32(getattr(g, name), getattr(ref, name), name)


def test_forward_float32(rng):
    p, m32, m64 = problem32(rng, "lm", "relu")
    init = rng.standard_normal((p.batch.n_sentences, 6)) * 0.3
    f32 = forward(m32, p.batch, return_probs=True, initial_states=init)
    f64 = forward(m64, p.batch, return_probs=True, initial_states=init)
    for what in ("s", "losses", "probs"):
        assert_close32(getattr(f32, what), getattr(f64, what), what)
    assert isinstance(f32.loss, float) and f32.loss == pytest.approx(f64.loss, rel=RTOL)
    np.testing.assert_array_equal(f32.loss_positions, f64.loss_positions)


def test_backpropagate_float32(rng):
    p, m32, m64 = problem32(rng, "lm", "sigmoid")
    f = forward(m64, p.batch)
    dS = rng.standard_normal((f.n_losses, 6))
    b32 = backpropagate(m32, p.batch, f.s, dS, "tbptt:3")
    b64 = backpropagate(m64, p.batch, f.s, dS, "tbptt:3")
    for name in ("U", "V"):
        assert_close32(b32[name], b64[name], name)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_contributions_float32(rng, objective):
    p, m32, m64 = problem32(rng, objective, "tanh")
    c32, c64 = contributions(m32, p.batch, 6), contributions(m64, p.batch, 6)
    for what in ("delta_norm", "U_norm", "V_norm", "G_U", "G_V", "G_W"):
        assert_close32(getattr(c32, what), getattr(c64, what), what)
    assert c32.loss == pytest.approx(c64.loss, rel=RTOL)
    g = c32.truncated(2)
    ref = gradient(m32, p.batch, "tbptt:2")
    for name in ("U", "V", "W"):
        assert_close32(getattr(g, name), getattr(ref, name).astype(np.float64), f"truncated(2) {name}")


def test_dependency_deltas_float32(rng):
    p, m32, m64 = problem32(rng, "lm", "sigmoid", lengths=(9, 12, 7))
    sentence, source, dependent = np.array([0, 1, 1, 2]), np.array([0, 2, 0, 1]), np.array([8, 11, 5, 6])
    s32, o32 = dependency_deltas(m32, p.batch, sentence, source, dependent)
    s64, o64 = dependency_deltas(m64, p.batch, sentence, source, dependent)
    # compared where both have a loss (NaN elsewhere, in both)
    np.testing.assert_array_equal(np.isnan(s32), np.isnan(s64))
    keep = ~np.isnan(s64)
    assert_close32(s32[keep], s64[keep], "signal")
    assert_close32(o32[keep], o64[keep], "own")


def test_sentence_gaps_float32(rng):
    p, m32, m64 = problem32(rng, "lm", "tanh")
    g32, g64 = sentence_gaps(m32, p.batch, 5), sentence_gaps(m64, p.batch, 5)
    assert g32.rel_error.dtype == F32 and g32.cosine.dtype == F32
    # a relative error is 0 in exact arithmetic once tau covers the sentence: float32 leaves ~1e-6 there
    np.testing.assert_allclose(g32.rel_error, g64.rel_error, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(g32.cosine, g64.cosine, rtol=1e-4, atol=1e-5)


def test_gradcheck_float32(rng):
    """check_gradient differentiates the float64 copy: a float32 gradient checks to ~1e-4, a wrong one does not."""
    p, m32, _ = problem32(rng, "lm", "sigmoid", lengths=(6, 4, 8))
    good = check_gradient(m32, p.batch, rng=0)
    assert good.max_rel_error < 1e-3
    wrong = {k: v * 1.01 for k, v in gradient(m32, p.batch).as_dict().items()}
    assert check_gradient(m32, p.batch, wrong, rng=0).max_rel_error > 3e-3


# --------------------------------------------------------------------------- float32 softmax
def test_float32_exp_is_within_a_few_ulp():
    """softmax_inplace on logits <= 0 whose max is 0 leaves exp(logit) itself (normalise=False)."""
    x = -np.linspace(0.0, 87.0, 400_001, dtype=np.float32)
    row = x.copy()
    softmax_inplace(row, np.empty(x.size, np.int64), np.empty(x.size), False)
    assert row.dtype == F32
    ulp = np.spacing(np.exp(x))
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(row - exact) / ulp) <= 1.5
    assert np.max(np.abs(row - np.exp(x)) / ulp) <= 2.0


@pytest.mark.parametrize("n_out", [1, 3, 7, 8, 17, 2000])
@pytest.mark.parametrize("spread", [1.0, 10.0, 40.0])
def test_softmax_rows_float32_matches_scipy(rng, n_out, spread):
    special = pytest.importorskip("scipy.special")
    z = (rng.standard_normal((5, n_out)) * spread).astype(np.float32)
    d = rng.integers(0, n_out, 5)
    d[-1] = -1
    L, losses = z.copy(), np.empty(5, np.float32)
    softmax_rows(L, d, losses)
    y = special.softmax(z.astype(np.float64), axis=1)      # the float32 logits' exact softmax
    expect = y.copy()
    expect[np.arange(4), d[:4]] -= 1.0
    assert L.dtype == F32 and losses.dtype == F32
    # rows of y - onehot: the target entry y - 1 is rounded near 1, to float32's eps in absolute terms
    np.testing.assert_allclose(L, expect, rtol=PROB_RTOL, atol=np.finfo(np.float32).eps)
    # the probabilities themselves, small ones too: exp(x) of x = z - max(z) rounded to float32 is off by
    # |x| * eps32 relative, plus an ulp or two; below x = -87 the exp is clamped to ~1e-38
    x = z[4].astype(np.float64) - z[4].max()
    eps = np.finfo(np.float32).eps
    kept = x > -87
    np.testing.assert_array_less(np.abs(L[4] - y[4])[kept], ((4 + np.abs(x)) * eps * y[4])[kept] + 1e-45)
    assert np.all(L[4][~kept] <= 2e-38)
    ref_loss = -special.log_softmax(z.astype(np.float64), axis=1)[np.arange(4), d[:4]]
    # loss = log_z - logit: float32 logits of size |z| leave ~|z| * 6e-8 after the cancellation
    np.testing.assert_allclose(losses[:4], ref_loss, rtol=1e-5, atol=1e-6 * (1 + np.abs(z).max()))
    assert losses[4] == 0.0


@pytest.mark.parametrize("logits", [
    [800.0, 0.0, -5.0],
    [-800.0, -1000.0, -805.0],
    [1e5, 1e5 - 8.0, -1e5],
    [0.0, 0.0, 0.0],
], ids=str)
def test_softmax_rows_float32_extreme_logits_stay_finite(logits):
    z = np.array(logits, dtype=np.float32)
    L = np.tile(z, (4, 1))
    d = np.array([0, 1, 2, -1], dtype=np.int64)
    losses = np.empty(4, np.float32)
    softmax_rows(L, d, losses)
    y = naive.softmax(z.astype(np.float64))
    assert np.all(np.isfinite(L)) and np.all(np.isfinite(losses))
    np.testing.assert_allclose(L[3], y, rtol=PROB_RTOL, atol=1e-30)
    for t in range(3):
        assert losses[t] == pytest.approx(naive.cross_entropy(z.astype(np.float64), t), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_softmax_float32_keeps_non_finite_visible_as_float64_does(bad):
    """The float32 path shows a NaN or inf logit exactly where the float64 path does."""
    z = np.array([[0.5, bad, -1.0, 2.0], [0.5, 1.0, -1.0, 2.0]])
    d = np.array([0, 3], dtype=np.int64)
    out = {}
    for dt in (np.float64, np.float32):
        L, losses = z.astype(dt), np.empty(2, dt)
        with np.errstate(all="ignore"):
            softmax_rows(L, d, losses)
        out[dt] = (L, losses)
    (L64, l64), (L32, l32) = out[np.float64], out[np.float32]
    np.testing.assert_array_equal(np.isnan(L32), np.isnan(L64))
    np.testing.assert_array_equal(np.isinf(L32), np.isinf(L64))
    np.testing.assert_array_equal(np.isnan(l32), np.isnan(l64))
    np.testing.assert_array_equal(np.isinf(l32), np.isinf(l64))
    assert np.all(np.isfinite(L32[1])) and np.isfinite(l32[1])


_PURE_PYTHON_SCRIPT = """
import numpy as np
from gradlab import RNN, Batch, forward, gradient, contributions
m = RNN.init(5, 3, rng=0, activation="tanh", dtype="float32")
b = Batch.for_language_model([[0, 1, 2, 4], [3]], [[1, 2, 3, 0], [0]])
fw = forward(m, b, return_probs=True)
g = gradient(m, b, "tbptt:1")
c = contributions(m, b, max_lag=2)
np.savez(OUT, s=fw.s, probs=fw.probs, losses=fw.losses, U=g.U, V=g.V, W=g.W, G_U=c.G_U)
"""


def test_float32_kernels_run_as_plain_python(tmp_path):
    """NUMBA_DISABLE_JIT=1 (the coverage run) takes the float32 paths too, softmax dispatch included."""
    out = tmp_path / "out.npz"
    run_without_jit(_PURE_PYTHON_SCRIPT, out)
    got = np.load(out)
    m = RNN.init(5, 3, rng=0, activation="tanh", dtype="float32")
    b = Batch.for_language_model([[0, 1, 2, 4], [3]], [[1, 2, 3, 0], [0]])
    fw = forward(m, b, return_probs=True)
    g = gradient(m, b, "tbptt:1")
    for name, want in (("s", fw.s), ("probs", fw.probs), ("losses", fw.losses), ("U", g.U), ("V", g.V),
                       ("W", g.W), ("G_U", contributions(m, b, max_lag=2).G_U)):
        assert_close32(got[name], want.astype(np.float64), name)
