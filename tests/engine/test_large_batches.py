"""Large batches: more sentences than the kernels' chunks, several sentences in every chunk.

The recurrent kernels run on ``_config.N_CHUNKS`` (32) fixed chunks of sentences, so a
chunk holds several sentences only in batches of more than 32; small test batches give
every sentence a chunk of its own, and a kernel that mishandles the second or last
sentence of a chunk (drops it, or reads the chunk's first sentence's data) passes them.
Here a fixed set of such batches — mixed lengths from 1 step to longer than every window,
sentences without any loss among the others — runs through every kernel path against
the slow references of naive.py: forward, the gradient under every scheme,
contributions, sentence gaps, and forward and gradient from per-sentence initial states.
"""
from __future__ import annotations

import numpy as np
import pytest

import naive
from conftest import random_problem
from test_engine import assert_close, assert_grad_close, check_contributions, check_forward, make_scheme
from test_sentence_gaps import assert_gaps_close

from gradlab import Batch, forward, gradient, sentence_gaps
from gradlab._config import N_CHUNKS, ranges

#: Longest sentence of every batch: longer than every window and block below.
MAX_T = 24

#: name -> (objective, activation, number of sentences, seed). Lengths are drawn in 1..MAX_T
#: with a few forced to 1 and to MAX_T; see ``large_problem`` for the sentences without losses.
BATCHES = {
    "lm-sigmoid-75": ("lm", "sigmoid", 75, 1),
    "final-tanh-72": ("final", "tanh", 72, 2),
    "lm-relu-97": ("lm", "relu", 97, 3),
}

#: Every scheme kind, with the edge cases tau = 0 and tau >= T.
SCHEMES = [
    ("full",),
    ("sliding", 0),
    ("sliding", 1),
    ("sliding", 3),
    ("sliding", MAX_T + 5),
    ("block", 2, 3),
    ("block", 3, 7),
    ("chunked", 1),
    ("chunked", 4),
    ("mikolov", 2, 3),
]

#: Lags of the contributions and sentence gaps: a short one (most losses reach K) and one
#: that covers every lag of every sentence.
MAX_LAGS = (3, MAX_T)

_cache: dict = {}


def large_problem(name: str):
    """The batch ``name`` of BATCHES (built once per session)."""
    if name not in _cache:
        objective, activation, n, seed = BATCHES[name]
        rng = np.random.default_rng(seed)
        lengths = rng.integers(1, MAX_T + 1, size=n)
        lengths[[5, 17, 40]] = 1
        lengths[[8, 60]] = MAX_T
        p = random_problem(rng, objective=objective, hidden_size=4, vocab_size=6, lengths=lengths,
                           activation=activation, n_classes=3, scale=0.5 if activation == "relu" else 1.0,
                           drop_targets=0.3 if objective == "lm" else 0.0)
        chunks = ranges(n, N_CHUNKS)
        silent = {chunks[3][0], chunks[11][0],           # sentences without any loss: first of a chunk,
                  chunks[6][1] - 1, chunks[20][1] - 1,   # last of a chunk,
                  sum(chunks[25]) // 2,                  # inside one,
                  30, 31,                                # two side by side,
                  n - 1}                                 # and the last of the batch
        for i in silent:
            p.ds[i][:] = naive.NO_LOSS
        p.batch = Batch.for_language_model(p.xs, p.ds)
        _cache[name] = p
    return _cache[name]


@pytest.fixture(params=sorted(BATCHES), scope="module")
def problem(request):
    return large_problem(request.param)


def _spec_id(spec):
    return "-".join(str(a) for a in spec)


# --------------------------------------------------------------------------- the batches are what they claim
def test_every_chunk_holds_several_sentences_and_some_have_no_loss(problem):
    b = problem.batch
    chunks = ranges(b.n_sentences, N_CHUNKS)
    assert b.n_sentences >= 70 and len(chunks) == N_CHUNKS
    assert all(s1 - s0 >= 2 for s0, s1 in chunks)
    n_loss = np.array([int((d != naive.NO_LOSS).sum()) for d in problem.ds])
    assert (n_loss == 0).sum() >= 5
    # most chunks end with a sentence that has losses (a dropped last sentence changes the result)
    assert sum(n_loss[s1 - 1] > 0 for _, s1 in chunks) >= N_CHUNKS - 6
    lengths = b.lengths
    assert lengths.min() == 1 and lengths.max() == MAX_T and len(set(lengths.tolist())) > MAX_T // 2


# --------------------------------------------------------------------------- every kernel path vs naive.py
def test_forward(problem):
    check_forward(problem)


@pytest.mark.parametrize("spec", SCHEMES, ids=_spec_id)
def test_gradient(problem, spec):
    scheme, limit = make_scheme(spec)
    assert_grad_close(gradient(problem.model, problem.batch, scheme=scheme), naive.gradient(*problem.arrays, limit),
                      str(spec))


@pytest.mark.parametrize("K", MAX_LAGS)
def test_contributions(problem, K):
    check_contributions(problem, K)


@pytest.mark.parametrize("K", MAX_LAGS)
def test_sentence_gaps(problem, K):
    gaps = sentence_gaps(problem.model, problem.batch, K)
    assert_gaps_close(gaps, *naive.sentence_gaps(*problem.arrays, K), f"K={K}")


@pytest.mark.parametrize("spec", [("full",), ("sliding", 2), ("chunked", 3), ("mikolov", 1, 4)], ids=_spec_id)
def test_initial_states(problem, spec):
    """Each sentence starts from its own s(-1): forward and gradient against the reference's loop."""
    H = problem.model.hidden_size
    S0 = np.random.default_rng(7).uniform(-0.9, 0.9, size=(problem.batch.n_sentences, H))
    if problem.activation == "relu":
        S0 = np.abs(S0)
    ref = naive.forward(*problem.arrays, initial_states=S0)
    fw = forward(problem.model, problem.batch, initial_states=S0)
    assert_close(fw.s, ref.s, "s")
    assert_close(fw.losses, ref.losses, "losses")
    scheme, limit = make_scheme(spec)
    assert_grad_close(gradient(problem.model, problem.batch, scheme=scheme, initial_states=S0),
                      naive.gradient(*problem.arrays, limit, initial_states=S0), str(spec))
