"""gradlab: exact per-loss, per-lag BPTT gradients of Elman RNNs and of GRU, LSTM and diagonal
linear recurrences (:class:`CellModel`, computed by gradlab.cell_engine; :func:`forward`,
:func:`gradient`, :func:`contributions`, :func:`sentence_gaps` and :class:`Trainer` take
either kind of model), and what truncation keeps of them.

Importing gradlab compiles nothing and reads no files; kernels compile (or load
from Numba's cache) on first use, or all at once with :func:`warmup`.
"""
from .batch import NO_LOSS, Batch
from .data import DataFormatError, Dataset, Vocabulary, adjusted_loss, check_spec, list_datasets, load_dataset
from .engine import (Contributions, ForwardResult, Gradient, SentenceGaps, contributions, forward, gradient,
                     sentence_gaps, warmup)
from .gradcheck import GradientCheck, check_gradient
from .model import RNN
from .cellmodel import CellModel, load_model
from .interop import from_torch
from . import cell_engine
from .schemes import Adaptive, Block, Full, Scheme, Sliding, chunked, mikolov, parse_scheme
from .train import Evaluation, Trainer, TrainResult, evaluate

__version__ = "0.1.0"

__all__ = ["Batch", "NO_LOSS", "RNN", "Scheme", "Full", "Sliding", "Block", "Adaptive", "chunked", "mikolov", "parse_scheme",
           "forward", "gradient", "contributions", "sentence_gaps", "warmup", "ForwardResult", "Gradient",
           "Contributions", "SentenceGaps", "check_gradient", "GradientCheck", "load_dataset", "list_datasets",
           "check_spec", "Dataset", "Vocabulary", "DataFormatError", "adjusted_loss", "Trainer", "TrainResult",
           "evaluate", "Evaluation", "CellModel", "load_model", "from_torch", "cell_engine", "__version__"]
