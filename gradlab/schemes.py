"""Truncation schemes as lag limits (docs/maths.md, "Truncation schemes").

A deterministic scheme gives every loss t a lag limit L(t): loss t backpropagates
through lags k = 0 .. min(L(t), t). The engine takes nothing else, so every scheme
here is one small class with a ``lag_limit(t)`` method.

Text form, used by the CLI and analysis specs: ``full``, ``tbptt:3`` (sliding
window, the coursework's "steps"), ``block:5,10`` (k1, k2), ``chunked:10``
(detach every h steps) and ``mikolov:4,10`` (rnnlm ``-bptt 4 -bptt-block 10``).
``adaptive:delta=0.1[,every=N,...]`` (:class:`Adaptive`) is a *training* scheme: the
trainer chooses TBPTT's tau during training; it has no fixed lag limit.
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


@dataclass(frozen=True)
class Adaptive(Scheme):
    """Adaptive truncation (Aicher, Foti & Fox, UAI 2019): TBPTT(tau) with tau chosen during training.

    Every ``every`` updates (and before the first) the trainer measures the vanishing
    profile phi(k) = mean over losses of ||delta(t, t-k)|| on ``sentences`` training
    sentences, fits the per-step decay beta (least squares of log phi against k for
    k >= ``start``) and trains with the smallest tau in [min_tau, max_tau] whose relative
    bias bound is at most ``delta`` (:func:`gradlab.train.adaptive.bias_bound`; when the
    signal does not decay, beta >= 1, it takes max_tau, as Aicher et al. do). Between
    estimates it is exactly ``Sliding(tau)``.

    Parameters
    ----------
    delta : float in (0, 1)
        Tolerated relative bias of the truncated gradient.
    every : int >= 1
        Updates between estimates.
    max_tau, min_tau : int
        Range of tau (0 <= min_tau <= max_tau); the profile is measured to lag max_tau + 1.
    sentences : int >= 1
        Training sentences per estimate (the next ones of the epoch's order).
    start : int >= 0
        Lag from which the decay is taken as geometric (Aicher et al.'s decay start);
        lags before it enter the bound as measured. start <= max_tau.
    """

    delta: float = 0.1
    every: int = 100
    max_tau: int = 20
    min_tau: int = 0
    sentences: int = 50
    start: int = 0

    def __post_init__(self):
        import math
        d = self.delta
        if isinstance(d, bool) or not isinstance(d, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(d)) or not 0.0 < float(d) < 1.0:
            raise ValueError(f"adaptive scheme: delta (the tolerated relative bias) must be a number in (0, 1); "
                             f"received {d!r}")
        object.__setattr__(self, "delta", float(d))
        for name, lo in (("every", 1), ("max_tau", 0), ("min_tau", 0), ("sentences", 1), ("start", 0)):
            try:
                object.__setattr__(self, name, check_int(getattr(self, name), name, lo))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"adaptive scheme: {exc}") from None
        if self.min_tau > self.max_tau:
            raise ValueError(f"adaptive scheme: min_tau ({self.min_tau}) must be <= max_tau ({self.max_tau})")
        if self.start > self.max_tau:
            raise ValueError(f"adaptive scheme: start ({self.start}) must be <= max_tau ({self.max_tau}): the decay "
                             "is fitted on lags start..max_tau + 1")

    def lag_limit(self, t):
        raise TypeError(f"{self.label} chooses tau during training (gradlab.Trainer); it has no fixed lag limit. "
                        "For a gradient at fixed parameters use Sliding(tau) with the tau it chose "
                        "(gradlab.train.adaptive.choose_tau)")

    @property
    def label(self) -> str:
        parts = [f"delta={self.delta:g}"]
        for f in ("every", "max_tau", "min_tau", "sentences", "start"):
            v = getattr(self, f)
            if v != type(self).__dataclass_fields__[f].default:
                parts.append(f"{f}={v}")
        return "adaptive:" + ",".join(parts)


def chunked(h: int) -> Block:
    """Chunked "detach every h steps" (PyTorch/Keras practice) = Block(h, h)."""
    return Block(check_int(h, "h", 1), h)


def mikolov(bptt: int, block: int) -> Block:
    """Mikolov's rnnlm ``-bptt N -bptt-block B`` = Block(B, N + B)."""
    bptt = check_int(bptt, "bptt", 0)
    block = check_int(block, "bptt_block", 1)
    return Block(block, bptt + block)


_FORMS = "full, tbptt:TAU, block:K1,K2, chunked:H, mikolov:BPTT,BLOCK, adaptive:delta=D[,every=N,max_tau=M,...]"


def parse_scheme(text) -> Scheme:
    """Turn ``"full"``, ``"tbptt:3"``, ``"block:5,10"``, ``"chunked:10"`` or ``"mikolov:4,10"`` into a Scheme."""
    if isinstance(text, Scheme):
        return text
    if not isinstance(text, str):
        raise TypeError(f"scheme must be a string ({_FORMS}) or a Scheme; received {text!r}")
    name, _, args = text.strip().lower().partition(":")
    if name == "adaptive":
        return _parse_adaptive(text, args)
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


def _parse_adaptive(text: str, args: str) -> Adaptive:
    """``adaptive:delta=0.1,every=50`` -> Adaptive; unknown keys and bad values name themselves."""
    fields = {f: Adaptive.__dataclass_fields__[f].default for f in Adaptive.__dataclass_fields__}
    given: dict = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = (x.strip() for x in item.partition("="))
        if not eq or key not in fields:
            raise ValueError(f"scheme {text!r}: expected key=value with keys {', '.join(fields)}; received {item!r}")
        if key in given:
            raise ValueError(f"scheme {text!r} gives {key!r} twice")
        try:
            given[key] = float(value) if key == "delta" else int(value)
        except ValueError:
            kind = "a number" if key == "delta" else "an integer"
            raise ValueError(f"scheme {text!r}: {key} must be {kind}; received {value!r}") from None
    if "delta" not in given:
        raise ValueError(f"scheme {text!r}: adaptive needs delta, the tolerated relative bias, "
                         "e.g. 'adaptive:delta=0.1'")
    return Adaptive(**given)
