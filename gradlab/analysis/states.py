"""Model states a report compares: random initialisation at a weight scale, a saved model, or a model
trained on the unit's dataset from that initialisation.

This module parses and draws them; training a "train" state is the study layer's
(:func:`gradlab.study.states.build_state`), since training sits above analysis."""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, replace

import numpy as np

from ..model import ACTIVATIONS, DEFAULT_SCALE, RNN

_FORMS = ("init[:scale=S,seed=N,activation=A], file:path=PATH[,label=NAME] or "
          "train:scheme=S,epochs=E,lr=R,batch_size=B[,seed=N,scale=S,at=end|mid|init,label=NAME]")

#: Snapshots a "train" state can analyse: before training, after epochs // 2 epochs, after all epochs.
TRAIN_AT = ("init", "mid", "end")


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
    scheme: str | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    at: str = "end"
    recurrent: str = "normal"
    gain: float = 1.0

    @property
    def label(self) -> str:
        """``label=NAME`` when given, else :attr:`canonical`."""
        return self.name or self.canonical

    @property
    def canonical(self) -> str:
        """The one text of this state: every parameter, in a fixed order, numbers printed one way.

        Scales and learning rates are printed with 6 significant digits (``%g``): the
        default scale sqrt(0.1) is ``0.316228`` everywhere. The seed appears once it is
        known (:meth:`resolved` fills in the spec's seed).
        """
        if self.kind == "file":
            return f"file:path={os.path.normpath(self.path)}"
        if self.kind == "train":
            text = (f"train:scheme={self.scheme},epochs={self.epochs},lr={self.learning_rate:g},"
                    f"batch_size={self.batch_size}")
            if self.seed is not None:
                text += f",seed={self.seed}"
            return text + f",scale={self.scale:g},at={self.at}"
        text = f"init:scale={self.scale:g}"
        if self.seed is not None:
            text += f",seed={self.seed}"
        text += f",activation={self.activation}"
        if self.recurrent != "normal":
            text += f",recurrent={self.recurrent},gain={self.gain:g}"
        return text

    def resolved(self, default_seed: int) -> "ModelState":
        """This state with the spec's seed filled in where it sets none ("file" states have no seed)."""
        if self.kind == "file" or self.seed is not None:
            return self
        return replace(self, seed=int(default_seed))

    def check(self) -> None:
        """Fail early (before any work) on a missing or unreadable model file."""
        if self.kind == "file":
            RNN.load(self.path)

    @property
    def snapshot_epochs(self) -> int:
        """Epochs trained before the analysed snapshot ("train" states): 0, epochs // 2 or epochs."""
        return {"init": 0, "mid": (self.epochs or 0) // 2, "end": self.epochs or 0}[self.at]

    def build(self, vocab_size: int, hidden_size: int, output_size: int, key: str = "", default_seed: int = 0,
              dtype="float64") -> RNN:
        """The model of this state for a dataset (``key`` is its spec text), in ``dtype``.

        "init" states (and "train" states analysed at ``at=init``) are drawn from the seed and
        ``key``; "file" states are loaded and their sizes checked. A "train" state trained for
        some epochs is built by :func:`gradlab.study.states.build_state`, which trains the
        draw of :meth:`initial`. A "file" model of another type is converted to ``dtype``.
        """
        if self.kind == "file":
            model = RNN.load(self.path)
            if model.dtype != np.dtype(dtype):
                model = model.astype(dtype)
            want = (hidden_size, vocab_size, output_size)
            got = (model.hidden_size, model.vocab_size, model.output_size)
            if got[1:] != want[1:]:
                raise ValueError(f"model file {self.path} has |V| = {got[1]}, |O| = {got[2]}; the dataset needs "
                                 f"|V| = {want[1]}, |O| = {want[2]}")
            return model
        if self.kind == "train" and self.snapshot_epochs > 0:
            raise ValueError(f"model state {self.label!r} trains on the unit's dataset; build it with "
                             "gradlab.study.states.build_state(state, ..., dataset=ds, task=...)")
        return self.initial(vocab_size, hidden_size, output_size, key, default_seed, dtype)

    def initial(self, vocab_size: int, hidden_size: int, output_size: int, key: str = "", default_seed: int = 0,
                dtype="float64") -> RNN:
        """The random draw of an "init" state, or the untrained start of a "train" state (the same draw as
        the "init" state with its scale and seed), in ``dtype`` (drawn in float64, then rounded)."""
        seed = [default_seed if self.seed is None else self.seed, zlib.crc32(key.encode())]
        return RNN.init(vocab_size, hidden_size, output_size, rng=np.random.default_rng(seed), scale=self.scale,
                        activation=self.activation, recurrent=self.recurrent, gain=self.gain, dtype=dtype)


def parse_state(text) -> ModelState:
    """``"init"``, ``"init:scale=1.0,seed=3"``, ``"file:path=models/m.npz"`` -> ModelState."""
    if isinstance(text, ModelState):
        return text
    if not isinstance(text, str):
        raise TypeError(f"a model state must be a string ({_FORMS}); received {text!r}")
    kind, _, rest = text.strip().partition(":")
    params = {}
    last = None
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq and kind == "train" and last == "scheme":
            params["scheme"] += "," + item  # scheme=mikolov:2,5
            continue
        last = key.strip()
        if not eq:
            raise ValueError(f"model state {text!r}: {item!r} is not key=value; expected {_FORMS}")
        params[key.strip()] = value.strip()
    allowed = {"init": {"scale", "seed", "activation", "label"}, "file": {"path", "label"},
               "train": {"scheme", "epochs", "lr", "batch_size", "seed", "scale", "at", "label"}}
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
    if kind == "train":
        return _parse_train(text, params)
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


def _parse_train(text: str, params: dict) -> ModelState:
    from ..schemes import parse_scheme

    def bad(key, msg):
        raise ValueError(f"model state {text!r}: {key} {msg}")

    missing = [k for k in ("scheme", "epochs", "lr", "batch_size") if k not in params]
    if missing:
        raise ValueError(f"model state {text!r} needs {', '.join(k + '=' for k in missing)} "
                         f"(e.g. train:scheme=tbptt:3,epochs=3,lr=0.5,batch_size=10)")
    # the scheme's own text may hold a comma (mikolov:2,5): it is the value of scheme= up to the next key
    scheme = params["scheme"]
    try:
        scheme = parse_scheme(scheme).label
    except (TypeError, ValueError) as exc:
        bad("scheme", f"must be a scheme such as full, tbptt:3, chunked:5 or mikolov:2,5 ({exc})")
    ints = {}
    for key, lo in (("epochs", 1), ("batch_size", 1), ("seed", 0)):
        if key in params:
            try:
                ints[key] = int(params[key])
            except ValueError:
                bad(key, f"must be an integer >= {lo}; received {params[key]!r}")
            if ints[key] < lo:
                bad(key, f"must be an integer >= {lo}; received {ints[key]}")
    try:
        lr = float(params["lr"])
        scale = float(params.get("scale", DEFAULT_SCALE))
    except ValueError:
        bad("lr/scale", f"must be numbers; received lr={params['lr']!r}, scale={params.get('scale')!r}")
    if not np.isfinite(lr) or lr <= 0:
        bad("lr", f"must be a finite number > 0; received {params['lr']!r}")
    if not np.isfinite(scale) or scale < 0:
        bad("scale", f"must be a finite number >= 0; received {params['scale']!r}")
    at = params.get("at", "end")
    if at not in TRAIN_AT:
        bad("at", f"must be one of {TRAIN_AT}; received {at!r}")
    return ModelState("train", scale=scale, seed=ints.get("seed"), name=params.get("label"), scheme=scheme,
                      epochs=ints["epochs"], learning_rate=lr, batch_size=ints["batch_size"], at=at)
