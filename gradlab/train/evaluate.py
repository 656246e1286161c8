"""Evaluation: mean loss, perplexity, adjusted perplexity, accuracies and their breakdowns.

Every number comes from the engine's forward pass (:func:`gradlab.forward`) on
chunks of sentences, so memory stays bounded whatever the size of the data. Only
the output rows an accuracy needs are turned into logits (``W s(t)`` for those
steps), never the whole N x |O| matrix of probabilities.

What is measured depends on the task (docs/maths.md for the maths):

========== ==================================================================
task       items (one per row of :attr:`Evaluation.items`) and ``correct``
========== ==================================================================
lm, recall the annotated dependencies of ``dataset.dependencies(task)``: the loss
closing    at the step that predicts the dependent word; ``correct`` = the
           argmax of y(t) is that word (top-1)
number     every sentence: ``correct`` = argmax y(T-1) == label (VBZ 0, VBP 1)
agreement  the ``comparable`` rows of ``dataset.agreement_items()``: ``correct``
           = P(verb) > P(inflected verb) at the step that predicts the verb
           (compared as logits, which orders them the same way); ``margin`` =
           log P(verb) - log P(inflected verb)
========== ==================================================================

``distance`` is in words (verb_idx - subj_idx for agreement, as in
``Dataset.describe``); ``lag`` = distance - 1 is how far back the loss's gradient
must reach to see the cause.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..batch import NO_LOSS, Batch, offsets_from_lengths
from ..data.dataset import Dataset
from ..data.readers import PUBLISHED_AGREEMENT
from ..data.vocab import adjusted_loss
from ..cell_engine import forward as cell_forward
from ..cellmodel import CellModel
from ..engine import forward
from ..model import RNN

__all__ = ["Evaluation", "evaluate", "AgreementSetEvaluation", "evaluate_agreement_set", "PUBLISHED_AGREEMENT"]

#: Tokens per forward chunk: the chunk's states are max_tokens x H floats.
DEFAULT_MAX_TOKENS = 1 << 16
#: Item rows turned into logits at once (rows x |O| floats).
_LOGIT_ROWS = 1024

_BREAKDOWN_COLUMNS = ("n", "accuracy", "mean_loss")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A model's results on one dataset and task.

    Attributes
    ----------
    dataset : str
        The dataset's label.
    task : str
    n_sentences, n_losses : int
    loss : float
        Total loss, sum of J(t) over every loss of ``dataset.batch(task)``.
    mean_loss : float
        Total loss / number of predicted words (n_losses).
    perplexity : float
        exp(mean_loss).
    unk_fraction : float
        q used for the adjusted values (0 for number prediction).
    adjusted_loss : float
        (mean_loss + q log q) / (1 - q) (docs/maths.md).
    adjusted_perplexity : float
        exp(adjusted_loss).
    accuracy : float
        Mean of ``items.correct`` (NaN when there are no items): dependency
        (top-1) accuracy for lm-like tasks, number prediction accuracy, or LM
        agreement accuracy; see the module docstring.
    n_items : int
    items : DataFrame
        One row per item: ``sentence``, ``step`` (of ``dataset.batch(task)``),
        ``distance``, ``lag``, ``n_attractors`` (where annotated), ``target``, ``loss``,
        ``correct``, and ``margin`` for agreement.
    by_distance : DataFrame
        ``distance``, ``lag``, ``n``, ``accuracy``, ``mean_loss`` per distance.
    by_attractors : DataFrame
        ``n_attractors``, ``n``, ``accuracy``, ``mean_loss``; no rows when the data has
        no attractor annotation.
    """

    dataset: str
    task: str
    n_sentences: int
    n_losses: int
    loss: float
    mean_loss: float
    perplexity: float
    unk_fraction: float
    adjusted_loss: float
    adjusted_perplexity: float
    accuracy: float
    n_items: int
    items: pd.DataFrame
    by_distance: pd.DataFrame
    by_attractors: pd.DataFrame

    SUMMARY = ("dataset", "task", "n_sentences", "n_losses", "mean_loss", "perplexity", "unk_fraction",
               "adjusted_loss", "adjusted_perplexity", "accuracy", "n_items")

    def to_frame(self) -> pd.DataFrame:
        """The summary as one tidy row (columns :attr:`SUMMARY`)."""
        return pd.DataFrame({k: [getattr(self, k)] for k in self.SUMMARY})


# ---------------------------------------------------------------------- checks
def _check_model(model) -> None:
    if not isinstance(model, (RNN, CellModel)):
        raise TypeError(f"model must be a gradlab.RNN or a gradlab.CellModel (GRU, LSTM, linear); "
                        f"received {type(model).__name__}")


def check_task(dataset: Dataset, task, name: str = "task") -> str:
    """``task`` (or the dataset's default) after checking that ``dataset`` offers it."""
    if task is None:
        return dataset.tasks[0]
    if not isinstance(task, str) or task not in dataset.tasks:
        raise ValueError(f"{name} must be one of {dataset.tasks} for dataset {dataset.label!r}; received {task!r}")
    return task


def check_model_fits(model: RNN | CellModel, dataset: Dataset, task: str, name: str = "dataset") -> None:
    """Raise if ``model``'s input or output size does not fit ``dataset.batch(task)``."""
    n_out = dataset.n_outputs(task)
    if model.output_size != n_out:
        init = "RNN.init(vocab_size, hidden_size" if isinstance(model, RNN) else \
            f"CellModel.init({model.base!r}, vocab_size, hidden_size"
        raise ValueError(f"model has output_size {model.output_size} but task {task!r} of {name} "
                         f"{dataset.label!r} needs {n_out} outputs; build the model with "
                         f"{init}, output_size={n_out})")
    if model.vocab_size < len(dataset.vocab):
        raise ValueError(f"model has vocab_size {model.vocab_size} but {name} {dataset.label!r} has "
                         f"{len(dataset.vocab)} words (|V|); build the model with vocab_size={len(dataset.vocab)}")


# ---------------------------------------------------------------------- evaluation
def evaluate(model: RNN, dataset: Dataset, task: str | None = None, *, unk_fraction: float | None = None,
             max_tokens: int = DEFAULT_MAX_TOKENS) -> Evaluation:
    """Loss, perplexity, adjusted perplexity and accuracy of ``model`` on ``dataset.batch(task)``.

    Parameters
    ----------
    model : RNN or CellModel
        Its output size must be ``dataset.n_outputs(task)``; a GRU, LSTM or linear
        :class:`~gradlab.CellModel` is evaluated through ``cell_engine.forward`` (logits W h + b).
    dataset : Dataset
    task : str, optional
        One of ``dataset.tasks`` (default: the first, "lm"). "number" and "agreement"
        give number-prediction and LM agreement accuracy; lm-like tasks give the top-1
        accuracy at the annotated dependencies (see the module docstring).
    unk_fraction : float, optional
        q for the adjusted values; defaults to ``dataset.vocab.unk_fraction`` (the
        coursework's share of the corpus mapped to UNK), and to 0 for "number".
        ``dataset.unk_fraction(task)`` measures the share on this data's targets.
    max_tokens : int
        Tokens per forward chunk (memory: max_tokens x H floats for the states).

    Returns
    -------
    Evaluation

    Notes
    -----
    mean_loss = sum of J(t) / number of losses; perplexity = exp(mean_loss);
    adjusted loss = (mean_loss + q log q) / (1 - q), adjusted perplexity its exp.
    """
    _check_model(model)
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a gradlab Dataset (gradlab.load_dataset); received {type(dataset).__name__}")
    task = check_task(dataset, task)
    check_model_fits(model, dataset, task)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer; received {max_tokens!r}")
    if unk_fraction is None:
        q = 0.0 if task == "number" else float(dataset.vocab.unk_fraction)
    else:
        if isinstance(unk_fraction, bool) or not isinstance(unk_fraction, numbers.Real) \
                or not 0.0 <= float(unk_fraction) < 1.0:
            raise ValueError(f"unk_fraction must be a number in [0, 1); received {unk_fraction!r}")
        q = float(unk_fraction)

    batch = dataset.batch(task)
    items = _items(dataset, task, batch)
    pos = items.pop("_pos").to_numpy()
    target = items["target"].to_numpy(np.int64)
    inflected = items.pop("inflected").to_numpy(np.int64) if task == "agreement" else None
    losses, loss_pos, correct, margin = _run(model, batch, pos, target, inflected, int(max_tokens))

    n_losses = int(losses.size)
    total = float(losses.sum())
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mean = total / n_losses if n_losses else float("nan")
        adj = float(adjusted_loss(mean, q)) if n_losses else float("nan")
        ppl, adj_ppl = float(np.exp(mean)), float(np.exp(adj))

    if pos.size:
        items["loss"] = losses[np.searchsorted(loss_pos, pos)]
    else:
        items["loss"] = np.zeros(0)
    items["correct"] = correct
    if margin is not None:
        items["margin"] = margin
    accuracy = float(items["correct"].mean()) if len(items) else float("nan")
    return Evaluation(dataset.label, task, batch.n_sentences, n_losses, total, mean, ppl, q, adj, adj_ppl,
                      accuracy, int(len(items)), items.reset_index(drop=True),
                      _breakdown(items, "distance"), _breakdown(items, "n_attractors"))


def _items(dataset: Dataset, task: str, batch: Batch) -> pd.DataFrame:
    """The rows whose output an accuracy looks at, with their flat positions in ``batch`` (column ``_pos``)."""
    off = batch.offsets
    if task == "agreement":
        ag = dataset.agreement_items()
        ag = ag[ag["comparable"].to_numpy()]
        sent = ag["sentence"].to_numpy(np.int64)
        step = ag["step"].to_numpy(np.int64)
        frame = pd.DataFrame({"sentence": sent, "step": step, "distance": ag["distance"].to_numpy(np.int64),
                              "lag": ag["lag"].to_numpy(np.int64),
                              "n_attractors": ag["n_attractors"].to_numpy(np.int64),
                              "target": ag["verb_id"].to_numpy(np.int64),
                              "inflected": ag["inflected_id"].to_numpy(np.int64)})
    elif task == "number":
        desc = dataset.describe()
        sent = np.arange(batch.n_sentences, dtype=np.int64)
        step = batch.lengths - 1
        dist = (desc["verb_idx"] - desc["subj_idx"]).to_numpy(np.int64)
        frame = pd.DataFrame({"sentence": sent, "step": step, "distance": dist, "lag": dist - 1,
                              "n_attractors": desc["n_attractors"].to_numpy(np.int64),
                              "target": batch.targets[off[1:] - 1]})
    else:
        deps = dataset.dependencies(task)
        sent = deps["sentence"].to_numpy(np.int64)
        step = deps["dependent"].to_numpy(np.int64)
        keep = batch.targets[off[sent] + step] != NO_LOSS
        sent, step = sent[keep], step[keep]
        lag = deps["lag"].to_numpy(np.int64)[keep]
        frame = pd.DataFrame({"sentence": sent, "step": step, "distance": lag + 1, "lag": lag})
        desc = dataset.describe()
        if "n_attractors" in desc.columns:
            frame["n_attractors"] = desc["n_attractors"].to_numpy(np.int64)[sent]
        frame["target"] = batch.targets[off[sent] + step]
    frame["_pos"] = off[frame["sentence"].to_numpy()] + frame["step"].to_numpy()
    order = np.argsort(frame["_pos"].to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def _slice(batch: Batch, s0: int, s1: int) -> Batch:
    o0, o1 = int(batch.offsets[s0]), int(batch.offsets[s1])
    return Batch(batch.ids[o0:o1], batch.targets[o0:o1], batch.offsets[s0:s1 + 1] - o0, batch.objective)


def _chunks(batch: Batch, max_tokens: int) -> list[tuple[int, int]]:
    """Consecutive sentence ranges of at most ``max_tokens`` tokens (at least one sentence each)."""
    off = batch.offsets
    out, s0, n = [], 0, batch.n_sentences
    while s0 < n:
        s1 = int(np.searchsorted(off, off[s0] + max_tokens, side="right")) - 1
        s1 = min(max(s1, s0 + 1), n)
        out.append((s0, s1))
        s0 = s1
    return out


def _run(model: RNN, batch: Batch, pos: np.ndarray, target: np.ndarray, inflected, max_tokens: int):
    """Forward pass chunk by chunk: every loss, and ``correct`` (and ``margin``) of the items at ``pos``.

    ``correct`` is argmax y(t) == target, or with ``inflected`` (agreement) the
    logit of the target above that of the inflected form, ``margin`` their difference.
    """
    cell = isinstance(model, CellModel)
    W = model.params["W"] if cell else model.W
    correct = np.zeros(pos.size, dtype=bool)
    margin = None if inflected is None else np.zeros(pos.size)
    losses, loss_pos = [], []
    for s0, s1 in _chunks(batch, max_tokens):
        o0, o1 = int(batch.offsets[s0]), int(batch.offsets[s1])
        fr = (cell_forward if cell else forward)(model, _slice(batch, s0, s1))
        states = fr.h if cell else fr.s
        losses.append(fr.losses)
        loss_pos.append(fr.loss_positions + o0)
        i0, i1 = np.searchsorted(pos, [o0, o1])
        for a in range(i0, i1, _LOGIT_ROWS):
            b = min(a + _LOGIT_ROWS, i1)
            logits = states[pos[a:b] - o0] @ W.T
            if cell:
                logits += model.params["b"]
            r = np.arange(b - a)
            if inflected is None:
                correct[a:b] = np.argmax(logits, axis=1) == target[a:b]
            else:
                m = logits[r, target[a:b]] - logits[r, inflected[a:b]]
                margin[a:b] = m
                correct[a:b] = m > 0
    return np.concatenate(losses), np.concatenate(loss_pos).astype(np.int64), correct, margin


def _breakdown(items: pd.DataFrame, by: str) -> pd.DataFrame:
    """n, accuracy and mean loss of the items per value of ``by`` (no rows when ``by`` is absent)."""
    cols = [by] + (["lag"] if by == "distance" else []) + list(_BREAKDOWN_COLUMNS)
    if by not in items.columns or not len(items):
        return pd.DataFrame({c: pd.Series(dtype=np.float64 if c in ("accuracy", "mean_loss") else np.int64)
                             for c in cols})
    g = items.groupby(by, sort=True)
    out = pd.DataFrame({"n": g.size(), "accuracy": g["correct"].mean().astype(np.float64),
                        "mean_loss": g["loss"].mean()}).reset_index()
    if by == "distance":
        out.insert(1, "lag", out["distance"] - 1)
    out["n"] = out["n"].astype(np.int64)
    return out[cols]



# ---------------------------------------------------------------------- standard agreement test sets
#: PUBLISHED_AGREEMENT (imported above): the published accuracies the colorlessgreen README quotes, declared
#: beside the test-set readers so that the report layer can quote them too.


@dataclass(frozen=True, eq=False)
class AgreementSetEvaluation:
    """A language model on a standard agreement test set (:func:`evaluate_agreement_set`).

    Attributes
    ----------
    test_set : str
        The set's name ("linzen_testset", "gulordava").
    n_items : int
        Items in the set.
    n_comparable : int
        Items whose two verb forms are both in the vocabulary (and differ): the ones counted.
    accuracy : float
        Share of comparable items with P(correct) > P(wrong) after the prefix (NaN if none).
    items : DataFrame
        The set's items plus ``comparable``, ``unk_in_prefix`` (prefix words mapped to
        UNK), ``loss`` (-log P(correct)), ``margin`` (log P(correct) - log P(wrong))
        and ``correct`` (margin > 0; False where not comparable).
    by_attractors : DataFrame
        ``n_attractors``, ``n``, ``accuracy``, ``mean_loss`` over comparable items.
    by_type : DataFrame
        ``type`` (original / generated), ``n``, ``accuracy``, ``mean_loss``.
    comparison : DataFrame
        ``type``, ``model``, ``accuracy``, ``n``: this model's accuracy per type beside the
        published figures of :data:`PUBLISHED_AGREEMENT` for this set (none for Linzen's).
    """

    test_set: str
    n_items: int
    n_comparable: int
    accuracy: float
    items: pd.DataFrame
    by_attractors: pd.DataFrame
    by_type: pd.DataFrame
    comparison: pd.DataFrame


def evaluate_agreement_set(model: RNN, test_set, vocab, *, lowercase: bool = False, label: str = "this model",
                           max_tokens: int = DEFAULT_MAX_TOKENS) -> AgreementSetEvaluation:
    """Agreement accuracy of a language model on a standard test set, by attractors and sentence type.

    Parameters
    ----------
    model : RNN
        A language model over ``vocab`` (output_size = vocab_size = len(vocab)).
    test_set : AgreementTestSet
        From :func:`gradlab.data.readers.read_linzen_testset` or ``read_gulordava_set``.
    vocab : Vocabulary
        The model's vocabulary; words outside it map to UNK.
    lowercase : bool, default False
        Lower-case the words before looking them up (Gulordava's English sentences
        are cased; vocabularies of lower-cased corpora need this).
    label : str
        Name of this model in ``comparison``.
    max_tokens : int
        Tokens per forward chunk.

    Returns
    -------
    AgreementSetEvaluation

    Notes
    -----
    The model reads ``<s>`` and the prefix; at the last step it predicts the verb,
    and an item is right when logit(correct) > logit(wrong) (the same order as the
    probabilities). Items where either form is UNK (or the two coincide) are left
    out of the accuracies, as for :meth:`Dataset.agreement_items`.
    """
    from ..data.readers import AgreementTestSet
    from ..data.vocab import Vocabulary

    _check_model(model)
    if not isinstance(test_set, AgreementTestSet):
        raise TypeError("test_set must be an AgreementTestSet (read_linzen_testset, read_gulordava_set); "
                        f"received {type(test_set).__name__}")
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a gradlab.data.Vocabulary; received {type(vocab).__name__}")
    if model.output_size != len(vocab) or model.vocab_size < len(vocab):
        raise ValueError(f"model (vocab_size {model.vocab_size}, output_size {model.output_size}) is not a language "
                         f"model over vocab of {len(vocab)} words; pass the vocabulary the model was trained with")
    if not isinstance(lowercase, (bool, np.bool_)):
        raise TypeError(f"lowercase must be True or False; received {lowercase!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer; received {max_tokens!r}")

    items = test_set.items.copy()
    norm = (lambda w: w.lower()) if lowercase else (lambda w: w)
    prefixes = [[norm(w) for w in p] for p in items["prefix"]]
    ids = [np.concatenate(([vocab.bos_id], vocab.encode(p))).astype(np.int64) for p in prefixes]
    unk = vocab.unk_id
    target = vocab.encode([norm(w) for w in items["correct"]])
    wrong = vocab.encode([norm(w) for w in items["wrong"]])
    lengths = np.array([a.size for a in ids], dtype=np.int64)
    offsets = offsets_from_lengths(lengths)
    flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    targets = np.full(flat.size, NO_LOSS, dtype=np.int64)
    pos = offsets[1:] - 1
    targets[pos] = target
    batch = Batch(flat, targets, offsets, "lm")
    losses, _, _, margin = _run(model, batch, pos, target, wrong, int(max_tokens))

    items["comparable"] = (target != unk) & (wrong != unk) & (target != wrong)
    items["unk_in_prefix"] = np.array([int(np.count_nonzero(a[1:] == unk)) for a in ids], dtype=np.int64)
    items["loss"] = losses
    items["margin"] = margin
    items["correct"] = items["comparable"] & (margin > 0)
    counted = items[items["comparable"]]
    accuracy = float(counted["correct"].mean()) if len(counted) else float("nan")
    by_type = _breakdown(counted, "type")
    rows = [(t, label, float(a), int(n)) for t, a, n in zip(by_type["type"], by_type["accuracy"], by_type["n"])]
    rows += [(t, m, a, np.nan) for s, t, m, a in PUBLISHED_AGREEMENT if s == test_set.name]
    comparison = pd.DataFrame(rows, columns=["type", "model", "accuracy", "n"])
    return AgreementSetEvaluation(test_set.name, int(len(items)), int(len(counted)), accuracy, items,
                                  _breakdown(counted, "n_attractors"), by_type, comparison)
