"""Batches of variable-length sentences, stored without padding.

A batch concatenates the input ids of all sentences into one array and keeps
``offsets`` so that sentence i is ``ids[offsets[i]:offsets[i+1]]``. Targets live
beside the inputs, one per token; ``-1`` marks a step without a loss. Both
objectives of docs/maths.md are then one layout:

- language modelling: a target at every step;
- final-step classification: a target only at the last step of each sentence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._validate import as_id_array

#: Target value of a step that has no loss.
NO_LOSS = -1

OBJECTIVES = ("lm", "final")


def offsets_from_lengths(lengths) -> np.ndarray:
    """Offsets of runs of these lengths laid end to end: int64 (n + 1,), ``offsets[0] = 0`` and
    run i is ``offsets[i]:offsets[i+1]`` (the layout of :attr:`Batch.offsets`)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


@dataclass(frozen=True, eq=False)
class Batch:
    """Sentences as concatenated ids plus offsets.

    Attributes
    ----------
    ids : int64 array, shape (N,)
        Input word ids x(t) of all sentences, concatenated.
    targets : int64 array, shape (N,)
        Target id d(t) of each step, or ``NO_LOSS`` (-1) where the step has no loss.
    offsets : int64 array, shape (n + 1,)
        Sentence i occupies ``offsets[i]:offsets[i+1]``; ``offsets[0] == 0``.
    objective : {"lm", "final"}
        How the targets were laid out (informational; the kernels read ``targets``).
    """

    ids: np.ndarray
    targets: np.ndarray
    offsets: np.ndarray
    objective: str = "lm"

    def __post_init__(self):
        ids = as_id_array(self.ids, "ids")
        targets = as_id_array(self.targets, "targets")
        offsets = as_id_array(self.offsets, "offsets")
        if targets.shape != ids.shape:
            raise ValueError(f"targets must have one entry per input id ({ids.size}); received {targets.size}")
        if offsets.size < 1 or offsets[0] != 0 or offsets[-1] != ids.size:
            raise ValueError(f"offsets must start at 0 and end at len(ids) = {ids.size}; "
                             f"received {offsets[:3].tolist()}...{offsets[-3:].tolist()}")
        lengths = np.diff(offsets)
        if (lengths <= 0).any():
            i = int(np.flatnonzero(lengths <= 0)[0])
            raise ValueError(f"sentence {i} is empty (offsets {offsets[i]}..{offsets[i + 1]}); "
                             "every sentence needs at least one input token")
        if (targets < NO_LOSS).any():
            i = int(np.flatnonzero(targets < NO_LOSS)[0])
            raise IndexError(f"targets holds {int(targets[i])} at {self._where(offsets, i)}; "
                             f"ids must be >= 0 (or {NO_LOSS} for a step without a loss)")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}; received {self.objective!r}")
        for name, arr in (("ids", ids), ("targets", targets), ("offsets", offsets)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @staticmethod
    def _where(offsets: np.ndarray, i: int) -> str:
        s = int(np.searchsorted(offsets, i, side="right") - 1)
        return f"sentence {s}, step {i - int(offsets[s])}"

    def where(self, i: int) -> str:
        """Describe flat token position ``i`` as 'sentence s, step t' (for error messages)."""
        return self._where(self.offsets, i)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def for_language_model(cls, inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]] | None = None) -> "Batch":
        """A loss at every step.

        Parameters
        ----------
        inputs : sequence of int sequences
            x(0..T-1) of each sentence.
        targets : sequence of int sequences, optional
            d(0..T-1) of each sentence, the same lengths as ``inputs``. When omitted,
            each sentence of ``inputs`` is split into inputs ``w[:-1]`` and next-word
            targets ``w[1:]`` (sentences then need at least two tokens).
        """
        if targets is None:
            seqs = [as_id_array(w, f"sentence {i}") for i, w in enumerate(inputs)]
            for i, w in enumerate(seqs):
                if w.size < 2:
                    raise ValueError(f"sentence {i} has {w.size} token(s); language modelling needs at least 2 "
                                     "(inputs w[:-1], targets w[1:])")
            xs, ds = [w[:-1] for w in seqs], [w[1:] for w in seqs]
        else:
            xs = [as_id_array(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
            ds = [as_id_array(d, f"targets[{i}]") for i, d in enumerate(targets)]
            if len(xs) != len(ds):
                raise ValueError(f"inputs and targets must hold the same number of sentences; "
                                 f"received {len(xs)} and {len(ds)}")
            for i, (x, d) in enumerate(zip(xs, ds)):
                if x.size != d.size:
                    raise ValueError(f"sentence {i}: inputs have {x.size} steps but targets {d.size}; "
                                     "language modelling needs one target per step")
        return cls._concat(xs, ds, "lm")

    @classmethod
    def for_classification(cls, inputs: Sequence[Sequence[int]], labels: Sequence[int]) -> "Batch":
        """One loss per sentence, at its last step (number prediction: label 0/1 = VBZ/VBP, or any class)."""
        xs = [as_id_array(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
        labels = as_id_array(np.asarray(labels).reshape(-1), "labels")
        if len(xs) != labels.size:
            raise ValueError(f"need one label per sentence: {len(xs)} sentences, {labels.size} labels")
        ds = []
        for x, lab in zip(xs, labels):
            d = np.full(x.size, NO_LOSS, dtype=np.int64)
            if x.size:
                d[-1] = lab
            ds.append(d)
        return cls._concat(xs, ds, "final")

    @classmethod
    def _concat(cls, xs, ds, objective) -> "Batch":
        if not xs:
            raise ValueError("a batch needs at least one sentence; received none")
        for i, x in enumerate(xs):
            if x.size == 0:
                raise ValueError(f"sentence {i} is empty; every sentence needs at least one input token")
        lengths = np.fromiter((x.size for x in xs), dtype=np.int64, count=len(xs))
        return cls(np.concatenate(xs), np.concatenate(ds), offsets_from_lengths(lengths), objective)

    # ------------------------------------------------------------------ views
    @property
    def n_sentences(self) -> int:
        return self.offsets.size - 1

    @property
    def n_tokens(self) -> int:
        return self.ids.size

    @property
    def n_losses(self) -> int:
        return int(np.count_nonzero(self.targets != NO_LOSS))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def positions(self) -> np.ndarray:
        """Step t of every token within its sentence, int64 array of shape (N,)."""
        return np.arange(self.n_tokens, dtype=np.int64) - np.repeat(self.offsets[:-1], self.lengths)

    def sentence_index(self) -> np.ndarray:
        """Sentence number of every token, int64 array of shape (N,)."""
        return np.repeat(np.arange(self.n_sentences, dtype=np.int64), self.lengths)

    def sentence(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of sentence ``i``."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], self.targets[a:b]

    def select(self, indices) -> "Batch":
        """A new batch with the sentences at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        xs = [self.sentence(int(i))[0] for i in idx]
        ds = [self.sentence(int(i))[1] for i in idx]
        return Batch._concat(xs, ds, self.objective)

    def __len__(self) -> int:
        return self.n_sentences

    def __repr__(self) -> str:
        return (f"Batch(objective={self.objective!r}, n_sentences={self.n_sentences}, "
                f"n_tokens={self.n_tokens}, n_losses={self.n_losses})")
