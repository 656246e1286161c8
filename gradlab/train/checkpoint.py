"""Training checkpoints: the model file of ``RNN.save`` plus the run state, and the run's fingerprint.

A checkpoint is one ``.npz`` file written by :meth:`gradlab.RNN.save` (atomically:
an interrupted write leaves the previous checkpoint and no temporary file), or for
a :class:`gradlab.CellModel` with the arrays :meth:`gradlab.CellModel.save` writes
(the parameters, the cell's name under ``"__cell__"`` and an rnn cell's activation),
with two extra arrays: ``trainer_state``, JSON text with the epoch, the position in it,
the counters, the RNG state, the history so far and the fingerprint of everything
that determines the run (options, data, initial model), and ``order``, the current
epoch's permutation. :meth:`gradlab.RNN.load` (:meth:`gradlab.CellModel.load`) reads it as a model.

Files written before the trainer was split (gradlab issue 9) have the same arrays
and are read too, but only files of this version are promised to load.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_savez
from ..batch import Batch
from ..cellmodel import _ACTIVATION_KEY, _CELL_KEY, CellModel
from ..model import RNN

__all__ = ["CheckpointError", "RunState", "checkpoint_file", "fingerprint", "write_checkpoint", "load_checkpoint",
           "CHECKPOINT_NAME"]

CHECKPOINT_FORMAT = "gradlab-train-checkpoint"
CHECKPOINT_VERSION = 1
#: The file a checkpoint folder gets.
CHECKPOINT_NAME = "checkpoint.npz"


class CheckpointError(ValueError):
    """A checkpoint does not belong to this run (other options, data or model), or cannot be read."""


# ---------------------------------------------------------------------- run state
@dataclass
class RunState:
    """Where a run is: epoch, position, counters, the RNG and this epoch's order, the history so far."""

    epoch: int = 0
    position: int = 0
    updates: int = 0
    sentences_seen: int = 0
    tokens_seen: int = 0
    order: np.ndarray | None = None
    rng: np.random.Generator | None = None
    history: list = field(default_factory=list)
    # accumulators of the current epoch
    loss_sum: float = 0.0
    n_losses: int = 0
    n_updates: int = 0
    clipped: int = 0
    seconds: float = 0.0
    # adaptive truncation: tau in force, the update of its estimate, the log of choices
    tau: int | None = None
    tau_at: int = 0
    truncation: list = field(default_factory=list)

    def reset_epoch(self) -> None:
        self.position, self.order = 0, None
        self.loss_sum, self.n_losses, self.n_updates, self.clipped, self.seconds = 0.0, 0, 0, 0, 0.0

    def to_json(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "updates": self.updates,
                "sentences_seen": self.sentences_seen, "tokens_seen": self.tokens_seen,
                "loss_sum": self.loss_sum, "n_losses": self.n_losses, "n_updates": self.n_updates,
                "clipped": self.clipped, "seconds": self.seconds, "has_order": self.order is not None,
                "rng": self.rng.bit_generator.state, "history": self.history,
                "tau": self.tau, "tau_at": self.tau_at, "truncation": self.truncation}

    @classmethod
    def from_json(cls, d: dict, order: np.ndarray) -> "RunState":
        rng = np.random.default_rng()
        rng.bit_generator.state = d["rng"]
        return cls(epoch=int(d["epoch"]), position=int(d["position"]), updates=int(d["updates"]),
                   sentences_seen=int(d["sentences_seen"]), tokens_seen=int(d["tokens_seen"]),
                   order=order if d["has_order"] else None, rng=rng, history=list(d["history"]),
                   loss_sum=float(d["loss_sum"]), n_losses=int(d["n_losses"]), n_updates=int(d["n_updates"]),
                   clipped=int(d["clipped"]), seconds=float(d["seconds"]), tau=d.get("tau"),
                   tau_at=int(d.get("tau_at", 0)), truncation=list(d.get("truncation", [])))


# ---------------------------------------------------------------------- fingerprint
def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def batch_digest(b: Batch) -> str:
    """A short hash of a batch's ids, targets and offsets."""
    return _digest(b.ids, b.targets, b.offsets)


def model_digest(model: RNN | CellModel) -> str:
    """A short hash of the model's parameters (in the cell's order) and activation (a CellModel: and cell name)."""
    kind = (model.cell.name, str(model.activation)) if isinstance(model, CellModel) else model.activation
    return _digest(*model.parameters().values(), np.array(kind))


def model_shape(model: RNN | CellModel) -> dict:
    """The model's kind and sizes; an Elman RNN has no "cell" entry (checkpoints written before cells match)."""
    shape = {"hidden_size": model.hidden_size, "vocab_size": model.vocab_size, "output_size": model.output_size}
    if isinstance(model, CellModel):
        shape["cell"] = model.cell.name
        if model.embedding_size is not None:
            shape["embedding_size"] = model.embedding_size
        if model.activation is not None:
            shape["activation"] = model.activation
        return shape
    shape["activation"] = model.activation
    if model.dtype != np.float64:  # float64 left out: checkpoints written before dtype existed still match
        shape["dtype"] = model.dtype.name
    return shape


def _kind(shape: dict) -> str:
    return f"a CellModel with cell {shape['cell']!r}" if "cell" in shape else "an Elman RNN"


def fingerprint(options: dict, batch: Batch, dev_batch: Batch | None, model: RNN | CellModel) -> dict:
    """What a checkpoint must match to be resumed: options, data, dev data, initial model and its shape."""
    return {"options": options, "data": batch_digest(batch),
            "dev": None if dev_batch is None else batch_digest(dev_batch),
            "initial_model": model_digest(model), "model_shape": model_shape(model)}


# ---------------------------------------------------------------------- files
def checkpoint_file(path) -> Path:
    """The checkpoint file of ``path``: the path itself when it ends in .npz, else ``path/checkpoint.npz``."""
    path = Path(path)
    return path if path.suffix == ".npz" else path / CHECKPOINT_NAME


def write_checkpoint(path: Path, model: RNN | CellModel, state: RunState, fingerprint: dict) -> None:
    """Write the model (as ``RNN.save`` or ``CellModel.save`` do) with the run state and this epoch's order beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "fingerprint": fingerprint,
            "state": state.to_json()}
    order = state.order if state.order is not None else np.zeros(0, dtype=np.int64)
    extra = {"trainer_state": np.array(json.dumps(meta)), "order": np.asarray(order, dtype=np.int64)}
    if isinstance(model, RNN):
        model.save(path, extra=extra)
    else:  # CellModel.save takes no extra arrays: the arrays it writes, written here with the run state
        if model.activation is not None:
            extra[_ACTIVATION_KEY] = np.array(model.activation)
        atomic_savez(path, **{_CELL_KEY: np.array(model.cell.name)}, **model.params, **extra)


def load_checkpoint(path: Path, fingerprint: dict) -> tuple[RNN | CellModel, RunState]:
    """The model and run state of a checkpoint, after checking that it belongs to the run of ``fingerprint``."""
    import zipfile
    try:
        with np.load(path, allow_pickle=False) as data:
            if "trainer_state" not in data.files:
                raise CheckpointError(f"checkpoint {path} has no trainer_state: it is not a training checkpoint "
                                      "(a model saved with RNN.save?)")
            meta = json.loads(str(data["trainer_state"]))
            order = data["order"].astype(np.int64)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc}); delete it or train with resume=False") \
            from exc
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r} version "
                              f"{meta.get('version')!r}; expected {CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION}")
    saved = meta["fingerprint"]
    if saved["model_shape"] != fingerprint["model_shape"]:
        given, kept = fingerprint["model_shape"], saved["model_shape"]
        if _kind(given) != _kind(kept):
            raise CheckpointError(f"checkpoint {path} holds {_kind(kept)} but the model given is {_kind(given)}; "
                                  "pass the model that run started from, or another checkpoint path")
        default = {"dtype": "float64"}
        diffs = [f"{k}={kept.get(k, default.get(k))!r} (model given: {given.get(k, default.get(k))!r})"
                 for k in dict.fromkeys([*given, *kept]) if kept.get(k) != given.get(k)]
        raise CheckpointError(f"checkpoint {path} holds a model with " + ", ".join(diffs)
                              + "; pass the model that run started from, or another checkpoint path")
    diffs = [f"{k}: checkpoint {saved['options'].get(k)!r}, now {v!r}"
             for k, v in fingerprint["options"].items() if saved["options"].get(k) != v]
    labels = {"data": "the training data differs", "dev": "the dev data differs",
              "initial_model": "the initial model differs (resume with the model the run started from)"}
    diffs += [msg for key, msg in labels.items() if saved.get(key) != fingerprint[key]]
    if diffs:
        raise CheckpointError(f"checkpoint {path} does not match this run: " + "; ".join(diffs)
                              + ". Use the same options and data, another checkpoint path, or resume=False")
    try:
        model = (CellModel if "cell" in saved["model_shape"] else RNN).load(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc}); delete it or train with resume=False") \
            from exc
    return model, RunState.from_json(meta["state"], order)
