"""Truncation schemes as lag limits (docs/maths.md, "Truncation schemes").

A deterministic scheme gives every loss t a lag limit L(t): loss t backpropagates
through lags k = 0 .. min(L(t), t). The engine takes nothing else, so every scheme
here is one small class with a ``lag_limit(t)`` method.

Text form, used by the CLI and analysis specs: ``full``, ``tbptt:3`` (sliding
window, the coursework's "steps"), ``block:5,10`` (k1, k2), ``chunked:10``
(detach every h steps) and ``mikolov:4,10`` (rnnlm ``-bptt 4 -bptt-block 10``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_int

#: A lag limit that no sentence reaches.
UNLIMITED = np.iinfo(np.int64).max // 4


class Scheme:
    """Base class: a rule for the lag limit L(t) of the loss at step t."""

    def lag_limit(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def label(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Full(Scheme):
    """Full BPTT: L(t) = t."""

    def lag_limit(self, t):
        return np.full(np.shape(t), UNLIMITED, dtype=np.int64)

    @property
    def label(self) -> str:
        return "full"


@dataclass(frozen=True)
class Sliding(Scheme):
    """The coursework's TBPTT(tau): every loss goes back tau steps (tau = 0 is one-step BP)."""

    tau: int

    def __post_init__(self):
        object.__setattr__(self, "tau", check_int(self.tau, "tau", 0))

    def lag_limit(self, t):
        return np.full(np.shape(t), self.tau, dtype=np.int64)

    @property
    def label(self) -> str:
        return f"tbptt:{self.tau}"


@dataclass(frozen=True)
class Block(Scheme):
    """Blocks of k1 steps; each block's losses are carried back to k2 - k1 steps before its start.

    L(t) = (k2 - k1) + (t mod k1). Block(h, h) is chunked "detach every h steps";
    Block(B, N + B) is Mikolov's rnnlm ``-bptt N -bptt-block B``; Williams & Peng's
    BPTT(h; h') is Block(h', h) and Sutskever's TBPTT(k1, k2) is Block(k1, k2).
    """

    k1: int
    k2: int

    def __post_init__(self):
        k1 = check_int(self.k1, "k1", 1)
        k2 = check_int(self.k2, "k2", 1)
        if k2 < k1:
            raise ValueError(f"block scheme needs k2 >= k1; received k1={k1}, k2={k2}")
        object.__setattr__(self, "k1", k1)
        object.__setattr__(self, "k2", k2)

    def lag_limit(self, t):
        t = np.asarray(t, dtype=np.int64)
        return (self.k2 - self.k1) + t % self.k1

    @property
    def label(self) -> str:
        return f"block:{self.k1},{self.k2}"


def chunked(h: int) -> Block:
    """Chunked "detach every h steps" (PyTorch/Keras practice) = Block(h, h)."""
    return Block(check_int(h, "h", 1), h)


def mikolov(bptt: int, block: int) -> Block:
    """Mikolov's rnnlm ``-bptt N -bptt-block B`` = Block(B, N + B)."""
    bptt = check_int(bptt, "bptt", 0)
    block = check_int(block, "bptt_block", 1)
    return Block(block, bptt + block)


_FORMS = "full, tbptt:TAU, block:K1,K2, chunked:H, mikolov:BPTT,BLOCK"


def parse_scheme(text) -> Scheme:
    """Turn ``"full"``, ``"tbptt:3"``, ``"block:5,10"``, ``"chunked:10"`` or ``"mikolov:4,10"`` into a Scheme."""
    if isinstance(text, Scheme):
        return text
    if not isinstance(text, str):
        raise TypeError(f"scheme must be a string ({_FORMS}) or a Scheme; received {text!r}")
    name, _, args = text.strip().lower().partition(":")
    try:
        values = [int(a) for a in args.split(",")] if args else []
    except ValueError:
        raise ValueError(f"scheme {text!r}: arguments must be integers; expected one of {_FORMS}") from None
    arity = {"full": 0, "tbptt": 1, "sliding": 1, "block": 2, "chunked": 1, "mikolov": 2}
    if name not in arity:
        raise ValueError(f"unknown scheme {name!r} in {text!r}; expected one of {_FORMS}")
    if len(values) != arity[name]:
        raise ValueError(f"scheme {name!r} takes {arity[name]} integer argument(s); received {text!r} "
                         f"(forms: {_FORMS})")
    if name == "full":
        return Full()
    if name in ("tbptt", "sliding"):
        return Sliding(values[0])
    if name == "block":
        return Block(*values)
    if name == "chunked":
        return chunked(values[0])
    return mikolov(*values)
