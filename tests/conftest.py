"""Shared fixtures and random problem builders for the gradlab tests.

Everything random is seeded: the ``rng`` fixture for plain tests, a drawn integer
seed for hypothesis tests (hypothesis then shrinks and replays it).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np
import pytest

_TESTS = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_TESTS)
# `from naive import ...` and `import gradlab` must work whatever the import mode.
for _p in (_TESTS, _ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

SEED = 20240917

#: Set to 1 by .ci/run: the optional PyTorch oracle must run there, so a missing torch fails
#: the tests that need it instead of skipping them.
REQUIRE_TORCH_ENV = "GRADLAB_REQUIRE_TORCH"

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
OBJECTIVES = ("lm", "final")


def n_sentences():
    """Hypothesis strategy for a batch size: 1..4, or more sentences than the kernels' fixed chunks
    (``gradlab._config.N_CHUNKS``), so that some chunks hold several sentences."""
    from hypothesis import strategies as st

    from gradlab._config import N_CHUNKS
    return st.one_of(st.integers(1, 4), st.integers(N_CHUNKS + 1, 2 * N_CHUNKS + 16))


def import_torch():
    """``torch``, or skip the calling test module where it is not installed.

    Where ``GRADLAB_REQUIRE_TORCH=1`` (CI) a missing torch is a failure, not a skip.
    """
    if os.environ.get(REQUIRE_TORCH_ENV, "") not in ("", "0"):
        try:
            import torch
        except ImportError as exc:
            pytest.fail(f"{REQUIRE_TORCH_ENV}=1 but torch cannot be imported ({exc}); "
                        "install it with `pip install torch==2.13.0` (CPU)", pytrace=False)
        return torch
    return pytest.importorskip("torch")


def run_without_jit(script: str, out) -> None:
    """Run ``script`` (which writes its results to ``OUT``) in a fresh process with NUMBA_DISABLE_JIT=1:
    the kernels as plain Python, with bounds checks (the coverage run); fails with its stderr."""
    import subprocess
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", f"OUT = {str(out)!r}\n" + script], cwd=_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed for every test."""
    return np.random.default_rng(SEED)


@dataclass
class Problem:
    """A model and a batch, both as gradlab objects and as the plain arrays naive.py takes."""

    model: object          # gradlab.RNN
    batch: object          # gradlab.Batch
    xs: list               # per-sentence int64 input ids
    ds: list               # per-sentence int64 targets, -1 = no loss
    activation: str

    @property
    def arrays(self):
        """(U, V, W, activation, xs, ds) for the naive references."""
        m = self.model
        return m.U, m.V, m.W, self.activation, self.xs, self.ds

    @property
    def max_T(self) -> int:
        return max(len(x) for x in self.xs)


def random_model(rng: np.random.Generator, vocab_size: int, hidden_size: int, output_size: int | None = None,
                 activation: str = "sigmoid", scale: float = 0.5):
    """An RNN with N(0, scale^2) weights drawn from ``rng``."""
    from gradlab.model import RNN

    output_size = vocab_size if output_size is None else output_size
    U = rng.standard_normal((hidden_size, hidden_size)) * scale
    V = rng.standard_normal((hidden_size, vocab_size)) * scale
    W = rng.standard_normal((output_size, hidden_size)) * scale
    return RNN(U, V, W, activation)


def random_sentences(rng: np.random.Generator, vocab_size: int, lengths) -> list[np.ndarray]:
    return [rng.integers(0, vocab_size, size=int(T)).astype(np.int64) for T in lengths]


def random_problem(rng: np.random.Generator, *, objective: str = "lm", hidden_size: int = 3, vocab_size: int = 4,
                   lengths=(5, 1, 3), activation: str = "sigmoid", n_classes: int = 2, scale: float = 0.5,
                   drop_targets: float = 0.0) -> Problem:
    """A random model and batch.

    ``objective="lm"``: |O| = |V|, a target at every step (a fraction ``drop_targets``
    of them replaced by -1, i.e. no loss there), built with Batch.for_language_model.
    ``objective="final"``: |O| = ``n_classes``, one label per sentence, built with
    Batch.for_classification.
    """
    from gradlab.batch import Batch

    xs = random_sentences(rng, vocab_size, lengths)
    if objective == "lm":
        model = random_model(rng, vocab_size, hidden_size, None, activation, scale)
        ds = random_sentences(rng, vocab_size, lengths)
        if drop_targets > 0:
            for d in ds:
                d[rng.random(d.size) < drop_targets] = -1
        batch = Batch.for_language_model(xs, ds)
    elif objective == "final":
        model = random_model(rng, vocab_size, hidden_size, n_classes, activation, scale)
        labels = rng.integers(0, n_classes, size=len(xs))
        batch = Batch.for_classification(xs, labels)
        ds = []
        for x, lab in zip(xs, labels):
            d = np.full(x.size, -1, dtype=np.int64)
            d[-1] = lab
            ds.append(d)
    else:
        raise ValueError(objective)
    return Problem(model, batch, xs, ds, activation)
