"""Datasets by name: spec strings, the listing, and :func:`load_dataset`.

A spec is ``name`` or ``name:key=value,key=value``, e.g. ``"agreement:distance=8,n=1000"``
or ``"linzen:path=data/wiki-dev.txt,vocab=data/vocab.wiki.txt,n_vocab=2000"``. The same
string works in the Python API, on the command line and in analysis specs. Values
may be quoted ('...' or "..."); a comma inside a value is kept unless it is followed
by ``key=``.
"""
from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import generators as gen
from .dataset import Dataset
from .readers import (ATTRACTOR_METHODS, count_attractors, noun_numbers, read_agreement_tsv, read_text,
                      resolve_path)
from .vocab import DEFAULT_N_WORDS, Vocabulary

#: The dataset the README's main command runs on.
DEFAULT_DATASET = "agreement"


@dataclass(frozen=True)
class Parameter:
    """One dataset parameter: its name, type, default and what it does.

    ``type`` is one of "int", "float", "bool", "str", "path", "vocab" (a counts-file
    path or a :class:`Vocabulary`). ``minimum``/``maximum`` bound numbers (inclusive),
    ``choices`` lists allowed strings; ``required`` parameters have no default.
    """

    name: str
    type: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    required: bool = False


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: name, what it is, its tasks and parameters, and an example spec."""

    name: str
    description: str
    tasks: tuple
    parameters: tuple
    example: str
    builder: Callable = field(repr=False, compare=False, default=None)
    check: Callable = field(repr=False, compare=False, default=None)
    #: parameters -> an upper estimate of the tokens per sentence (built-in data), so a plan can
    #: refuse a dataset too large to hold before generating it; None for files (they are read).
    tokens_per_sentence: Callable = field(repr=False, compare=False, default=None)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)


# ---------------------------------------------------------------------- builders
def _min_distance(p: dict) -> int:
    return p["distance"] if p["min_distance"] is None else p["min_distance"]


def _check_min_distance(name: str, lowest: int):
    def check(p: dict) -> None:
        md = p["min_distance"]
        if md is not None and not lowest <= md <= p["distance"]:
            raise ValueError(f"{name}: min_distance must be between {lowest} and distance={p['distance']}; "
                             f"received {md}")
    return check


def _check_dyck(p: dict) -> None:
    if p["length"] % 2:
        raise ValueError(f"dyck: length must be even (a balanced string of brackets); received {p['length']}")
    d, md = p["distance"], p["min_distance"]
    if d is None:
        if md is not None:
            raise ValueError("dyck: min_distance needs distance (the controlled-distance form); received "
                             f"min_distance={md} without distance")
        return
    for name, value in (("distance", d), ("min_distance", md)):
        if value is not None and value % 2 == 0:
            raise ValueError(f"dyck: {name} must be odd (a bracket pair around a balanced string has an odd "
                             f"distance); received {value}")
    if md is not None and md > d:
        raise ValueError(f"dyck: min_distance must be between 1 and distance={d}; received {md}")
    if d >= 3 and p["max_depth"] < 2:
        raise ValueError(f"dyck: with distance={d} the inner string needs max_depth >= 2; received {p['max_depth']}")


_MAX_CONTEXTS = 2_000_000


def _check_markov(p: dict) -> None:
    n_ctx = (p["n_symbols"] + 1) ** (p["order"] - 1)
    if n_ctx > _MAX_CONTEXTS:
        raise ValueError(f"markov: order={p['order']} with n_symbols={p['n_symbols']} needs {n_ctx} contexts "
                         f"(more than {_MAX_CONTEXTS}); lower order or n_symbols")


def _build_agreement(p: dict) -> dict:
    corpus = gen.generate_agreement(distance=p["distance"], min_distance=_min_distance(p), n=p["n"],
                                    seed=p["seed"], p_attractor=p["p_attractor"], p_plural=p["p_plural"],
                                    material=p["material"])
    return dict(corpus=corpus, vocab=Vocabulary(gen.AGREEMENT_WORDS, source="agreement grammar"),
                tasks={"lm": "lm", "number": "number", "agreement": "agreement"}, attractor_method="exact")


def _build_recall(p: dict) -> dict:
    corpus = gen.generate_recall(distance=p["distance"], min_distance=_min_distance(p), n=p["n"],
                                 seed=p["seed"], n_keys=p["n_keys"], n_distractors=p["n_distractors"])
    words = gen.recall_words(p["n_keys"], p["n_distractors"])
    return dict(corpus=corpus, vocab=Vocabulary(words, source="recall symbols"),
                tasks={"lm": "lm", "recall": "masked"})


def _build_dyck(p: dict) -> dict:
    if p["distance"] is not None:
        corpus = gen.generate_dyck_distance(distance=p["distance"], min_distance=_min_distance(p),
                                            max_depth=p["max_depth"], p_open=p["p_open"], n=p["n"], seed=p["seed"])
    else:
        corpus = gen.generate_dyck(length=p["length"], max_depth=p["max_depth"], p_open=p["p_open"], n=p["n"],
                                   seed=p["seed"])
    return dict(corpus=corpus, vocab=Vocabulary(gen.DYCK_WORDS, source="Dyck-2 brackets"),
                tasks={"lm": "lm", "closing": "masked"})


def _build_markov(p: dict) -> dict:
    corpus = gen.generate_markov(order=p["order"], n_symbols=p["n_symbols"], length=p["length"],
                                 concentration=p["concentration"], chain_seed=p["chain_seed"], n=p["n"],
                                 seed=p["seed"])
    return dict(corpus=corpus, vocab=Vocabulary(gen.markov_words(p["n_symbols"]), source="Markov symbols"),
                tasks={"lm": "lm"}, markov_order=p["order"])


def _file_vocab(p: dict, corpus) -> Vocabulary:
    v = p["vocab"]
    if isinstance(v, Vocabulary):
        return v
    if v is not None:
        return Vocabulary.from_counts(v, p["n_vocab"])
    counts = np.bincount(corpus.tokens, minlength=len(corpus.lexicon))
    return Vocabulary._from_type_counts(corpus.lexicon, counts, corpus.n_sentences, p["n_vocab"],
                                        source=str(p["path"]))


def _build_linzen(p: dict) -> dict:
    corpus = read_agreement_tsv(p["path"], skip_bad_rows=p["skip_bad_rows"])
    f = corpus.fields
    number = noun_numbers(corpus.lexicon, p["attractors"], tokens=corpus.tokens, offsets=corpus.offsets,
                          subj_idx=f["subj_idx"], plural=f["plural"])
    f["n_attractors"] = count_attractors(corpus.tokens, corpus.offsets, f["subj_idx"], f["verb_idx"],
                                         f["plural"], number)
    n = corpus.n_sentences
    corpus.dep_ptr = np.arange(n + 1, dtype=np.int64)
    corpus.dep_source, corpus.dep_dependent = f["subj_idx"].copy(), f["verb_idx"].copy()
    return dict(corpus=corpus, vocab=_file_vocab(p, corpus),
                tasks={"lm": "lm", "number": "number", "agreement": "agreement"},
                attractor_method=p["attractors"])


def _build_text(p: dict) -> dict:
    corpus = read_text(p["path"], skip_bad_rows=p["skip_bad_rows"])
    return dict(corpus=corpus, vocab=_file_vocab(p, corpus), tasks={"lm": "lm"})


_N = Parameter("n", "int", 1000, "number of sentences", minimum=1)
_SEED = Parameter("seed", "int", 0, "seed of the sentences (same seed, same data)", minimum=0)
_FILE_PARAMS = (
    Parameter("vocab", "vocab", None, "counts file word<TAB>count[<TAB>freq] (its first n_vocab entries) "
              "or a Vocabulary; default: the n_vocab most frequent words of the file itself"),
    Parameter("n_vocab", "int", DEFAULT_N_WORDS, "vocabulary size |V|, <s> </s> UNK included", minimum=3),
    Parameter("skip_bad_rows", "bool", False, "leave malformed rows out (counted in .skipped, with a warning) "
              "instead of raising"),
)

_REGISTRY: dict[str, DatasetInfo] = {}


def _register(info: DatasetInfo) -> None:
    _REGISTRY[info.name] = info


_register(DatasetInfo(
    "agreement",
    "Synthetic subject-verb agreement: 'the [adj] SUBJ <material> VERB the NOUN .' with "
    "verb_idx - subj_idx = distance; the material is prepositional phrases, object relative clauses, "
    "adjectives and adverbs, and its nouns are attractors (the other number) with probability p_attractor. "
    "The default dataset.",
    ("lm", "number", "agreement"),
    (Parameter("distance", "int", 6, "subject-verb distance verb_idx - subj_idx (the loss needs lag distance - 1)",
               minimum=1, maximum=10_000),
     Parameter("min_distance", "int", None, "if set, distances are uniform on min_distance..distance", minimum=1),
     _N, _SEED,
     Parameter("p_attractor", "float", 0.5, "probability that an intervening noun has the other number",
               minimum=0.0, maximum=1.0),
     Parameter("p_plural", "float", 0.5, "probability that the subject is plural", minimum=0.0, maximum=1.0),
     Parameter("material", "str", "mixed", "intervening phrases: prepositional (pp), relative clauses (rc) or both",
               choices=gen.MATERIALS)),
    "agreement:distance=8,n=1000,seed=0",
    _build_agreement, _check_min_distance("agreement", 1), lambda p: p["distance"] + 8))

_register(DatasetInfo(
    "recall",
    "Delayed recall: 'KEY x x ... x ? KEY' - a key symbol, distance - 2 distractors, a cue, then the key "
    "must be reproduced (distance words after it).",
    ("lm", "recall"),
    (Parameter("distance", "int", 8, "words from the key to its copy (distance - 2 distractors; lag distance - 1)",
               minimum=2, maximum=100_000),
     Parameter("min_distance", "int", None, "if set, distances are uniform on min_distance..distance", minimum=2),
     _N, _SEED,
     Parameter("n_keys", "int", 4, "number of key symbols", minimum=1, maximum=10_000),
     Parameter("n_distractors", "int", 8, "number of distractor symbols", minimum=1, maximum=10_000)),
    "recall:distance=20,n_keys=4",
    _build_recall, _check_min_distance("recall", 2), lambda p: p["distance"] + 2))

_register(DatasetInfo(
    "dyck",
    "Dyck-2: balanced strings of ( ) [ ] of a fixed length, nested at most max_depth deep; each closing "
    "bracket is determined by its opening bracket (distances grow with length and max_depth). With distance: "
    "a bracket pair at that distance around a balanced string (a controlled long dependency).",
    ("lm", "closing"),
    (Parameter("length", "int", 20, "brackets per sentence (even); ignored when distance is set",
               minimum=2, maximum=100_000),
     Parameter("max_depth", "int", 4, "maximum nesting depth", minimum=1, maximum=100_000),
     Parameter("distance", "int", None, "if set (odd): each sentence is a bracket pair this many words apart around "
               "a balanced string of distance - 1 brackets (the controlled long dependency)", minimum=1,
               maximum=100_001),
     Parameter("min_distance", "int", None, "with distance: distances uniform on the odd numbers "
               "min_distance..distance (odd)", minimum=1),
     Parameter("p_open", "float", 0.5, "probability of opening when both opening and closing are allowed",
               minimum=0.0, maximum=1.0),
     _N, _SEED),
    "dyck:length=40,max_depth=8",
    _build_dyck, _check_dyck, lambda p: p["length"] + 1))

_register(DatasetInfo(
    "markov",
    "Local Markov text (the control): an n-gram source where each word depends only on the order - 1 words "
    "before it; sentences end with probability 1/length after every word.",
    ("lm",),
    (Parameter("order", "int", 3, "n of the n-gram source (lag order - 2 at most)", minimum=1, maximum=8),
     Parameter("n_symbols", "int", 20, "number of word symbols", minimum=1, maximum=100_000),
     Parameter("length", "float", 10.0, "mean sentence length in words", minimum=1.0),
     Parameter("concentration", "float", 0.2, "Dirichlet concentration of the next-word distributions "
               "(smaller = more predictable)", minimum=1e-6),
     Parameter("chain_seed", "int", 0, "seed of the n-gram table (datasets with the same chain_seed share it)",
               minimum=0),
     _N, _SEED),
    "markov:order=3,n_symbols=20",
    _build_markov, _check_markov, lambda p: p["length"] + 2))

_register(DatasetInfo(
    "linzen",
    "Subject-verb agreement sentences from a TSV file with the header 'sentence subj_idx verb_idx verb_pos "
    "verb inflected_verb' (Linzen et al. 2016; the coursework's wiki-*.txt). n_attractors is a heuristic "
    "(see the attractors parameter).",
    ("lm", "number", "agreement"),
    (Parameter("path", "path", None, "the TSV file", required=True),) + _FILE_PARAMS + (
        Parameter("attractors", "str", "tags", "how nouns are recognised when counting attractors: POS tags "
                  "NN/NNP (singular) and NNS/NNPS (plural) only, or also the words that are subject heads in the "
                  "file", choices=ATTRACTOR_METHODS),),
    "linzen:path=wiki-dev.txt,vocab=vocab.wiki.txt,n_vocab=2000",
    _build_linzen))

_register(DatasetInfo(
    "text",
    "Plain text: one sentence per line, tokens separated by whitespace; no dependency annotations.",
    ("lm",),
    (Parameter("path", "path", None, "the text file", required=True),) + _FILE_PARAMS,
    "text:path=corpus.txt,n_vocab=2000",
    _build_text))


# ---------------------------------------------------------------------- listing
def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a registered dataset."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(_REGISTRY)}") from None


def list_datasets(parameters: bool = True) -> pd.DataFrame:
    """What datasets exist.

    Parameters
    ----------
    parameters : bool, default True
        True: one row per (dataset, parameter) with columns ``dataset``, ``parameter``,
        ``type``, ``default``, ``required``, ``allowed``, ``description``. False: one row
        per dataset with ``dataset``, ``default`` (whether it is the default dataset),
        ``tasks``, ``parameters``, ``example``, ``description``.
    """
    if not parameters:
        return pd.DataFrame([{"dataset": i.name, "default": i.name == DEFAULT_DATASET, "tasks": ", ".join(i.tasks),
                              "parameters": ", ".join(p.name for p in i.parameters), "example": i.example,
                              "description": i.description} for i in _REGISTRY.values()])
    rows = []
    for info in _REGISTRY.values():
        for p in info.parameters:
            rows.append({"dataset": info.name, "parameter": p.name, "type": p.type,
                         "default": "(required)" if p.required else _format_value(p.default),
                         "required": p.required, "allowed": _allowed(p), "description": p.description})
    return pd.DataFrame(rows)


def _allowed(p: Parameter) -> str:
    if p.choices:
        return " | ".join(p.choices)
    if p.type in ("int", "float"):
        lo = "" if p.minimum is None else f">= {_format_value(p.minimum)}"
        hi = "" if p.maximum is None else f"<= {_format_value(p.maximum)}"
        return ", ".join(x for x in (lo, hi) if x) or "any"
    return {"bool": "true | false", "path": "file path", "vocab": "counts-file path (or a Vocabulary from Python)",
            "str": "any"}[p.type]


# ---------------------------------------------------------------------- specs
_SPLIT = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def parse_spec(spec: str) -> tuple[str, dict]:
    """Split ``"name:key=value,..."`` into the name and a dict of value strings."""
    if not isinstance(spec, str):
        raise TypeError(f"a dataset spec must be a string like 'agreement:distance=8'; received {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise ValueError(f"dataset spec {spec!r} must start with a dataset name ({', '.join(_REGISTRY)}), "
                         "e.g. 'agreement:distance=8'")
    values: dict = {}
    if rest.strip():
        for item in _SPLIT.split(rest):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key:
                raise ValueError(f"dataset spec {spec!r}: expected key=value after '{name}:', received {item.strip()!r}")
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            if key in values:
                raise ValueError(f"dataset spec {spec!r} gives {key!r} twice")
            values[key] = value
    return name, values


def _format_value(v) -> str:
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Vocabulary):
        # a Vocabulary object cannot be written as a spec value; say what it was instead
        return f"<Vocabulary size={len(v)} from {v.source or 'memory'}>"
    return str(v)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _convert(name: str, p: Parameter, value):
    """Convert a spec string or Python value to the parameter's type, checking its range."""
    where = f"{name}: parameter {p.name!r}"
    if value is None or (p.default is None and isinstance(value, str) and value.strip().lower() == "none"):
        if p.required:
            raise ValueError(f"{where} is required ({p.description})")
        return None
    t = p.type
    if t == "int":
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"{where} must be an integer; received {value!r}") from None
        elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{where} must be an integer; received {value!r} of type {type(value).__name__}")
        value = int(value)
    elif t == "float":
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ValueError(f"{where} must be a number; received {value!r}") from None
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{where} must be a number; received {value!r} of type {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite; received {value!r}")
    elif t == "bool":
        if isinstance(value, str):
            low = value.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError(f"{where} must be true or false; received {value!r}")
            value = low in _TRUE
        elif not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where} must be true or false; received {value!r}")
        value = bool(value)
    elif t == "str":
        if not isinstance(value, str):
            raise TypeError(f"{where} must be a string; received {value!r}")
        value = value.strip()
        if p.choices and value not in p.choices:
            raise ValueError(f"{where} must be one of {', '.join(p.choices)}; received {value!r}")
    elif t in ("path", "vocab"):
        if t == "vocab" and isinstance(value, Vocabulary):
            return value
        if isinstance(value, str):
            value = value.strip()
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise TypeError(f"{where} must be a file path{' or a Vocabulary' if t == 'vocab' else ''}; "
                            f"received {value!r}")
        return resolve_path(value, f"{name}: {p.name}")
    if t in ("int", "float"):
        if p.minimum is not None and value < p.minimum:
            raise ValueError(f"{where} must be >= {_format_value(p.minimum)}; received {value!r}")
        if p.maximum is not None and value > p.maximum:
            raise ValueError(f"{where} must be <= {_format_value(p.maximum)}; received {value!r}")
    return value


def _spec_string(info: DatasetInfo, values: dict, *, short: bool) -> str:
    items = []
    for p in info.parameters:
        v = values[p.name]
        if v is None or (short and not p.required and v == p.default and not isinstance(v, Vocabulary)):
            continue
        items.append(f"{p.name}={_format_value(v)}")
    return info.name + (":" + ",".join(items) if items else "")


def load_dataset(spec: "str | Dataset | None" = None, /, **params) -> Dataset:
    """Load or generate a dataset by name and parameters.

    Parameters
    ----------
    spec : str or Dataset, optional
        ``"name"`` or ``"name:key=value,..."`` (see :func:`list_datasets`); default
        :data:`DEFAULT_DATASET`. A Dataset is returned as it is.
    **params
        Parameters as Python values; they may not repeat a key of ``spec``.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown dataset or parameter (the message lists the allowed ones), a value out
        of range or not of the parameter's type (from a spec string), a key given twice.
    TypeError
        A Python value of the wrong type.
    FileNotFoundError, DataFormatError
        File datasets: a missing file, a malformed row (file and line named).

    Examples
    --------
    >>> load_dataset("agreement:distance=8,n=100")              # doctest: +SKIP
    >>> load_dataset("agreement", distance=8, n=100)            # doctest: +SKIP
    >>> load_dataset("linzen:path=wiki-dev.txt,vocab=vocab.wiki.txt")  # doctest: +SKIP
    """
    if isinstance(spec, Dataset):
        if params:
            raise ValueError("parameters cannot be applied to a Dataset that is already loaded; "
                             f"received {sorted(params)}; load it again from its spec")
        return spec
    info, values = _resolve(spec, params)
    built = info.builder(values)
    shown = {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}
    return Dataset(name=info.name, spec=_spec_string(info, shown, short=False),
                   label=_spec_string(info, shown, short=True), params=shown, vocab=built["vocab"],
                   corpus=built["corpus"], tasks=built["tasks"], markov_order=built.get("markov_order"),
                   attractor_method=built.get("attractor_method"))


def check_spec(spec: str | None = None, /, **params) -> tuple[str, dict]:
    """Validate a spec without generating or reading any data: (name, converted parameter values).

    Raises what :func:`load_dataset` raises for the name, the parameters and their
    values (file datasets: also a missing file), so a pipeline can check every spec
    before any work starts. Malformed rows inside a file are found only when loading.
    """
    info, values = _resolve(spec, params)
    return info.name, values


def canonical_spec(spec: str) -> str:
    """The one text of a dataset spec: every parameter, defaults filled in, in the registry's order.

    ``"recall"``, ``"recall:distance=8"`` and ``"recall:n=1000, distance=8"`` all give
    ``"recall:distance=8,n=1000,seed=0,n_keys=4,n_distractors=8"``; reports use it for
    labels, seeds, unit keys and file names, so two spellings of one dataset are one
    dataset. Parameters that are unset (None) are left out; paths are normalised.
    Raises what :func:`check_spec` raises.
    """
    info, values = _resolve(spec, {})
    return _spec_string(info, {k: (os.path.normpath(str(v)) if isinstance(v, Path) else v)
                               for k, v in values.items()}, short=False)


def spec_files(spec: str) -> dict[str, Path]:
    """The files a dataset spec reads, by parameter name (``path``, ``vocab``); {} for built-in data."""
    info, values = _resolve(spec, {})
    return {p.name: values[p.name] for p in info.parameters
            if p.type in ("path", "vocab") and isinstance(values[p.name], Path)}


def estimated_tokens(spec: str) -> int | None:
    """An upper estimate of a built-in dataset's tokens (language-model batch) from its parameters,
    without generating it; None for file datasets (their size is known only by reading them)."""
    info, values = _resolve(spec, {})
    if info.tokens_per_sentence is None or "n" not in values:
        return None
    return int(values["n"]) * int(math.ceil(info.tokens_per_sentence(values)))


def _resolve(spec, params: dict) -> tuple[DatasetInfo, dict]:
    if spec is None:
        spec = DEFAULT_DATASET
    name, raw = parse_spec(spec)
    info = dataset_info(name)
    both = sorted(set(raw) & set(params))
    if both:
        raise ValueError(f"{name}: parameter(s) {both} given both in the spec {spec!r} and as keyword arguments")
    given = {**raw, **params}
    known = {p.name: p for p in info.parameters}
    unknown = sorted(set(given) - set(known))
    if unknown:
        allowed = ", ".join(f"{p.name}={'(required)' if p.required else _format_value(p.default)}"
                            for p in info.parameters)
        raise ValueError(f"{name}: unknown parameter(s) {unknown}; allowed: {allowed}")
    values = {}
    # files are looked at only once every other value is known to be valid
    for p in sorted(info.parameters, key=lambda p: p.type in ("path", "vocab")):
        if p.name in given:
            values[p.name] = _convert(name, p, given[p.name])
        elif p.required:
            raise ValueError(f"{name}: parameter {p.name!r} is required ({p.description}); "
                             f"e.g. {info.example!r}")
        else:
            values[p.name] = p.default
    values = {p.name: values[p.name] for p in info.parameters}
    if info.check is not None:
        info.check(values)
    return info, values
