"""Vocabularies: word <-> id maps that remember how much of the corpus became UNK.

A :class:`Vocabulary` has ``len(vocab) = |V|`` entries, the three special tokens
included. Words outside it map to ``UNK``. It records ``unk_fraction`` q, the
share of the corpus that was mapped to UNK, which the coursework's *adjusted*
perplexity needs (docs/maths.md):

    adjusted loss = (loss + q log q) / (1 - q)

Two ways to build one:

- :meth:`Vocabulary.from_counts` reads a counts file ``word<TAB>count[<TAB>freq]``
  (the coursework's ``vocab.wiki.txt``) and keeps its first ``n_words`` entries.
  q = (sum of the counts of the entries left out) / (sum of all counts), exactly the
  coursework's ``fraq_loss``.
- :meth:`Vocabulary.from_corpus` counts the words of sentences and keeps the special
  tokens plus the ``n_words - 3`` most frequent words (ties broken by the word, in
  code-point order, so the result does not depend on sentence order).
  q = (word tokens mapped to UNK) / (word tokens + one ``</s>`` per sentence): the
  share of the language-model targets that are UNK.
"""
from __future__ import annotations

import json
import math
import numbers
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

#: Start-of-sentence padding token (the first input of every language-model sequence).
BOS = "<s>"
#: End-of-sentence padding token (the last target of every language-model sequence).
EOS = "</s>"
#: The token every out-of-vocabulary word maps to.
UNK = "UNK"
#: The special tokens every vocabulary contains; :meth:`Vocabulary.from_corpus` gives them ids 0, 1, 2.
SPECIALS = (BOS, EOS, UNK)

#: Default size |V| (special tokens included), as in the coursework.
DEFAULT_N_WORDS = 2000

_FORMAT = "gradlab-vocabulary"
_VERSION = 1


class Vocabulary:
    """An ordered list of words with their ids, counts and UNK fraction.

    Parameters
    ----------
    words : sequence of str
        The words in id order; must be unique and contain ``<s>``, ``</s>`` and ``UNK``.
    counts : sequence of int, optional
        Corpus count of each word (zeros when omitted). Informational.
    unk_fraction : float, default 0.0
        q in [0, 1): the share of the corpus mapped to UNK.
    source : str, default ""
        Where the vocabulary came from (a path or a description), for reports.

    Notes
    -----
    Use :meth:`from_corpus`, :meth:`from_counts` or :meth:`load` rather than the
    constructor unless the word list is fixed (the built-in datasets do that).
    """

    __slots__ = ("_words", "_counts", "_unk_fraction", "_source", "_index")

    def __init__(self, words: Sequence[str], counts: Sequence[int] | None = None, *,
                 unk_fraction: float = 0.0, source: str = ""):
        words = tuple(words)
        for i, w in enumerate(words):
            if not isinstance(w, str) or not w or any(c.isspace() for c in w):
                raise ValueError(f"words[{i}] must be a non-empty string without whitespace; received {w!r}")
        index = {w: i for i, w in enumerate(words)}
        if len(index) != len(words):
            dup = next(w for w, c in Counter(words).items() if c > 1)
            raise ValueError(f"words must be unique; {dup!r} appears more than once")
        missing = [s for s in SPECIALS if s not in index]
        if missing:
            raise ValueError(f"words must contain the special tokens {SPECIALS}; missing {missing}")
        if counts is None:
            counts_arr = np.zeros(len(words), dtype=np.int64)
        else:
            counts_arr = np.asarray(counts)
            if counts_arr.shape != (len(words),) or (counts_arr.size and counts_arr.dtype.kind not in "iu"):
                raise ValueError(f"counts must be {len(words)} integers, one per word; "
                                 f"received shape {counts_arr.shape}, dtype {counts_arr.dtype}")
            counts_arr = np.array(counts_arr, dtype=np.int64)
            if (counts_arr < 0).any():
                raise ValueError("counts must be >= 0")
        counts_arr.setflags(write=False)
        q = _check_unk_fraction(unk_fraction)
        self._words = words
        self._counts = counts_arr
        self._unk_fraction = q
        self._source = str(source)
        self._index = index

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_corpus(cls, sentences: Iterable[str | Sequence[str]], n_words: int | None = DEFAULT_N_WORDS,
                    *, source: str = "corpus") -> "Vocabulary":
        """The special tokens plus the most frequent words of ``sentences``.

        Parameters
        ----------
        sentences : iterable of str or of str sequences
            Each sentence is a string (split on whitespace) or a sequence of tokens.
        n_words : int or None, default 2000
            |V|, the three special tokens included; ``None`` keeps every word.
        source : str
            Recorded as :attr:`source`.

        Returns
        -------
        Vocabulary
            Ids 0, 1, 2 are ``<s>``, ``</s>``, ``UNK``; then words by count, descending,
            ties in code-point order of the word.

        Notes
        -----
        q = (word tokens mapped to UNK) / (word tokens + number of sentences), the
        share of language-model targets (words and one ``</s>`` per sentence) that are
        UNK. Literal ``UNK`` tokens in the corpus count as mapped to UNK.
        """
        counter: Counter = Counter()
        n_sentences = 0
        for s in sentences:
            toks = s.split() if isinstance(s, str) else s
            counter.update(toks)
            n_sentences += 1
        words = list(counter)
        counts = np.fromiter((counter[w] for w in words), dtype=np.int64, count=len(words))
        return cls._from_type_counts(words, counts, n_sentences, n_words, source=source)

    @classmethod
    def _from_type_counts(cls, words: Sequence[str], counts: np.ndarray, n_sentences: int,
                          n_words: int | None, *, source: str) -> "Vocabulary":
        """:meth:`from_corpus` on word types and their counts (the datasets' fast path)."""
        n_words = _check_n_words(n_words)
        counts = np.asarray(counts, dtype=np.int64)
        special_count = {w: int(c) for w, c in zip(words, counts) if w in SPECIALS}
        order = sorted((i for i, w in enumerate(words) if w not in SPECIALS and counts[i] > 0),
                       key=lambda i: (-counts[i], words[i]))
        n_keep = len(order) if n_words is None else max(n_words - len(SPECIALS), 0)
        kept = order[:n_keep]
        unk_tokens = int(counts[order[n_keep:]].sum()) + special_count.get(UNK, 0)
        n_tokens = int(counts.sum())
        denominator = n_tokens + n_sentences
        q = unk_tokens / denominator if denominator else 0.0
        vocab_words = list(SPECIALS) + [words[i] for i in kept]
        vocab_counts = [special_count.get(BOS, 0), n_sentences + special_count.get(EOS, 0),
                        unk_tokens] + [int(counts[i]) for i in kept]
        return cls(vocab_words, vocab_counts, unk_fraction=q, source=source)

    @classmethod
    def from_counts(cls, path: str | os.PathLike, n_words: int | None = DEFAULT_N_WORDS, *,
                    order: str = "file") -> "Vocabulary":
        """Read a counts file ``word<TAB>count[<TAB>freq]`` and keep ``n_words`` entries.

        Parameters
        ----------
        path : str or path-like
            UTF-8 text, one word per line (like the coursework's ``vocab.wiki.txt``).
        n_words : int or None, default 2000
            |V|, the special tokens included; ``None`` keeps every entry.
        order : {"file", "count"}, default "file"
            ``"file"`` keeps the first ``n_words`` lines, in file order, as the coursework
            did (its file lists VBZ and VBP first, then words most frequent first);
            ``"count"`` first sorts by count, descending, ties in file order.

        Returns
        -------
        Vocabulary
            Ids follow the kept order. Special tokens the kept entries lack take the last
            ids, replacing the least frequent kept words, so ``len(vocab) == n_words``.

        Notes
        -----
        q = (sum of the counts of the entries left out) / (sum of all counts).

        Raises
        ------
        DataFormatError
            A line without a count, a count that is not a non-negative integer, a
            repeated word or bad UTF-8; the message names file and line.
        """
        from .readers import read_counts_file  # readers imports this module

        n_words = _check_n_words(n_words)
        if order not in ("file", "count"):
            raise ValueError(f"order must be 'file' or 'count'; received {order!r}")
        words, counts = read_counts_file(path)
        idx = np.arange(len(words))
        if order == "count":
            idx = np.argsort(-counts, kind="stable")
        n_keep = len(words) if n_words is None else min(n_words, len(words))
        kept = [int(i) for i in idx[:n_keep]]
        present = {words[i] for i in kept}
        missing = [s for s in SPECIALS if s not in present]
        if n_words is not None:
            # make room at the end rather than shift the ids of the file's first entries
            while len(kept) + len(missing) > n_words:
                j = max(k for k in range(len(kept)) if words[kept[k]] not in SPECIALS)
                kept.pop(j)
        kept_set = set(int(i) for i in kept)
        total = int(counts.sum())
        unk_count = int(sum(int(counts[i]) for i in range(len(words)) if i not in kept_set))
        q = unk_count / total if total else 0.0
        vocab_words = [words[i] for i in kept]
        vocab_counts = [int(counts[i]) for i in kept]
        for s in SPECIALS:
            if s not in vocab_words:
                vocab_words.append(s)
                vocab_counts.append(unk_count if s == UNK else 0)
        return cls(vocab_words, vocab_counts, unk_fraction=q, source=str(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        """Read a vocabulary written by :meth:`save`."""
        path = Path(path).expanduser()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"vocabulary file {str(path)!r} does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a vocabulary saved by Vocabulary.save ({err}); "
                             "to read a word<TAB>count file use Vocabulary.from_counts") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a vocabulary saved by Vocabulary.save (no format={_FORMAT!r} field); "
                             "to read a word<TAB>count file use Vocabulary.from_counts")
        if data.get("version") != _VERSION:
            raise ValueError(f"{path} has vocabulary format version {data.get('version')!r}; "
                             f"this gradlab reads version {_VERSION}")
        return cls(data["words"], data["counts"], unk_fraction=data["unk_fraction"], source=data.get("source", ""))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the vocabulary as JSON (words, counts, UNK fraction, source); returns the path."""
        path = Path(path).expanduser()
        data = {"format": _FORMAT, "version": _VERSION, "source": self._source,
                "unk_fraction": self._unk_fraction, "words": list(self._words),
                "counts": self._counts.tolist()}
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return path

    # ------------------------------------------------------------------ properties
    @property
    def words(self) -> tuple[str, ...]:
        """The words in id order."""
        return self._words

    @property
    def counts(self) -> np.ndarray:
        """int64 array, shape (|V|,): the corpus count of each word (read-only)."""
        return self._counts

    @property
    def unk_fraction(self) -> float:
        """q: share of the corpus mapped to UNK (see the module docstring for the denominator)."""
        return self._unk_fraction

    @property
    def source(self) -> str:
        return self._source

    @property
    def size(self) -> int:
        """|V|."""
        return len(self._words)

    @property
    def bos_id(self) -> int:
        return self._index[BOS]

    @property
    def eos_id(self) -> int:
        return self._index[EOS]

    @property
    def unk_id(self) -> int:
        return self._index[UNK]

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word) -> bool:
        return word in self._index

    def __iter__(self):
        return iter(self._words)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (self._words == other._words and np.array_equal(self._counts, other._counts)
                and self._unk_fraction == other._unk_fraction)

    __hash__ = None

    def __repr__(self) -> str:
        src = f", source={self._source!r}" if self._source else ""
        return f"Vocabulary(size={self.size}, unk_fraction={self._unk_fraction:.6g}{src})"

    # ------------------------------------------------------------------ mapping
    def id(self, word: str) -> int:
        """The id of ``word``, or of ``UNK`` when it is not in the vocabulary."""
        return self._index.get(word, self._index[UNK])

    def encode(self, tokens: str | Iterable[str]) -> np.ndarray:
        """Ids of ``tokens`` (a whitespace-separated string or a token sequence); unknown words give UNK.

        Returns
        -------
        int64 array, shape (len(tokens),)
        """
        if isinstance(tokens, str):
            tokens = tokens.split()
        get, unk = self._index.get, self._index[UNK]
        return np.fromiter((get(w, unk) for w in tokens), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of ``ids``; an id outside 0..|V|-1 raises IndexError."""
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise TypeError(f"ids must be a 1-D sequence of integers; received dtype {arr.dtype}, shape {arr.shape}")
        bad = np.flatnonzero((arr < 0) | (arr >= self.size))
        if bad.size:
            raise IndexError(f"ids[{int(bad[0])}] = {int(arr[bad[0]])} is outside 0..{self.size - 1} "
                             f"(|V| = {self.size})")
        return [self._words[i] for i in arr.tolist()]

    def map_words(self, words: Sequence[str]) -> np.ndarray:
        """Ids of the distinct ``words`` of a lexicon: an int64 lookup table raw id -> vocabulary id."""
        return self.encode(words)

    def adjust_loss(self, loss):
        """Adjusted mean loss ``(loss + q log q) / (1 - q)`` with this vocabulary's q (see :func:`adjusted_loss`)."""
        return adjusted_loss(loss, self._unk_fraction)


def adjusted_loss(loss, unk_fraction: float):
    """The coursework's adjusted mean loss, which removes the "free" predictions of UNK.

    Parameters
    ----------
    loss : float or float array
        Mean cross-entropy per predicted word (nats).
    unk_fraction : float
        q in [0, 1), e.g. :attr:`Vocabulary.unk_fraction`.

    Returns
    -------
    float or float array
        (loss + q log q) / (1 - q); ``loss`` itself when q = 0. Adjusted perplexity
        is its exponential.
    """
    q = _check_unk_fraction(unk_fraction)
    if q == 0.0:
        return loss
    return (loss + q * math.log(q)) / (1.0 - q)


def _check_unk_fraction(q) -> float:
    if isinstance(q, bool) or not isinstance(q, numbers.Real) or not (0.0 <= float(q) < 1.0):
        raise ValueError(f"unk_fraction must be a number in [0, 1); received {q!r}")
    return float(q)


def _check_n_words(n_words) -> int | None:
    if n_words is None:
        return None
    if isinstance(n_words, bool) or not isinstance(n_words, numbers.Integral):
        raise TypeError(f"n_words must be an integer or None; received {n_words!r} of type {type(n_words).__name__}")
    if n_words < len(SPECIALS):
        raise ValueError(f"n_words must be >= {len(SPECIALS)} (it counts the special tokens {SPECIALS}); "
                         f"received {n_words}")
    return int(n_words)

