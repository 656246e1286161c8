"""gradlab: exact per-loss, per-lag BPTT gradients of Elman RNNs, and what truncation keeps of them."""
from .batch import NO_LOSS, Batch
from .engine import (Contributions, ForwardResult, Gradient, SentenceGaps, contributions, forward, gradient,
                     sentence_gaps, warmup)
from .model import RNN
from .schemes import Block, Full, Scheme, Sliding, chunked, mikolov, parse_scheme

__version__ = "0.1.0"

__all__ = ["Batch", "NO_LOSS", "RNN", "Scheme", "Full", "Sliding", "Block", "chunked", "mikolov", "parse_scheme",
           "forward", "gradient", "contributions", "sentence_gaps", "warmup", "SentenceGaps", "ForwardResult", "Gradient", "Contributions",
           "__version__"]
