"""Readers for the data files gradlab understands, with errors that name file and line.

Formats
-------
agreement TSV
    UTF-8, tab-separated, a header line naming the columns ``sentence subj_idx
    verb_idx verb_pos verb inflected_verb`` (any order), one sentence per row.
    Tokens of ``sentence`` are separated by whitespace; indices are 0-based.
plain text
    UTF-8, one sentence per line, tokens separated by whitespace.
counts file
    UTF-8, ``word<TAB>count[<TAB>freq]`` per line (the coursework's ``vocab.wiki.txt``).

Every reader checks every row. A bad row raises :class:`DataFormatError` naming the
file and the 1-based line; with ``skip_bad_rows=True`` bad rows are left out instead,
listed in ``skipped`` and reported with a :class:`DataWarning`. Nothing is dropped
silently.

Tokens are interned while reading: a corpus is a lexicon of distinct words, the
raw id of every token (int32) and sentence offsets, so 100,000 sentences take a few
megabytes and any vocabulary maps them with one table lookup.
"""
from __future__ import annotations

import os
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..batch import offsets_from_lengths

#: Columns of the agreement TSV format, in the order of the coursework's files.
AGREEMENT_COLUMNS = ("sentence", "subj_idx", "verb_idx", "verb_pos", "verb", "inflected_verb")
#: Verb tags and the number-prediction label of each: VBZ (singular) = 0, VBP (plural) = 1.
NUMBER_LABELS = ("VBZ", "VBP")
#: Part-of-speech tags of singular and of plural nouns, as they stand in text with rare words replaced.
SINGULAR_NOUN_TAGS = ("NN", "NNP")
PLURAL_NOUN_TAGS = ("NNS", "NNPS")
#: Attractor heuristics for files (see :func:`noun_numbers`).
ATTRACTOR_METHODS = ("tags", "tags+subjects")


class DataFormatError(ValueError):
    """A data file that cannot be read as its format; ``path`` and ``line`` say where.

    Attributes
    ----------
    path : str
    line : int
        1-based line number.
    reason : str
        The problem, without the location.
    """

    def __init__(self, path, line: int, reason: str):
        self.path = str(path)
        self.line = int(line)
        self.reason = reason
        super().__init__(f"{self.path}, line {self.line}: {reason}")


class DataWarning(UserWarning):
    """Something about the data the user should know: rows skipped on request."""


class _RowError(Exception):
    pass


@dataclass
class RawCorpus:
    """Sentences as interned tokens (what the readers and generators produce).

    Attributes
    ----------
    lexicon : list of str
        Distinct words; a token's raw id indexes it.
    tokens : int32 array, shape (N,)
        Raw ids of all tokens, sentences concatenated.
    offsets : int64 array, shape (n + 1,)
        Sentence i is ``tokens[offsets[i]:offsets[i+1]]``.
    lines : int64 array, shape (n,), or None
        1-based line of each sentence in its file.
    skipped : list of (int, str)
        (line, reason) of each bad row left out with ``skip_bad_rows=True``.
    fields : dict of str -> array
        Per-sentence annotations (the agreement columns, as arrays).
    dep_ptr, dep_source, dep_dependent : int64 arrays, or None
        Planted dependencies in word coordinates (generators only): those of sentence
        i are ``dep_ptr[i]:dep_ptr[i+1]``; word ``dep_source`` determines word
        ``dep_dependent`` (-1 = the ``<s>`` before the sentence, n = the ``</s>`` after it).
    """

    lexicon: list
    tokens: np.ndarray
    offsets: np.ndarray
    lines: np.ndarray | None = None
    skipped: list = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    dep_ptr: np.ndarray | None = None
    dep_source: np.ndarray | None = None
    dep_dependent: np.ndarray | None = None

    @property
    def n_sentences(self) -> int:
        return self.offsets.size - 1


class _Interner:
    """Raw ids in order of first appearance; ``ids(tokens)`` is a C-speed dict lookup."""

    def __init__(self):
        self._index = defaultdict()
        self._index.default_factory = self._index.__len__

    def ids(self, tokens) -> map:
        return map(self._index.__getitem__, tokens)

    def id(self, token: str) -> int:
        return self._index[token]

    @property
    def lexicon(self) -> list:
        return list(self._index)


def resolve_path(path, name: str = "path") -> Path:
    """``path`` as a Path to an existing file (``~`` expanded); errors name the parameter."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike); received {path!r}")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{name}: file {str(p)!r} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"{name}: {str(p)!r} is a directory; give the path of a data file")
    return p


def read_lines(path, *, skip_bad_rows: bool = False) -> tuple[Path, list, list]:
    """The lines of a UTF-8 file, without line endings.

    Returns
    -------
    path : Path
    lines : list of str or None
        ``lines[k]`` is line k + 1; None where the line is not valid UTF-8 (only with
        ``skip_bad_rows``).
    bad : list of (int, str)
        (line, reason) for those lines.
    """
    path = resolve_path(path)
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        if not skip_bad_rows:
            line = data.count(b"\n", 0, err.start) + 1
            col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
            raise DataFormatError(path, line, f"is not valid UTF-8 (byte 0x{data[err.start]:02x} at column {col}); "
                                  "re-encode the file as UTF-8, or pass skip_bad_rows=True to leave such rows out") from None
        lines, bad = [], []
        raw = data.split(b"\n")
        if raw and raw[-1] == b"":
            raw.pop()
        for k, b in enumerate(raw):
            try:
                lines.append(b.decode("utf-8").removesuffix("\r"))
            except UnicodeDecodeError as e2:
                lines.append(None)
                bad.append((k + 1, f"is not valid UTF-8 (byte 0x{b[e2.start]:02x} at column {e2.start + 1})"))
        return path, lines, bad
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" in text:
        lines = [ln.removesuffix("\r") for ln in lines]
    return path, lines, []


def _report_skipped(path, skipped: list, what: str) -> None:
    if skipped:
        line, reason = skipped[0]
        warnings.warn(f"{path}: skipped {len(skipped)} bad {what}(s) because skip_bad_rows=True "
                      f"(first: line {line}: {reason}); the dataset's `skipped` lists them all",
                      DataWarning, stacklevel=4)


def _parse_index(text: str, name: str) -> int:
    s = text.strip()
    try:
        value = int(s)
    except ValueError:
        raise _RowError(f"{name} must be an integer; received {text!r}") from None
    if value < 0:
        raise _RowError(f"{name} must be >= 0 (indices are 0-based token positions); received {value}")
    return value


def read_agreement_tsv(path, *, skip_bad_rows: bool = False) -> RawCorpus:
    """Read an agreement TSV file (format above).

    Returns
    -------
    RawCorpus
        ``fields`` holds int64 arrays ``subj_idx``, ``verb_idx``, bool ``plural``
        (verb_pos == VBP) and raw ids ``verb``, ``inflected`` (words of the ``verb``
        and ``inflected_verb`` columns, interned with the tokens).

    Raises
    ------
    DataFormatError
        A missing or wrong header, and, unless ``skip_bad_rows``: a row with another
        number of columns, an empty sentence, a non-integer or negative index, an
        index past the sentence, subj_idx >= verb_idx, verb_pos other than VBZ/VBP,
        an empty verb, bad UTF-8; or a file with no rows.
    """
    path, lines, bad = read_lines(path, skip_bad_rows=skip_bad_rows)
    if not lines:
        raise DataFormatError(path, 1, "the file is empty; expected a header line naming the columns "
                              + " ".join(AGREEMENT_COLUMNS))
    if lines[0] is None:
        raise DataFormatError(path, 1, "the header line is not valid UTF-8")
    header = [c.strip() for c in lines[0].split("\t")]
    if sorted(header) != sorted(AGREEMENT_COLUMNS):
        raise DataFormatError(path, 1, f"the header must name the tab-separated columns {' '.join(AGREEMENT_COLUMNS)}; "
                              f"received {header}")
    col = {name: header.index(name) for name in AGREEMENT_COLUMNS}
    c_sent, c_subj, c_verb, c_pos, c_v, c_inf = (col[n] for n in AGREEMENT_COLUMNS)
    n_cols = len(AGREEMENT_COLUMNS)
    bad_lines = dict(bad)

    interner = _Interner()
    tokens: list = []
    lengths, row_lines, subj_l, verb_l, plural_l, v_l, inf_l = [], [], [], [], [], [], []
    skipped: list = []
    for k in range(1, len(lines)):
        text = lines[k]
        try:
            if text is None:
                raise _RowError(bad_lines[k + 1])
            parts = text.split("\t")
            if len(parts) != n_cols:
                raise _RowError(f"has {len(parts)} tab-separated column(s); expected {n_cols} "
                                f"({' '.join(header)})")
            toks = parts[c_sent].split()
            if not toks:
                raise _RowError("the sentence is empty")
            subj = _parse_index(parts[c_subj], "subj_idx")
            verb = _parse_index(parts[c_verb], "verb_idx")
            n = len(toks)
            for name, value in (("subj_idx", subj), ("verb_idx", verb)):
                if value >= n:
                    raise _RowError(f"{name} = {value} is past the sentence, which has {n} tokens "
                                    f"(valid indices 0..{n - 1})")
            if subj >= verb:
                raise _RowError(f"subj_idx ({subj}) must be smaller than verb_idx ({verb}): "
                                "the subject comes before its verb")
            pos = parts[c_pos].strip()
            if pos not in NUMBER_LABELS:
                raise _RowError(f"verb_pos must be VBZ or VBP; received {parts[c_pos]!r}")
            v, inf = parts[c_v].strip(), parts[c_inf].strip()
            for name, value in (("verb", v), ("inflected_verb", inf)):
                if not value or len(value.split()) != 1:
                    raise _RowError(f"{name} must be one word; received {value!r}")
        except _RowError as err:
            if not skip_bad_rows:
                raise DataFormatError(path, k + 1, f"{err}; fix the row, or pass skip_bad_rows=True "
                                      "to leave bad rows out") from None
            skipped.append((k + 1, str(err)))
            continue
        tokens.extend(interner.ids(toks))
        lengths.append(n)
        row_lines.append(k + 1)
        subj_l.append(subj)
        verb_l.append(verb)
        plural_l.append(pos == "VBP")
        v_l.append(interner.id(v))
        inf_l.append(interner.id(inf))
    if not lengths:
        raise DataFormatError(path, len(lines) + 1 if lines else 1,
                              "the file has no data rows" + (f" ({len(skipped)} bad row(s) skipped)" if skipped else ""))
    _report_skipped(path, skipped, "row")
    offsets = offsets_from_lengths(lengths)
    fields = {"subj_idx": np.array(subj_l, dtype=np.int64), "verb_idx": np.array(verb_l, dtype=np.int64),
              "plural": np.array(plural_l, dtype=bool), "verb": np.array(v_l, dtype=np.int64),
              "inflected": np.array(inf_l, dtype=np.int64)}
    return RawCorpus(interner.lexicon, np.array(tokens, dtype=np.int32), offsets,
                     np.array(row_lines, dtype=np.int64), skipped, fields)


def read_text(path, *, skip_bad_rows: bool = False) -> RawCorpus:
    """Read plain text: one sentence per line, whitespace-separated tokens.

    Raises
    ------
    DataFormatError
        Unless ``skip_bad_rows``: an empty (or whitespace-only) line, bad UTF-8; or a
        file with no sentences.
    """
    path, lines, bad = read_lines(path, skip_bad_rows=skip_bad_rows)
    bad_lines = dict(bad)
    interner = _Interner()
    tokens: list = []
    lengths, row_lines, skipped = [], [], []
    for k, text in enumerate(lines):
        reason = bad_lines.get(k + 1) if text is None else None
        toks = text.split() if text is not None else []
        if reason is None and not toks:
            reason = "the sentence is empty (a blank line)"
        if reason is not None:
            if not skip_bad_rows:
                raise DataFormatError(path, k + 1, f"{reason}; remove the line, or pass skip_bad_rows=True "
                                      "to leave bad lines out")
            skipped.append((k + 1, reason))
            continue
        tokens.extend(interner.ids(toks))
        lengths.append(len(toks))
        row_lines.append(k + 1)
    if not lengths:
        raise DataFormatError(path, len(lines) + 1 if lines else 1,
                              "the file has no sentences" + (f" ({len(skipped)} bad line(s) skipped)" if skipped else ""))
    _report_skipped(path, skipped, "line")
    offsets = offsets_from_lengths(lengths)
    return RawCorpus(interner.lexicon, np.array(tokens, dtype=np.int32), offsets,
                     np.array(row_lines, dtype=np.int64), skipped)


def read_counts_file(path) -> tuple[list, np.ndarray]:
    """Read ``word<TAB>count[<TAB>freq]`` lines; returns (words, int64 counts) in file order.

    Raises
    ------
    DataFormatError
        A line that is blank, lacks a count, has a count that is not a non-negative
        integer, repeats a word, or is not UTF-8; or a file with no entries.
    """
    path, lines, _ = read_lines(path)
    words, counts, seen = [], [], {}
    for k, text in enumerate(lines):
        parts = text.split("\t")
        if len(parts) < 2:
            parts = text.split()
        if not parts or not parts[0].strip():
            raise DataFormatError(path, k + 1, "the line is blank; expected word<TAB>count[<TAB>freq]")
        if len(parts) not in (2, 3):
            raise DataFormatError(path, k + 1, f"has {len(parts)} tab-separated column(s); "
                                  "expected word<TAB>count[<TAB>freq]")
        word = parts[0].strip()
        try:
            count = int(parts[1].strip())
        except ValueError:
            raise DataFormatError(path, k + 1, f"the count of {word!r} must be an integer; received {parts[1]!r}") from None
        if count < 0:
            raise DataFormatError(path, k + 1, f"the count of {word!r} must be >= 0; received {count}")
        if word in seen:
            raise DataFormatError(path, k + 1, f"{word!r} is listed twice (first on line {seen[word]})")
        seen[word] = k + 1
        words.append(word)
        counts.append(count)
    if not words:
        raise DataFormatError(path, 1, "the file has no entries; expected word<TAB>count[<TAB>freq] lines")
    return words, np.array(counts, dtype=np.int64)


# ---------------------------------------------------------------------- attractors
def noun_numbers(lexicon, method: str = "tags", *, tokens=None, offsets=None, subj_idx=None,
                 plural=None) -> np.ndarray:
    """Grammatical number each word of ``lexicon`` is taken to have, for counting attractors.

    Parameters
    ----------
    lexicon : list of str
    method : {"tags", "tags+subjects"}
        ``"tags"``: only the part-of-speech tags that stand for rare nouns count: NN
        and NNP are singular nouns, NNS and NNPS plural. ``"tags+subjects"``: also the
        words that are subject heads somewhere in the file (token at ``subj_idx``),
        with the number of that row's verb; words seen with both numbers are left out.
    tokens, offsets, subj_idx, plural : arrays
        The corpus, needed by ``"tags+subjects"``.

    Returns
    -------
    int8 array, shape (len(lexicon),)
        0 = not a noun, 1 = singular noun, 2 = plural noun.
    """
    if method not in ATTRACTOR_METHODS:
        raise ValueError(f"attractors must be one of {ATTRACTOR_METHODS}; received {method!r}")
    number = np.zeros(len(lexicon), dtype=np.int8)
    index = {w: i for i, w in enumerate(lexicon)}
    for tags, value in ((SINGULAR_NOUN_TAGS, 1), (PLURAL_NOUN_TAGS, 2)):
        for t in tags:
            if t in index:
                number[index[t]] = value
    if method == "tags+subjects":
        heads = np.asarray(tokens)[np.asarray(offsets)[:-1] + np.asarray(subj_idx)]
        seen = np.zeros((len(lexicon), 2), dtype=bool)
        seen[heads, np.asarray(plural, dtype=np.int64)] = True
        lexical = np.where(seen[:, 0] & ~seen[:, 1], 1, np.where(seen[:, 1] & ~seen[:, 0], 2, 0)).astype(np.int8)
        is_tag = np.zeros(len(lexicon), dtype=bool)
        is_tag[number > 0] = True
        for t in NUMBER_LABELS:
            if t in index:
                is_tag[index[t]] = True
        number = np.where(is_tag, number, lexical).astype(np.int8)
    return number


def count_attractors(tokens, offsets, subj_idx, verb_idx, plural, number: np.ndarray) -> np.ndarray:
    """Nouns of the other number than the subject, strictly between subject and verb.

    A run of consecutive nouns (a compound, "NNP NNP", "school NNS") counts once, with
    the number of its last word, the head of an English compound.

    Parameters
    ----------
    tokens : int array, shape (N,)
        Raw ids, sentences concatenated.
    offsets : int64 array, shape (n + 1,)
    subj_idx, verb_idx : int64 arrays, shape (n,)
    plural : bool array, shape (n,)
        Whether the subject is plural (verb_pos == VBP).
    number : int8 array, shape (len(lexicon),)
        From :func:`noun_numbers`.

    Returns
    -------
    int64 array, shape (n,)
    """
    tokens = np.asarray(tokens)
    offsets = np.asarray(offsets, dtype=np.int64)
    num = number[tokens]
    is_noun = num > 0
    last_in_sentence = np.zeros(tokens.size, dtype=bool)
    last_in_sentence[offsets[1:] - 1] = True
    next_is_noun = np.zeros(tokens.size, dtype=bool)
    next_is_noun[:-1] = is_noun[1:]
    head = is_noun & (~next_is_noun | last_in_sentence)
    starts = offsets[:-1] + np.asarray(subj_idx) + 1
    ends = offsets[:-1] + np.asarray(verb_idx)
    counts = []
    for value in (1, 2):  # singular heads, plural heads
        cs = np.zeros(tokens.size + 1, dtype=np.int64)
        np.cumsum(head & (num == value), out=cs[1:])
        counts.append(cs[ends] - cs[starts])
    plural = np.asarray(plural, dtype=bool)
    return np.where(plural, counts[0], counts[1]).astype(np.int64)


# ---------------------------------------------------------------------- standard agreement test sets
#: Columns of Gulordava et al.'s ``generated.tab`` that the reader needs (the file has more).
GULORDAVA_COLUMNS = ("pattern", "constr_id", "sent_id", "correct_number", "form", "class", "type", "n_attr",
                     "len_prefix", "sent")
#: Sentence types of Gulordava et al.'s set: the original sentences and their "colorless green" versions.
GULORDAVA_TYPES = ("original", "generated")
#: Published accuracies that the colorlessgreen README quotes (Gulordava et al. 2018, supplementary
#: material, single best model, English): test set, sentence type, model, accuracy.
PUBLISHED_AGREEMENT = (
    ("gulordava", "original", "LSTM (Gulordava et al. 2018)", 0.805),
    ("gulordava", "generated", "LSTM (Gulordava et al. 2018)", 0.718),
    ("gulordava", "original", "simple RNN (Gulordava et al. 2018)", 0.732),
    ("gulordava", "generated", "simple RNN (Gulordava et al. 2018)", 0.642),
)
#: Columns of :attr:`AgreementTestSet.items`.
TEST_SET_COLUMNS = ("item", "line", "prefix", "correct", "wrong", "n_attractors", "type", "pattern")


@dataclass(frozen=True, eq=False)
class AgreementTestSet:
    """Items of a standard agreement test: after ``prefix``, is P(correct form) > P(wrong form)?

    Attributes
    ----------
    name : str
        "linzen_testset" (Linzen, Dupoux & Goldberg 2016, as filtered by Gulordava et al. 2018)
        or "gulordava" (Gulordava et al. 2018's English original and nonsense sentences).
    source : str
        The file(s) read.
    items : DataFrame
        One row per item, columns :data:`TEST_SET_COLUMNS`: ``item`` (0..n-1), ``line``
        (1-based line of the item in its file: the ``.gold`` line, or the ``correct``
        row of the ``.tab``), ``prefix`` (tuple of the words before the verb, as
        written), ``correct``, ``wrong`` (the two verb forms), ``n_attractors``,
        ``type`` ("original"/"generated"; "original" for every Linzen item) and
        ``pattern`` (Gulordava's construction; "" for Linzen).
    """

    name: str
    source: str
    items: "object"

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"AgreementTestSet({self.name!r}, {len(self)} items, source={self.source!r})"


def _test_set_frame(rows: list):
    import pandas as pd
    frame = pd.DataFrame(rows, columns=list(TEST_SET_COLUMNS[1:]))
    frame.insert(0, "item", np.arange(len(frame), dtype=np.int64))
    frame["line"] = frame["line"].astype(np.int64)
    frame["n_attractors"] = frame["n_attractors"].astype(np.int64)
    return frame


def _one_word(value: str, name: str) -> str:
    v = value.strip()
    if not v or len(v.split()) != 1:
        raise _RowError(f"{name} must be one word; received {value!r}")
    return v


def read_linzen_testset(text_path, gold_path=None) -> AgreementTestSet:
    """Read Linzen et al.'s agreement items in Gulordava et al.'s files (``subj_agr_filtered.text/.gold``).

    Parameters
    ----------
    text_path : path
        One tokenised sentence per line (ending in ``<eos>`` in the published file).
    gold_path : path, optional
        The line-aligned ``.gold`` file: ``verb_index<TAB>correct<TAB>wrong<TAB>n_attractors``
        (0-based index of the verb among the sentence's tokens). Default: ``text_path``
        with the suffix ``.gold``.

    Returns
    -------
    AgreementTestSet
        ``prefix`` = the tokens before the verb index.

    Raises
    ------
    DataFormatError
        Naming the file and line: files with different numbers of lines, a gold line
        without 4 tab-separated columns, an index or attractor count that is not a
        non-negative integer, an index past its sentence, a verb form that is not one
        word, an empty sentence, bad UTF-8; or empty files.
    """
    text_p, text_lines, _ = read_lines(text_path)
    if gold_path is None:
        gold_path = text_p.with_suffix(".gold")
        if not gold_path.exists():
            raise FileNotFoundError(f"gold_path: {str(gold_path)!r} (the .gold file beside {str(text_p)!r}) "
                                    "does not exist; pass gold_path")
    gold_p, gold_lines, _ = read_lines(gold_path, skip_bad_rows=False)
    if not gold_lines:
        raise DataFormatError(gold_p, 1, "the file is empty; expected index<TAB>correct<TAB>wrong<TAB>n_attractors lines")
    if len(text_lines) != len(gold_lines):
        shorter, n = (text_p, len(text_lines)) if len(text_lines) < len(gold_lines) else (gold_p, len(gold_lines))
        raise DataFormatError(shorter, n + 1, f"the file ends here ({n} lines) but {str(text_p)!r} and "
                              f"{str(gold_p)!r} must be line-aligned ({len(text_lines)} vs {len(gold_lines)} lines)")
    rows = []
    for k, (sentence, gold) in enumerate(zip(text_lines, gold_lines)):
        toks = sentence.split()
        if not toks:
            raise DataFormatError(text_p, k + 1, "the sentence is empty (a blank line)")
        try:
            parts = gold.split("\t")
            if len(parts) != 4:
                raise _RowError(f"has {len(parts)} tab-separated column(s); expected 4 "
                                "(verb_index, correct form, wrong form, n_attractors)")
            idx = _parse_index(parts[0], "the verb index")
            if idx >= len(toks):
                raise _RowError(f"the verb index {idx} is past the sentence on line {k + 1} of {str(text_p)!r}, "
                                f"which has {len(toks)} tokens")
            correct, wrong = _one_word(parts[1], "the correct form"), _one_word(parts[2], "the wrong form")
            n_attr = _parse_index(parts[3], "n_attractors")
        except _RowError as err:
            raise DataFormatError(gold_p, k + 1, str(err)) from None
        rows.append((k + 1, tuple(toks[:idx]), correct, wrong, n_attr, "original", ""))
    return AgreementTestSet("linzen_testset", f"{text_p} + {gold_p}", _test_set_frame(rows))


def read_gulordava_set(path) -> AgreementTestSet:
    """Read Gulordava et al.'s agreement set (``generated.tab``: original and nonsense sentences).

    The file is tab-separated with a header naming at least :data:`GULORDAVA_COLUMNS`
    and CSV quoting (``""`` inside quoted fields). Every item has two rows, ``class``
    = correct and wrong, with the same pattern, constr_id, sent_id and type; ``sent``
    is the sentence (identical to its line of ``generated.text``, which is therefore
    not needed) and the prefix is its first ``len_prefix`` tokens (the ``prefix``
    column writes rare words as ``<unk>``, so it is not used).

    Returns
    -------
    AgreementTestSet
        One item per pair, in the order of the correct rows.

    Raises
    ------
    DataFormatError
        Naming the file and line: a missing column in the header, a row with another
        number of fields, ``class`` or ``type`` not one of the known values, a
        ``len_prefix`` or ``n_attr`` that is not a non-negative integer or a prefix
        longer than the sentence, a form that is not one word, an item without
        exactly one correct and one wrong row (or whose two rows disagree on the
        sentence); or a file without items.
    """
    import csv
    path, lines, _ = read_lines(path)
    if not lines:
        raise DataFormatError(path, 1, "the file is empty; expected a header naming " + " ".join(GULORDAVA_COLUMNS))
    reader = csv.reader(lines, delimiter="\t")
    header = [c.strip() for c in next(reader)]
    missing = [c for c in GULORDAVA_COLUMNS if c not in header]
    if missing:
        raise DataFormatError(path, 1, f"the header lacks the column(s) {missing}; the tab-separated header must "
                              f"name {' '.join(GULORDAVA_COLUMNS)}; received {header}")
    col = {c: header.index(c) for c in GULORDAVA_COLUMNS}
    pending: dict = {}
    rows = []
    for fields in reader:
        line = reader.line_num
        try:
            if len(fields) != len(header):
                raise _RowError(f"has {len(fields)} tab-separated field(s); the header has {len(header)}")
            get = {c: fields[i].strip() for c, i in col.items()}
            cls, typ = get["class"], get["type"]
            if cls not in ("correct", "wrong"):
                raise _RowError(f"class must be correct or wrong; received {fields[col['class']]!r}")
            if typ not in GULORDAVA_TYPES:
                raise _RowError(f"type must be one of {GULORDAVA_TYPES}; received {fields[col['type']]!r}")
            toks = get["sent"].split()
            n_prefix = _parse_index(get["len_prefix"], "len_prefix")
            if n_prefix >= len(toks):
                raise _RowError(f"len_prefix = {n_prefix} leaves no verb in the sentence, which has {len(toks)} tokens")
            form = _one_word(get["form"], "form")
            n_attr = _parse_index(get["n_attr"], "n_attr")
            key = (get["pattern"], get["constr_id"], get["sent_id"], typ)
            entry = pending.setdefault(key, {"line": line})
            if cls in entry:
                raise _RowError(f"item {key} has a second {cls!r} row (the first is on line {entry[cls][0]})")
            if "sent" in entry and (entry["sent"], entry["n_prefix"]) != (toks, n_prefix):
                raise _RowError(f"the correct and wrong rows of item {key} differ in sent or len_prefix "
                                f"(the other row is on line {entry['line']})")
            entry.update({cls: (line, form, n_attr), "sent": toks, "n_prefix": n_prefix})
        except _RowError as err:
            raise DataFormatError(path, line, str(err)) from None
        if "correct" in entry and "wrong" in entry:
            c_line, correct, n_attr = entry["correct"]
            rows.append((c_line, tuple(toks[:n_prefix]), correct, entry["wrong"][1], n_attr, typ, key[0]))
            del pending[key]
    if pending:
        key, entry = next(iter(pending.items()))
        lone = "correct" if "correct" in entry else "wrong"
        raise DataFormatError(path, entry[lone][0], f"item {key} has a {lone!r} row but no "
                              f"{'wrong' if lone == 'correct' else 'correct'!r} row")
    if not rows:
        raise DataFormatError(path, len(lines) + 1, "the file has no items (pairs of correct and wrong rows)")
    return AgreementTestSet("gulordava", str(path), _test_set_frame(rows))
