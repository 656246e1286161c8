"""Bad input raises at the public boundary, one test per bad input, with a message that names the parameter.

Also RNN.save / RNN.load: round trip and load errors.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_problem

from gradlab import (RNN, Batch, Block, Full, Sliding, chunked, contributions, forward, gradient, mikolov,
                     parse_scheme)


def _call_forward(model, batch):
    return forward(model, batch)


def _call_gradient(model, batch):
    return gradient(model, batch, scheme=Sliding(2))


def _call_contributions(model, batch):
    return contributions(model, batch, max_lag=2)


ENGINE = pytest.mark.parametrize("call", [_call_forward, _call_gradient, _call_contributions],
                                 ids=["forward", "gradient", "contributions"])


@pytest.fixture
def problem(rng):
    return random_problem(rng, hidden_size=3, vocab_size=4, lengths=(4, 2))


# --------------------------------------------------------------------------- ids and targets
@ENGINE
def test_input_id_too_large(problem, call):
    batch = Batch.for_language_model([[0, 1, 4]], [[1, 2, 3]])  # |V| = 4: id 4 is out of range
    with pytest.raises(IndexError, match=r"ids.*4"):
        call(problem.model, batch)


@ENGINE
def test_input_id_negative(problem, call):
    batch = Batch.for_language_model([[0, -1, 2]], [[1, 2, 3]])
    with pytest.raises(IndexError, match=r"ids.*-1"):
        call(problem.model, batch)


@ENGINE
def test_target_too_large_for_W(problem, call):
    batch = Batch.for_language_model([[0, 1, 2]], [[1, 9, 3]])  # |O| = 4
    with pytest.raises(IndexError, match=r"targets.*9"):
        call(problem.model, batch)


@ENGINE
def test_label_too_large_for_W(rng, call):
    p = random_problem(rng, objective="final", n_classes=2)
    batch = Batch.for_classification([[0, 1], [2]], [1, 2])  # |O| = 2: label 2 is out of range
    with pytest.raises(IndexError, match=r"targets.*2"):
        call(p.model, batch)


def test_target_below_no_loss_marker():
    with pytest.raises(IndexError, match="targets"):
        Batch.for_language_model([[0, 1]], [[1, -2]])


# --------------------------------------------------------------------------- batch structure
def test_empty_sentence_language_model():
    with pytest.raises(ValueError, match=r"sentence 1 is empty"):
        Batch.for_language_model([[0, 1], []], [[1, 2], []])


def test_empty_sentence_classification():
    with pytest.raises(ValueError, match=r"sentence 0 is empty"):
        Batch.for_classification([[]], [0])


def test_empty_sentence_in_offsets():
    with pytest.raises(ValueError, match=r"sentence 1 is empty"):
        Batch(np.array([0, 1]), np.array([1, 2]), np.array([0, 2, 2]))


def test_no_sentences():
    with pytest.raises(ValueError, match="at least one sentence"):
        Batch.for_language_model([], [])


def test_inputs_and_targets_lengths_differ():
    with pytest.raises(ValueError, match=r"sentence 0.*targets"):
        Batch.for_language_model([[0, 1, 2]], [[1, 2]])


def test_one_label_per_sentence():
    with pytest.raises(ValueError, match="label"):
        Batch.for_classification([[0, 1], [2]], [1])


# --------------------------------------------------------------------------- dtypes
def test_float_ids_with_fractions():
    with pytest.raises(TypeError, match=r"inputs\[0\].*integer"):
        Batch.for_language_model([np.array([0.0, 1.5])], [[1, 2]])


def test_float_targets_with_fractions():
    with pytest.raises(TypeError, match=r"targets\[0\].*integer"):
        Batch.for_language_model([[0, 1]], [np.array([1.0, 2.25])])


def test_float_labels_with_fractions():
    with pytest.raises(TypeError, match=r"labels.*integer"):
        Batch.for_classification([[0, 1]], np.array([0.5]))


def test_whole_float_ids_are_accepted(problem):
    a = Batch.for_language_model([np.array([0.0, 1.0, 3.0])], [np.array([1.0, 2.0, 0.0])])
    b = Batch.for_language_model([[0, 1, 3]], [[1, 2, 0]])
    np.testing.assert_array_equal(a.ids, b.ids)
    assert gradient(problem.model, a).loss == gradient(problem.model, b).loss


def test_string_ids():
    with pytest.raises(TypeError, match=r"inputs\[0\]"):
        Batch.for_language_model([np.array(["the", "cat"])], [[1, 2]])


def test_string_targets():
    with pytest.raises(TypeError, match=r"targets\[0\]"):
        Batch.for_language_model([[0, 1]], [np.array(["a", "b"])])


def test_string_weights_in_constructor():
    with pytest.raises(TypeError, match=r"\bU\b"):
        RNN(np.array([["a"]]), np.zeros((1, 2)), np.zeros((2, 1)))


@ENGINE
def test_string_weights_assigned_later(problem, call):
    problem.model.U = np.full((3, 3), "x")
    with pytest.raises(TypeError, match=r"\bU\b"):
        call(problem.model, problem.batch)


# --------------------------------------------------------------------------- shapes
def test_U_not_square():
    with pytest.raises(ValueError, match=r"\bU\b.*square"):
        RNN(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((4, 2)))


def test_U_not_a_matrix():
    with pytest.raises(ValueError, match=r"\bU\b.*2-D"):
        RNN(np.zeros(3), np.zeros((3, 4)), np.zeros((4, 3)))


def test_V_rows_differ_from_H():
    with pytest.raises(ValueError, match=r"\bV\b.*shape"):
        RNN(np.zeros((3, 3)), np.zeros((2, 4)), np.zeros((4, 3)))


def test_W_cols_differ_from_H():
    with pytest.raises(ValueError, match=r"\bW\b.*shape"):
        RNN(np.zeros((3, 3)), np.zeros((3, 4)), np.zeros((4, 2)))


@ENGINE
@pytest.mark.parametrize("name, shape", [("U", (3, 2)), ("V", (2, 4)), ("W", (4, 2))])
def test_shape_broken_after_construction(problem, call, name, shape):
    """The arrays are public; the engine re-validates them on every call."""
    setattr(problem.model, name, np.zeros(shape))
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(problem.model, problem.batch)


# --------------------------------------------------------------------------- non-finite weights
@pytest.mark.parametrize("name", ["U", "V", "W"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_weights_in_constructor(rng, name, bad):
    arrays = {"U": rng.standard_normal((3, 3)), "V": rng.standard_normal((3, 4)), "W": rng.standard_normal((4, 3))}
    arrays[name][1, 2] = bad
    with pytest.raises(ValueError, match=rf"\b{name}\b.*non-finite"):
        RNN(**arrays)


@ENGINE
@pytest.mark.parametrize("name", ["U", "V", "W"])
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_weights_written_in_place(problem, call, name, bad):
    getattr(problem.model, name)[0, 1] = bad
    with pytest.raises(ValueError, match=rf"\b{name}\b.*non-finite"):
        call(problem.model, problem.batch)


# --------------------------------------------------------------------------- activation
def test_unknown_activation_in_init():
    with pytest.raises(ValueError, match=r"activation.*gelu"):
        RNN.init(4, 3, activation="gelu")


def test_unknown_activation_in_constructor():
    with pytest.raises(ValueError, match=r"activation.*softplus"):
        RNN(np.zeros((3, 3)), np.zeros((3, 4)), np.zeros((4, 3)), "softplus")


@ENGINE
def test_unknown_activation_assigned_later(problem, call):
    problem.model.activation = "gelu"
    with pytest.raises(ValueError, match=r"activation.*gelu"):
        call(problem.model, problem.batch)


# --------------------------------------------------------------------------- schemes
def test_negative_tau():
    with pytest.raises(ValueError, match=r"tau.*-1"):
        Sliding(-1)


def test_float_tau():
    with pytest.raises(TypeError, match="tau"):
        Sliding(1.5)


def test_bool_tau():
    with pytest.raises(TypeError, match="tau"):
        Sliding(True)


def test_k2_below_k1():
    with pytest.raises(ValueError, match=r"k2 >= k1.*k1=3.*k2=2"):
        Block(3, 2)


def test_k1_zero():
    with pytest.raises(ValueError, match="k1"):
        Block(0, 2)


def test_chunk_size_zero():
    with pytest.raises(ValueError, match=r"\bh\b"):
        chunked(0)


def test_mikolov_negative_bptt():
    with pytest.raises(ValueError, match="bptt"):
        mikolov(-1, 3)


def test_mikolov_block_zero():
    with pytest.raises(ValueError, match="bptt_block"):
        mikolov(2, 0)


def test_unknown_scheme_string(problem):
    with pytest.raises(ValueError, match=r"unknown scheme.*magic"):
        gradient(problem.model, problem.batch, scheme="magic:3")


def test_unknown_scheme_string_in_parser():
    with pytest.raises(ValueError, match=r"unknown scheme.*bptt"):
        parse_scheme("bptt:3")


@pytest.mark.parametrize("text", ["tbptt", "tbptt:", "tbptt:x", "tbptt:1,2", "block:3", "block:a,b",
                                  "full:3", "mikolov:1", "chunked:2.5", "tbptt:3;"])
def test_malformed_scheme_string(problem, text):
    with pytest.raises(ValueError, match="scheme"):
        gradient(problem.model, problem.batch, scheme=text)


@pytest.mark.parametrize("text, name", [("tbptt:-1", "tau"), ("block:3,2", "k2"), ("chunked:0", r"\bh\b"),
                                        ("mikolov:-1,2", "bptt")])
def test_scheme_string_with_bad_values(problem, text, name):
    with pytest.raises(ValueError, match=name):
        gradient(problem.model, problem.batch, scheme=text)


def test_scheme_of_wrong_type(problem):
    with pytest.raises(TypeError, match="scheme"):
        gradient(problem.model, problem.batch, scheme=3)


# --------------------------------------------------------------------------- contributions
def test_negative_max_lag(problem):
    with pytest.raises(ValueError, match=r"max_lag.*-1"):
        contributions(problem.model, problem.batch, max_lag=-1)


def test_float_max_lag(problem):
    with pytest.raises(TypeError, match="max_lag"):
        contributions(problem.model, problem.batch, max_lag=2.5)


def test_truncated_negative_tau(problem):
    c = contributions(problem.model, problem.batch, max_lag=2)
    with pytest.raises(ValueError, match="tau"):
        c.truncated(-1)


def test_truncated_beyond_max_lag(problem):
    c = contributions(problem.model, problem.batch, max_lag=2)
    with pytest.raises(ValueError, match="max_lag"):
        c.truncated(3)


# --------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_save_load_round_trip(rng, tmp_path, activation):
    p = random_problem(rng, activation=activation, hidden_size=3, vocab_size=5, lengths=(4, 3))
    path = p.model.save(tmp_path / "sub" / "model.npz")
    loaded = RNN.load(path)
    for name in "UVW":
        np.testing.assert_array_equal(getattr(loaded, name), getattr(p.model, name))
        assert getattr(loaded, name).dtype == np.float64
    assert loaded.activation == activation
    a, b = gradient(p.model, p.batch, scheme=Full()), gradient(loaded, p.batch, scheme=Full())
    assert np.array_equal(a.U, b.U) and np.array_equal(a.V, b.V) and np.array_equal(a.W, b.W)


def test_save_adds_npz_suffix(rng, tmp_path):
    model = RNN.init(4, 3, rng=1)
    path = model.save(tmp_path / "model")
    assert path.suffix == ".npz" and path.exists()
    np.testing.assert_array_equal(RNN.load(path).U, model.U)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        RNN.load(tmp_path / "nope.npz")


def test_load_missing_arrays(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, U=np.zeros((2, 2)), V=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"partial.npz.*\bW\b"):
        RNN.load(path)


def test_load_bad_shapes_in_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, U=np.zeros((2, 3)), V=np.zeros((2, 3)), W=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"bad.npz.*\bU\b"):
        RNN.load(path)


def test_load_non_finite_in_file(tmp_path):
    path = tmp_path / "nan.npz"
    np.savez(path, U=np.full((2, 2), np.nan), V=np.zeros((2, 3)), W=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"nan.npz.*non-finite"):
        RNN.load(path)


def test_load_text_file(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("this is not a model\n")
    with pytest.raises(ValueError, match="text.npz"):
        RNN.load(path)


def test_load_npy_file(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="single.npy"):
        RNN.load(path)


def test_load_truncated_npz(rng, tmp_path):
    path = RNN.init(4, 3, rng=1).save(tmp_path / "whole.npz")
    data = path.read_bytes()
    broken = tmp_path / "broken.npz"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="broken.npz"):
        RNN.load(broken)
