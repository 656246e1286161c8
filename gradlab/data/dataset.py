"""The one dataset interface: sentences, a vocabulary, tasks, batches and annotations.

Coordinates
-----------
A sentence of n words w[0..n-1] becomes, per task, a batch sequence of steps:

========== =========================================== ========================================
task       inputs x(t)                                  targets d(t) (-1 = no loss)
========== =========================================== ========================================
lm         ``<s>`` w[0] ... w[n-1]  (n + 1 steps)         w[0] ... w[n-1] ``</s>``
number     w[0] ... w[v-1]          (v steps)             -1 ... -1, label (VBZ = 0, VBP = 1)
agreement  ``<s>`` w[0] ... w[v-1]  (v + 1 steps)         -1 ... -1, id of the verb column
recall,    as lm                                          as lm, but -1 except where an annotated
closing                                                   dependency ends
========== =========================================== ========================================

(v = verb_idx). Word p is the input of step p + 1 in the lm-like tasks and of
step p in number; word p is the target of step p in the lm-like tasks, and the
verb v is the target of the last step v - 1 of number. So a dependency from word
s to word u (``describe()``'s ``distance`` = u - s words; verb_idx - subj_idx for
agreement) needs the loss at the dependent step to reach back

    lag = u - s - 1

steps to the input that determines it, in every task: ``dependencies(task)``
gives those steps (``source``, ``dependent``) and their ``lag``. lag 0 means
one-step backpropagation (TBPTT with tau = 0) already sees the cause.

Glossary: ``distance`` is always a count of words (u - s); ``lag`` a count of
steps (dependent - source = distance - 1); ``target`` a word id the loss is
scored against (the targets d(t) above, evaluation's ``target``), never a step.
"""
from __future__ import annotations

import numbers
from types import MappingProxyType
from typing import Iterator

import numpy as np
import pandas as pd

from ..batch import NO_LOSS, Batch, offsets_from_lengths
from .readers import NUMBER_LABELS, RawCorpus
from .vocab import Vocabulary

#: Task layouts (see the module docstring). A dataset maps each of its task names to one.
LAYOUTS = ("lm", "number", "agreement", "masked")

TASK_DESCRIPTIONS = {
    "lm": "language modelling: <s> + sentence -> sentence + </s>, a loss at every step",
    "number": "number prediction: the words before the verb -> VBZ (0) or VBP (1) at the last step",
    "agreement": "LM agreement: <s> + the words before the verb, one loss at the last step (the verb); "
                 "compare P(verb) with P(inflected verb) there, see agreement_items()",
    "recall": "language modelling with a loss only where the key is reproduced",
    "closing": "language modelling with a loss only at the steps that predict a closing bracket",
}


class Dataset:
    """Sentences with a vocabulary, annotations and conversions into engine batches.

    Get one from :func:`gradlab.data.load_dataset`; the constructor is internal.

    Attributes
    ----------
    name : str
        Registry name (``"agreement"``, ``"linzen"``, ...).
    spec : str
        Canonical spec with every parameter: ``load_dataset(spec)`` rebuilds the data
        (before any split or select).
    label : str
        Short spec (parameters that differ from their defaults) plus ``[part]`` for
        subsets; use it to tell datasets apart in reports.
    params : mapping
        Parameter values, read-only.
    vocab : Vocabulary
    tasks : tuple of str
        Task names :meth:`batch` accepts; the first is the default.
    part : str
        ``""`` for a whole dataset, else how it was derived ("train", "dev", "select", ...).
    skipped : list of (int, str)
        (line, reason) of the rows left out with ``skip_bad_rows=True``.
    """

    def __init__(self, *, name: str, spec: str, label: str, params: dict, vocab: Vocabulary,
                 corpus: RawCorpus, tasks: dict, markov_order: int | None = None,
                 attractor_method: str | None = None, part: str = "", rows: np.ndarray | None = None):
        self._name = name
        self._spec = spec
        self._label_base = label
        self._params = MappingProxyType(dict(params))
        self._vocab = vocab
        self._lexicon = corpus.lexicon
        self._tokens = corpus.tokens
        self._offsets = corpus.offsets
        self._fields = dict(corpus.fields)
        n = corpus.offsets.size - 1
        self._fields["row"] = np.arange(n, dtype=np.int64) if rows is None else rows
        if corpus.lines is not None:
            self._fields["line"] = corpus.lines
        self._dep_ptr, self._dep_source, self._dep_dependent = corpus.dep_ptr, corpus.dep_source, corpus.dep_dependent
        self._skipped = list(corpus.skipped)
        self._tasks = dict(tasks)
        self._markov_order = markov_order
        self._attractor_method = attractor_method
        self._part = part
        self._ids_cache: np.ndarray | None = None
        self._lookup_cache: np.ndarray | None = None

    # ------------------------------------------------------------------ basic properties
    @property
    def name(self) -> str:
        return self._name

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def label(self) -> str:
        return self._label_base + (f"[{self._part}]" if self._part else "")

    @property
    def params(self):
        return self._params

    @property
    def vocab(self) -> Vocabulary:
        return self._vocab

    @property
    def tasks(self) -> tuple:
        return tuple(self._tasks)

    @property
    def part(self) -> str:
        return self._part

    @property
    def skipped(self) -> list:
        return list(self._skipped)

    @property
    def n_skipped(self) -> int:
        """Rows left out because ``skip_bad_rows=True``."""
        return len(self._skipped)

    @property
    def attractor_method(self) -> str | None:
        """How ``n_attractors`` was obtained: "exact" (generated), "tags" or "tags+subjects" (files), None."""
        return self._attractor_method

    @property
    def n_sentences(self) -> int:
        return self._offsets.size - 1

    @property
    def n_words(self) -> int:
        """Word tokens, without padding."""
        return int(self._tokens.size)

    @property
    def lengths(self) -> np.ndarray:
        """int64 array, shape (n,): words per sentence (without ``<s>``/``</s>``)."""
        return np.diff(self._offsets)

    def __len__(self) -> int:
        return self.n_sentences

    def __repr__(self) -> str:
        return (f"Dataset({self.label!r}, n_sentences={self.n_sentences}, n_words={self.n_words}, "
                f"vocab_size={len(self._vocab)}, tasks={self.tasks})")

    # ------------------------------------------------------------------ words and ids
    def _ids(self) -> np.ndarray:
        if self._ids_cache is None:
            ids = self._lookup()[self._tokens]
            ids.setflags(write=False)
            self._ids_cache = ids
        return self._ids_cache

    def _check_sentence(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not 0 <= i < self.n_sentences:
            raise IndexError(f"sentence index must be an integer in 0..{self.n_sentences - 1}; received {i!r}")
        return int(i)

    def words(self, i: int) -> list:
        """The words of sentence ``i`` as they were read or generated (before UNK mapping)."""
        i = self._check_sentence(i)
        return [self._lexicon[t] for t in self._tokens[self._offsets[i]:self._offsets[i + 1]].tolist()]

    def text(self, i: int) -> str:
        """Sentence ``i`` as a space-separated string."""
        return " ".join(self.words(i))

    def ids(self, i: int) -> np.ndarray:
        """Vocabulary ids of the words of sentence ``i`` (UNK for unknown words; no padding)."""
        i = self._check_sentence(i)
        return self._ids()[self._offsets[i]:self._offsets[i + 1]].copy()

    # ------------------------------------------------------------------ tasks and batches
    def _task(self, task) -> str:
        if task is None:
            task = self.tasks[0]
        if task not in self._tasks:
            raise ValueError(f"task must be one of {self.tasks} for dataset {self.label!r}; received {task!r}")
        return task

    def n_outputs(self, task: str | None = None) -> int:
        """|O| of the model for ``task``: 2 for number prediction, |V| otherwise."""
        return 2 if self._tasks[self._task(task)] == "number" else len(self._vocab)

    def batch(self, task: str | None = None, indices=None) -> Batch:
        """The sentences (all, or those at ``indices``) as an engine :class:`~gradlab.batch.Batch`.

        Parameters
        ----------
        task : str, optional
            One of :attr:`tasks` (default: the first, "lm"). Layouts in the module docstring.
        indices : array-like of int or bool mask, optional
            Sentences to include, in that order.

        Returns
        -------
        Batch
            objective "final" for number prediction, "lm" otherwise; targets -1 where
            a step has no loss.
        """
        task = self._task(task)
        if indices is not None:
            return self.select(indices).batch(task)
        layout = self._tasks[task]
        inputs, targets, offsets = self._layout_arrays(layout)
        return Batch(inputs, targets, offsets, "final" if layout == "number" else "lm")

    def iter_batches(self, task: str | None = None, batch_size: int = 32, *, shuffle: bool = False,
                     seed: int = 0) -> Iterator[tuple[np.ndarray, Batch]]:
        """Minibatches of ``batch_size`` sentences: yields ``(indices, batch)``.

        With ``shuffle`` the order is a permutation drawn from ``seed``; the last batch
        may be smaller.
        """
        task = self._task(task)
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; received {batch_size!r}")
        order = (np.random.default_rng(seed).permutation(self.n_sentences) if shuffle
                 else np.arange(self.n_sentences))
        for a in range(0, self.n_sentences, batch_size):
            idx = order[a:a + batch_size]
            yield idx, self.batch(task, idx)

    def _layout_arrays(self, layout: str):
        ids, off = self._ids(), self._offsets
        v = self._vocab
        if layout in ("lm", "masked"):
            inputs, targets, out_off = _lm_arrays(ids, off, v.bos_id, v.eos_id)
            if layout == "masked":
                sent, _, dep = self._word_dependencies()
                pos = out_off[sent] + dep
                masked = np.full(targets.size, NO_LOSS, dtype=np.int64)
                masked[pos] = targets[pos]
                targets = masked
            return inputs, targets, out_off
        verb_idx = self._fields["verb_idx"]
        if layout == "number":
            inputs = ids[_prefix_index(off, verb_idx)]
            out_off = offsets_from_lengths(verb_idx)
            targets = np.full(inputs.size, NO_LOSS, dtype=np.int64)
            targets[out_off[1:] - 1] = self._fields["plural"].astype(np.int64)
            return inputs, targets, out_off
        if layout == "agreement":
            s = self.n_sentences
            out_off = offsets_from_lengths(verb_idx + 1)
            inputs = np.empty(int(out_off[-1]), dtype=np.int64)
            inputs[out_off[:-1]] = v.bos_id
            words = ids[_prefix_index(off, verb_idx)]
            inputs[np.arange(words.size) + np.repeat(np.arange(s, dtype=np.int64), verb_idx) + 1] = words
            targets = np.full(inputs.size, NO_LOSS, dtype=np.int64)
            targets[out_off[1:] - 1] = self._lookup_raw(self._fields["verb"])
            return inputs, targets, out_off
        raise AssertionError(layout)  # pragma: no cover - layouts are fixed by the registry

    def _lookup(self) -> np.ndarray:
        """Vocabulary id of every lexicon entry (raw id -> id)."""
        if self._lookup_cache is None:
            self._lookup_cache = self._vocab.map_words(self._lexicon)
        return self._lookup_cache

    def _lookup_raw(self, raw_ids: np.ndarray) -> np.ndarray:
        return self._lookup()[raw_ids]

    # ------------------------------------------------------------------ dependencies
    def _word_dependencies(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sentence, source word, dependent word) of every annotated dependency, sorted by sentence."""
        if self._dep_ptr is not None:
            sent = np.repeat(np.arange(self.n_sentences, dtype=np.int64), np.diff(self._dep_ptr))
            return sent, self._dep_source, self._dep_dependent
        if self._markov_order is not None and self._markov_order >= 2:
            lengths = self.lengths
            sent = np.repeat(np.arange(self.n_sentences, dtype=np.int64), lengths)
            dep = np.arange(self._tokens.size, dtype=np.int64) - np.repeat(self._offsets[:-1], lengths)
            src = np.maximum(dep - (self._markov_order - 1), -1)
            return sent, src, dep
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty

    def dependencies(self, task: str | None = None) -> pd.DataFrame:
        """Which input step determines which loss, in the coordinates of ``batch(task)``.

        Returns
        -------
        DataFrame with int64 columns
            ``sentence``, ``source``, ``dependent``, ``lag``: the loss at step
            ``dependent`` of sentence ``sentence`` is determined by the input at step
            ``source``; ``lag = dependent - source`` (steps) is how far back that loss's
            gradient must reach (the words' ``distance`` minus one). Only planted or
            annotated dependencies are listed (for files: subject -> verb; plain text has
            none; for the Markov control every word depends on the order - 1 words before
            it).
        """
        layout = self._tasks[self._task(task)]
        sent, src, dep = self._word_dependencies()
        if layout == "number":
            src_step, dep_step = src, dep - 1
        else:
            src_step, dep_step = src + 1, dep
        return pd.DataFrame({"sentence": sent, "source": src_step, "dependent": dep_step,
                             "lag": dep_step - src_step})

    # ------------------------------------------------------------------ tables
    def describe(self) -> pd.DataFrame:
        """One row per sentence: lengths, dependency distances and the annotations.

        Columns: ``sentence`` (0..n-1 here), ``row`` (index in the whole dataset that
        was loaded or generated), ``line`` (files), ``length`` (words, no padding),
        ``n_dependencies``, ``distance`` (the longest annotated dependency in words:
        verb_idx - subj_idx for agreement; <NA> where nothing is annotated); for
        agreement data also ``subj_idx``, ``verb_idx``, ``verb_pos``, ``subject``,
        ``verb``, ``inflected_verb``, ``n_attractors``; ``key`` for recall, ``depth``
        for Dyck.
        """
        n = self.n_sentences
        cols = {"sentence": np.arange(n, dtype=np.int64), "row": self._fields["row"]}
        if "line" in self._fields:
            cols["line"] = self._fields["line"]
        cols["length"] = self.lengths
        sent, src, dep = self._word_dependencies()
        n_dep = np.bincount(sent, minlength=n).astype(np.int64)
        cols["n_dependencies"] = n_dep
        dist = np.full(n, -1, dtype=np.int64)
        np.maximum.at(dist, sent, dep - src)
        cols["distance"] = _nullable(dist, n_dep > 0)
        f = self._fields
        if "verb_idx" in f:
            lex = np.asarray(self._lexicon, dtype=object)
            cols["subj_idx"] = f["subj_idx"]
            cols["verb_idx"] = f["verb_idx"]
            cols["verb_pos"] = pd.Categorical.from_codes(f["plural"].astype(np.int8), categories=list(NUMBER_LABELS))
            cols["subject"] = lex[self._tokens[self._offsets[:-1] + f["subj_idx"]]]
            cols["verb"] = lex[f["verb"]]
            cols["inflected_verb"] = lex[f["inflected"]]
            cols["n_attractors"] = f["n_attractors"]
        if "key" in f:
            cols["key"] = np.asarray(self._lexicon, dtype=object)[f["key"]]
        if "depth" in f:
            cols["depth"] = f["depth"]
        return pd.DataFrame(cols)

    def agreement_items(self) -> pd.DataFrame:
        """The LM agreement test: compare P(verb) with P(inflected verb) at ``step`` of ``batch("agreement")``.

        ``step`` = verb_idx is also the step of ``batch("lm")`` that predicts the verb.

        Returns
        -------
        DataFrame
            ``sentence``, ``step``, ``verb_id``, ``inflected_id`` (vocabulary ids of the
            ``verb`` and ``inflected_verb`` columns; UNK when unknown), ``verb_pos``,
            ``distance`` (verb_idx - subj_idx), ``lag`` (distance - 1), ``n_attractors``,
            ``verb``, ``inflected_verb``, ``verb_known``, ``inflected_known`` (whether the
            word is in the vocabulary; items where either is unknown compare UNK),
            ``comparable`` (both known and different: the items an accuracy should
            count; the real data has a few rows whose two forms coincide).
        """
        self._task("agreement")
        f = self._fields
        lex = np.asarray(self._lexicon, dtype=object)
        verb_id = self._lookup_raw(f["verb"])
        infl_id = self._lookup_raw(f["inflected"])
        dist = f["verb_idx"] - f["subj_idx"]
        unk = self._vocab.unk_id
        return pd.DataFrame({
            "sentence": np.arange(self.n_sentences, dtype=np.int64), "step": f["verb_idx"].copy(),
            "verb_id": verb_id, "inflected_id": infl_id,
            "verb_pos": pd.Categorical.from_codes(f["plural"].astype(np.int8), categories=list(NUMBER_LABELS)),
            "distance": dist, "lag": dist - 1, "n_attractors": f["n_attractors"],
            "verb": lex[f["verb"]], "inflected_verb": lex[f["inflected"]],
            "verb_known": (verb_id != unk) | (lex[f["verb"]] == "UNK"),
            "inflected_known": (infl_id != unk) | (lex[f["inflected"]] == "UNK"),
        }).assign(comparable=lambda t: t.verb_known & t.inflected_known & (t.verb_id != t.inflected_id))

    def unk_fraction(self, task: str | None = None) -> float:
        """Share of the loss targets of ``batch(task)`` that are UNK (for adjusted perplexity on this data)."""
        task = self._task(task)
        if self._tasks[task] == "number":
            return 0.0
        _, targets, _ = self._layout_arrays(self._tasks[task])
        has_loss = targets != NO_LOSS
        n = int(np.count_nonzero(has_loss))
        return float(np.count_nonzero(targets[has_loss] == self._vocab.unk_id)) / n if n else 0.0

    # ------------------------------------------------------------------ subsets
    def select(self, indices) -> "Dataset":
        """A dataset of the sentences at ``indices`` (ints in 0..n-1, or a bool mask), in that order."""
        return self._derive(_check_indices(indices, self.n_sentences), "select")

    def _derive(self, idx: np.ndarray, part: str, vocab: Vocabulary | None = None) -> "Dataset":
        off = self._offsets
        lengths = np.diff(off)[idx]
        corpus = RawCorpus(self._lexicon, self._tokens[_gather_index(off[idx], lengths)],
                           offsets_from_lengths(lengths), self._fields["line"][idx] if "line" in self._fields else None, self._skipped,
                           {k: a[idx] for k, a in self._fields.items() if k not in ("row", "line")})
        if self._dep_ptr is not None:
            dep_len = np.diff(self._dep_ptr)[idx]
            gi = _gather_index(self._dep_ptr[idx], dep_len)
            corpus.dep_ptr = offsets_from_lengths(dep_len)
            corpus.dep_source, corpus.dep_dependent = self._dep_source[gi], self._dep_dependent[gi]
        if part and self._part:
            part = f"{self._part}/{part}"
        elif not part:
            part = self._part
        new = Dataset(name=self._name, spec=self._spec, label=self._label_base, params=dict(self._params),
                      vocab=self._vocab if vocab is None else vocab, corpus=corpus, tasks=self._tasks,
                      markov_order=self._markov_order, attractor_method=self._attractor_method,
                      part=part, rows=self._fields["row"][idx])
        if vocab is None:
            new._lookup_cache = self._lookup_cache  # same lexicon, same vocabulary
        return new

    def split(self, dev_fraction: float = 0.1, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """(train, dev): a random ``dev_fraction`` of the sentences (drawn from ``seed``) is dev.

        Both keep the original sentence order and share this dataset's vocabulary.
        """
        if isinstance(dev_fraction, bool) or not isinstance(dev_fraction, numbers.Real) or not 0 < dev_fraction < 1:
            raise ValueError(f"dev_fraction must be a number strictly between 0 and 1; received {dev_fraction!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an integer; received {seed!r}")
        n = self.n_sentences
        n_dev = int(round(dev_fraction * n))
        if not 1 <= n_dev <= n - 1:
            raise ValueError(f"dev_fraction={dev_fraction} of {n} sentences gives {n_dev} dev sentences; "
                             "each part needs at least one: use a larger dataset or another fraction")
        perm = np.random.default_rng(seed).permutation(n)
        return self._derive(np.sort(perm[n_dev:]), "train"), self._derive(np.sort(perm[:n_dev]), "dev")

    def with_vocab(self, vocab: Vocabulary) -> "Dataset":
        """The same sentences under another vocabulary (e.g. a training set's, for a dev file)."""
        if not isinstance(vocab, Vocabulary):
            raise TypeError(f"vocab must be a gradlab.data.Vocabulary; received {type(vocab).__name__}")
        return self._derive(np.arange(self.n_sentences, dtype=np.int64), "", vocab)

    def build_vocab(self, n_words: int | None = 2000) -> Vocabulary:
        """A vocabulary from this dataset's words (see :meth:`Vocabulary.from_corpus`)."""
        counts = np.bincount(self._tokens, minlength=len(self._lexicon))
        return Vocabulary._from_type_counts(self._lexicon, counts, self.n_sentences, n_words,
                                            source=self.label)


# ---------------------------------------------------------------------- array helpers
def _gather_index(starts, lengths) -> np.ndarray:
    """Flat indices of the runs ``starts[i] .. starts[i] + lengths[i] - 1``, concatenated."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    out_off = offsets_from_lengths(lengths)
    return np.arange(int(out_off[-1]), dtype=np.int64) + np.repeat(starts - out_off[:-1], lengths)


def _prefix_index(offsets, lengths) -> np.ndarray:
    """Flat indices of the first ``lengths[i]`` tokens of every sentence."""
    return _gather_index(offsets[:-1], lengths)


def _lm_arrays(ids, offsets, bos: int, eos: int):
    """Inputs ``<s> w``, targets ``w </s>`` of every sentence, and the batch offsets."""
    s = offsets.size - 1
    lengths = np.diff(offsets)
    out_off = offsets + np.arange(s + 1, dtype=np.int64)
    shift = np.repeat(np.arange(s, dtype=np.int64), lengths) + np.arange(ids.size, dtype=np.int64)
    inputs = np.empty(ids.size + s, dtype=np.int64)
    inputs[out_off[:-1]] = bos
    inputs[shift + 1] = ids
    targets = np.empty(ids.size + s, dtype=np.int64)
    targets[shift] = ids
    targets[out_off[1:] - 1] = eos
    return inputs, targets, out_off


def _nullable(values: np.ndarray, present: np.ndarray):
    """``values`` as int64, or as a nullable Int64 array with <NA> where not ``present``."""
    if present.all():
        return values
    return pd.arrays.IntegerArray(np.where(present, values, 0).astype(np.int64), ~present)


def _check_indices(indices, n: int) -> np.ndarray:
    arr = np.asarray(indices)
    if arr.ndim != 1:
        raise ValueError(f"indices must be a 1-D sequence of sentence numbers or a bool mask; received shape {arr.shape}")
    if arr.dtype == np.bool_:
        if arr.size != n:
            raise ValueError(f"a bool mask must have one entry per sentence ({n}); received {arr.size}")
        arr = np.flatnonzero(arr)
    elif arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers or a bool mask; received dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size == 0:
        raise ValueError("indices select no sentence; a dataset needs at least one")
    bad = np.flatnonzero((arr < 0) | (arr >= n))
    if bad.size:
        raise IndexError(f"indices[{int(bad[0])}] = {int(arr[bad[0]])} is outside 0..{n - 1}")
    return arr
