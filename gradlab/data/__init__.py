"""Datasets for gradlab: vocabularies, file readers, built-in generators, one interface.

>>> from gradlab.data import load_dataset, list_datasets
>>> ds = load_dataset("agreement:distance=8,n=100")       # doctest: +SKIP
>>> ds.batch("number"), ds.dependencies("number")          # doctest: +SKIP

Importing this package reads no files and generates nothing.
"""
from .dataset import LAYOUTS, TASK_DESCRIPTIONS, Dataset
from .readers import (AGREEMENT_COLUMNS, ATTRACTOR_METHODS, NUMBER_LABELS, DataFormatError, DataWarning,
                      read_agreement_tsv, read_text)
from .registry import (DEFAULT_DATASET, DatasetInfo, Parameter, canonical_spec, check_spec, dataset_info,
                       estimated_tokens, list_datasets, load_dataset, parse_spec, spec_files)
from .vocab import BOS, DEFAULT_N_WORDS, EOS, SPECIALS, UNK, Vocabulary, adjusted_loss

__all__ = [
    "load_dataset", "list_datasets", "dataset_info", "parse_spec", "check_spec", "canonical_spec", "spec_files",
    "estimated_tokens", "DEFAULT_DATASET",
    "Dataset", "DatasetInfo", "Parameter", "TASK_DESCRIPTIONS", "LAYOUTS",
    "Vocabulary", "adjusted_loss", "BOS", "EOS", "UNK", "SPECIALS", "DEFAULT_N_WORDS",
    "DataFormatError", "DataWarning", "read_agreement_tsv", "read_text",
    "AGREEMENT_COLUMNS", "NUMBER_LABELS", "ATTRACTOR_METHODS",
]
