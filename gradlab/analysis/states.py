"""Model states a report compares: random initialisation at a weight scale, or a saved model."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..model import ACTIVATIONS, DEFAULT_SCALE, RNN

_FORMS = "init[:scale=S,seed=N,activation=A] or file:path=PATH[,label=NAME]"


@dataclass(frozen=True)
class ModelState:
    """A recipe for a model of a given size.

    ``kind`` "init": U, V, W ~ N(0, scale^2) drawn from ``seed`` (or the spec's seed
    when None), mixed with the dataset's label, so each dataset gets its own draw. ``kind`` "file": a model
    saved with :meth:`gradlab.RNN.save`; its sizes must match the dataset.
    """

    kind: str
    scale: float = DEFAULT_SCALE
    seed: int | None = None
    activation: str = "sigmoid"
    path: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.kind == "file":
            return f"file:{Path(self.path).stem}"
        text = f"init:scale={self.scale:g}"
        if self.seed is not None:
            text += f",seed={self.seed}"
        if self.activation != "sigmoid":
            text += f",activation={self.activation}"
        return text

    def check(self) -> None:
        """Fail early (before any work) on a missing or unreadable model file."""
        if self.kind == "file":
            RNN.load(self.path)

    def build(self, vocab_size: int, hidden_size: int, output_size: int, key: str = "", default_seed: int = 0) -> RNN:
        if self.kind == "file":
            model = RNN.load(self.path)
            want = (hidden_size, vocab_size, output_size)
            got = (model.hidden_size, model.vocab_size, model.output_size)
            if got[1:] != want[1:]:
                raise ValueError(f"model file {self.path} has |V| = {got[1]}, |O| = {got[2]}; the dataset needs "
                                 f"|V| = {want[1]}, |O| = {want[2]}")
            return model
        seed = [default_seed if self.seed is None else self.seed, zlib.crc32(key.encode())]
        return RNN.init(vocab_size, hidden_size, output_size, rng=np.random.default_rng(seed), scale=self.scale,
                        activation=self.activation)


def parse_state(text) -> ModelState:
    """``"init"``, ``"init:scale=1.0,seed=3"``, ``"file:path=models/m.npz"`` -> ModelState."""
    if isinstance(text, ModelState):
        return text
    if not isinstance(text, str):
        raise TypeError(f"a model state must be a string ({_FORMS}); received {text!r}")
    kind, _, rest = text.strip().partition(":")
    params = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"model state {text!r}: {item!r} is not key=value; expected {_FORMS}")
        params[key.strip()] = value.strip()
    allowed = {"init": {"scale", "seed", "activation", "label"}, "file": {"path", "label"}}
    if kind not in allowed:
        raise ValueError(f"unknown model state kind {kind!r} in {text!r}; expected one of {sorted(allowed)} "
                         f"({_FORMS})")
    unknown = set(params) - allowed[kind]
    if unknown:
        raise ValueError(f"model state {text!r}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed[kind])}")
    if kind == "file":
        if "path" not in params:
            raise ValueError(f"model state {text!r} needs path=FILE.npz")
        return ModelState("file", path=params["path"], name=params.get("label"))
    try:
        scale = float(params.get("scale", DEFAULT_SCALE))
        seed = int(params["seed"]) if "seed" in params else None
    except ValueError:
        raise ValueError(f"model state {text!r}: scale must be a number and seed an integer") from None
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"model state {text!r}: scale must be a finite number >= 0; received {scale}")
    activation = params.get("activation", "sigmoid")
    if activation not in ACTIVATIONS:
        raise ValueError(f"model state {text!r}: activation must be one of {sorted(ACTIVATIONS)}; "
                         f"received {activation!r}")
    return ModelState("init", scale=scale, seed=seed, activation=activation, name=params.get("label"))
