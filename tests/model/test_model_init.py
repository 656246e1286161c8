"""RNN.init: the recurrent initialisations (normal, orthogonal, identity) and their errors."""
import numpy as np
import pytest

from gradlab import RNN

#: Q from a QR decomposition is orthogonal to rounding
ORTHO_ATOL = 1e-12


def test_normal_is_the_coursework_draw():
    m = RNN.init(7, 5, rng=3, scale=0.4)
    r = np.random.default_rng(3)
    np.testing.assert_array_equal(m.U, r.standard_normal((5, 5)) * 0.4)
    np.testing.assert_array_equal(m.V, r.standard_normal((5, 7)) * 0.4)


@pytest.mark.parametrize("gain", [0.5, 1.0, 1.3])
def test_orthogonal_has_all_singular_values_equal_to_gain(gain):
    m = RNN.init(7, 6, rng=1, recurrent="orthogonal", gain=gain)
    np.testing.assert_allclose(m.U @ m.U.T, gain ** 2 * np.eye(6), atol=ORTHO_ATOL)
    np.testing.assert_allclose(np.linalg.svd(m.U, compute_uv=False), gain, atol=ORTHO_ATOL)


def test_orthogonal_is_the_q_of_the_same_draw_and_keeps_v_and_w():
    normal = RNN.init(7, 6, rng=2, scale=0.3)
    ortho = RNN.init(7, 6, rng=2, scale=0.3, recurrent="orthogonal")
    np.testing.assert_array_equal(ortho.V, normal.V)
    np.testing.assert_array_equal(ortho.W, normal.W)
    # U = Q D with D = sign(diag R): then Q D (D R) = Q R, and D R has a positive diagonal
    G = normal.U / 0.3
    R = ortho.U.T @ G
    np.testing.assert_allclose(ortho.U @ R, G, atol=1e-12)
    assert np.all(np.diag(R) > 0)
    np.testing.assert_allclose(np.tril(R, -1), 0.0, atol=1e-12)


def test_orthogonal_draws_differ_by_seed_and_repeat_by_seed():
    a = RNN.init(4, 5, rng=0, recurrent="orthogonal")
    assert not np.allclose(a.U, RNN.init(4, 5, rng=1, recurrent="orthogonal").U)
    np.testing.assert_array_equal(a.U, RNN.init(4, 5, rng=0, recurrent="orthogonal").U)


def test_identity():
    m = RNN.init(4, 3, rng=0, recurrent="identity", gain=0.9, activation="relu")
    np.testing.assert_array_equal(m.U, 0.9 * np.eye(3))
    np.testing.assert_array_equal(m.V, RNN.init(4, 3, rng=0).V)


@pytest.mark.parametrize("kwargs, message", [
    ({"recurrent": "haar"}, r"recurrent must be one of \('normal', 'orthogonal', 'identity'\); received 'haar'"),
    ({"recurrent": "orthogonal", "gain": -1.0}, "gain must be a finite number >= 0; received -1.0"),
    ({"gain": float("nan")}, "gain must be a finite number >= 0"),
    ({"gain": True}, "gain must be a finite number >= 0; received True"),
])
def test_bad_init_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RNN.init(4, 3, rng=0, **kwargs)
