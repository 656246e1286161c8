"""The Elman RNN of the classic NLU coursework, backed by gradlab's kernels.

Students and teachers use this class to check their own implementations: its
methods have the coursework's names, arguments and conventions.

- ``U`` (H x H), ``V`` (H x |V|) and ``W`` (|O| x H) are public and may be written in place.
- ``deltaU``, ``deltaV``, ``deltaW`` accumulate *update directions*, the negative
  gradient without learning rate: ``deltaW += (onehot(d) - y) (x) s`` and so on.
- ``predict(x)`` returns ``(y, s)`` with y of T rows and s of T + 1 rows, the last
  row being the zero initial state, so that ``s[t - 1]`` works at t = 0.
- The hidden activation is the sigmoid.

The ``acc_deltas*`` methods back-propagate from the ``y`` and ``s`` they are given
(as the coursework's equations do), so they also work on arrays that a student's
own ``predict`` produced.
"""
from __future__ import annotations

import numpy as np

from .. import engine
from .._validate import as_float_matrix, as_id_array, check_ids_in_range, check_int
from ..batch import NO_LOSS, Batch
from ..model import DEFAULT_SCALE, RNN as _Model
from ..schemes import UNLIMITED, Sliding


class RNN:
    """The coursework's RNN.

    Parameters
    ----------
    vocab_size : int
        |V|, the number of input words.
    hidden_dims : int
        H.
    out_vocab_size : int
        |O|: |V| for language modelling, 2 for number prediction.
    rng : int or numpy.random.Generator, optional
        Seed of the initialisation N(0, 0.1) of U, V, W. When omitted, NumPy's
        global random state is used, as the coursework does (``np.random.randn``).
    """

    def __init__(self, vocab_size, hidden_dims, out_vocab_size, rng=None):
        self.vocab_size = check_int(vocab_size, "vocab_size", 1)
        self.hidden_dims = check_int(hidden_dims, "hidden_dims", 1)
        self.out_vocab_size = check_int(out_vocab_size, "out_vocab_size", 1)
        if rng is None:
            self.V = np.random.randn(self.hidden_dims, self.vocab_size) * DEFAULT_SCALE
            self.U = np.random.randn(self.hidden_dims, self.hidden_dims) * DEFAULT_SCALE
            self.W = np.random.randn(self.out_vocab_size, self.hidden_dims) * DEFAULT_SCALE
        else:
            model = _Model.init(self.vocab_size, self.hidden_dims, self.out_vocab_size, rng=rng)
            self.U, self.V, self.W = model.U, model.V, model.W
        self.deltaU = np.zeros((self.hidden_dims, self.hidden_dims))
        self.deltaV = np.zeros((self.hidden_dims, self.vocab_size))
        self.deltaW = np.zeros((self.out_vocab_size, self.hidden_dims))

    # ------------------------------------------------------------------ helpers
    def _model(self) -> _Model:
        H = self.hidden_dims
        U = as_float_matrix(self.U, "U", (H, H))
        V = as_float_matrix(self.V, "V", (H, self.vocab_size))
        W = as_float_matrix(self.W, "W", (self.out_vocab_size, H))
        return _Model(U, V, W, "sigmoid")

    def _x(self, x, name="x") -> np.ndarray:
        ids = as_id_array(x, name)
        if ids.size == 0:
            raise ValueError(f"{name} is an empty sentence; it needs at least one word id")
        check_ids_in_range(ids, self.vocab_size, name, lambda i: f"position {i}")
        return ids

    def _d(self, d, size, upper, name="d") -> np.ndarray:
        ids = as_id_array(d, name)
        if ids.size != size:
            raise ValueError(f"{name} must hold {size} id(s); received {ids.size}")
        check_ids_in_range(ids, upper, name, lambda i: f"position {i}")
        return ids

    def _final_probs(self, x) -> np.ndarray:
        y, _ = self.predict(x)
        return y[-1]

    # ------------------------------------------------------------------ forward
    def predict(self, x):
        """Forward pass.

        Parameters
        ----------
        x : sequence of int
            Word ids x(0..T-1).

        Returns
        -------
        y : float64 (T, out_vocab_size)
            y(t) = softmax(W s(t)).
        s : float64 (T + 1, hidden_dims)
            s(t) = sigmoid(V x(t) + U s(t-1)); row T (= s[-1]) is the zero initial state.
        """
        ids = self._x(x)
        batch = Batch(ids, np.full(ids.size, NO_LOSS), np.array([0, ids.size]))
        fw = engine.forward(self._model(), batch, return_probs=True)
        s = np.zeros((ids.size + 1, self.hidden_dims))
        s[:-1] = fw.s
        return fw.probs, s

    def compute_loss(self, x, d) -> float:
        """Sum over t of -log y(t)[d(t)] for one sentence (language modelling)."""
        ids = self._x(x)
        targets = self._d(d, ids.size, self.out_vocab_size)
        batch = Batch(ids, targets, np.array([0, ids.size]))
        return engine.forward(self._model(), batch).loss

    def compute_mean_loss(self, X, D) -> float:
        """Total loss of the corpus divided by the number of predicted words."""
        if len(X) != len(D):
            raise ValueError(f"X and D must hold the same number of sentences; received {len(X)} and {len(D)}")
        xs = [self._x(x, f"X[{i}]") for i, x in enumerate(X)]
        ds = [self._d(d, x.size, self.out_vocab_size, f"D[{i}]") for i, (x, d) in enumerate(zip(xs, D))]
        fw = engine.forward(self._model(), Batch.for_language_model(xs, ds))
        return fw.loss / fw.n_losses

    def compute_loss_np(self, x, d) -> float:
        """-log y(T-1)[d[0]]: the loss of the final-step prediction (number prediction)."""
        ids = self._x(x)
        label = self._d(np.asarray(d).reshape(-1)[:1], 1, self.out_vocab_size)
        return engine.forward(self._model(), Batch.for_classification([ids], label)).loss

    def compute_acc_np(self, x, d) -> int:
        """1 if argmax y(T-1) equals d[0], else 0."""
        label = self._d(np.asarray(d).reshape(-1)[:1], 1, self.out_vocab_size)
        return int(np.argmax(self._final_probs(x)) == label[0])

    def compare_num_pred(self, x, d) -> int:
        """1 if y(T-1)[d[0]] > y(T-1)[d[1]] (the verb beats its other inflection), else 0."""
        pair = self._d(np.asarray(d).reshape(-1)[:2], 2, self.out_vocab_size)
        y = self._final_probs(x)
        return int(y[pair[0]] > y[pair[1]])

    # ------------------------------------------------------------------ backward
    def _accumulate(self, x, d, y, s, steps, final_only):
        ids = self._x(x)
        T = ids.size
        H = self.hidden_dims
        if final_only:
            labels = self._d(np.asarray(d).reshape(-1)[:1], 1, self.out_vocab_size)
            pos = np.array([T - 1], dtype=np.int64)
        else:
            labels = self._d(d, T, self.out_vocab_size)
            pos = np.arange(T, dtype=np.int64)
        y = as_float_matrix(y, "y", (None, self.out_vocab_size))
        s = as_float_matrix(s, "s", (None, H))
        if y.shape[0] < T or s.shape[0] < T:
            raise ValueError(f"y needs at least T = {T} rows and s at least T (+1) rows, as predict(x) returns; "
                             f"received y {y.shape}, s {s.shape}")
        model = self._model()
        S = np.ascontiguousarray(s[:T])
        delta_out = y[pos].copy()                      # y - onehot(d)
        delta_out[np.arange(pos.size), labels] -= 1.0
        targets = np.full(T, NO_LOSS, dtype=np.int64)
        targets[pos] = labels
        batch = Batch(ids, targets, np.array([0, T]))
        # at t - k = 0 the coursework multiplies by s[t-k-1] = s[-1], the last row of the s given
        grads = engine.backpropagate(model, batch, S, delta_out @ model.W, Sliding(steps), initial_states=s[-1])
        dU, dV = grads["U"], grads["V"]
        # updates are negative gradients
        self.deltaW -= delta_out.T @ S[pos]
        self.deltaU -= dU
        self.deltaV -= dV

    def acc_deltas(self, x, d, y, s):
        """Accumulate updates of one sentence, back-propagating one step (no recurrence).

        deltaW += (d(t) - y(t)) s(t)^T; delta_in(t) = W^T (d(t) - y(t)) o s(t)(1 - s(t));
        deltaV[:, x(t)] += delta_in(t); deltaU += delta_in(t) s(t-1)^T.
        """
        self._accumulate(x, d, y, s, 0, final_only=False)

    def acc_deltas_bptt(self, x, d, y, s, steps):
        """Accumulate updates with BPTT: every loss t goes back ``steps`` steps (t, t-1, ..., t-steps)."""
        steps = check_int(steps, "steps", 0)
        self._accumulate(x, d, y, s, min(steps, UNLIMITED), final_only=False)

    def acc_deltas_np(self, x, d, y, s):
        """Number prediction: updates from the final-step loss only, one step back."""
        self._accumulate(x, d, y, s, 0, final_only=True)

    def acc_deltas_bptt_np(self, x, d, y, s, steps):
        """Number prediction: updates from the final-step loss, back-propagated ``steps`` steps."""
        steps = check_int(steps, "steps", 0)
        self._accumulate(x, d, y, s, min(steps, UNLIMITED), final_only=True)

    def reset_deltas(self):
        """Set deltaU, deltaV, deltaW to zero."""
        self.deltaU.fill(0.0)
        self.deltaV.fill(0.0)
        self.deltaW.fill(0.0)

    def apply_deltas(self, learning_rate):
        """U += learning_rate * deltaU (and V, W), then reset the accumulators."""
        self.U += learning_rate * self.deltaU
        self.V += learning_rate * self.deltaV
        self.W += learning_rate * self.deltaW
        self.reset_deltas()
