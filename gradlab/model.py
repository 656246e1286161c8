"""The Elman RNN (docs/maths.md): U (H x H), V (H x |V|), W (|O| x H).

    net_in(t) = V[:, x(t)] + U s(t-1),   s(t) = f(net_in(t)),   y(t) = softmax(W s(t))

with the zero initial state s(-1) = 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import atomic_savez
from ._validate import as_float_matrix, check_dtype, check_int
from .cells import ACTIVATIONS as _ACTIVATIONS, ELMAN, activation as _activation

#: Hidden activations and their kernel codes (the activations themselves: ``gradlab.cells.ACTIVATIONS``).
ACTIVATIONS = {name: a.code for name, a in _ACTIVATIONS.items()}

#: How RNN.init makes the recurrent matrix U.
RECURRENT_INITS = ("normal", "orthogonal", "identity")
#: The coursework initialises every matrix with N(0, 0.1): standard deviation sqrt(0.1).
DEFAULT_SCALE = float(np.sqrt(0.1))


def activation_code(name: str) -> int:
    """Return the kernel code of a hidden activation, with a clear error for unknown names."""
    return _activation(name).code


@dataclass(eq=False, init=False)
class RNN:
    """Parameters of an Elman RNN.

    Parameters
    ----------
    U : float array, shape (H, H)
        Recurrent weights.
    V : float array, shape (H, n_vocab)
        Input weights; column j is the embedding of word j.
    W : float array, shape (n_out, H)
        Output weights.
    activation : {"sigmoid", "tanh", "relu", "identity"}
        Hidden activation f.
    dtype : {None, "float64", "float32"} or numpy float type, keyword only
        The type every parameter is stored in and every engine function computes in.
        None (the default) is float64 whatever the arrays' type (float32 arrays are
        widened, never the reverse); float32 must be asked for, and converts.

    The arrays are public and may be written in place (``model.U[...] = ...``);
    they are validated each time the model enters an engine function (all three
    float32 or all three float64).
    Code that loops over parameters uses :meth:`parameters` (names from :attr:`cell`).
    """

    U: np.ndarray
    V: np.ndarray
    W: np.ndarray
    activation: str = "sigmoid"

    #: The cell: parameter names, shapes and roles (``gradlab.cells``).
    cell = ELMAN

    def __init__(self, U, V, W, activation: str = "sigmoid", *, dtype=None):
        dt = np.dtype(np.float64) if dtype is None else check_dtype(dtype)
        self.activation = activation
        activation_code(activation)
        for name, value in zip(self.cell.names, (U, V, W)):
            arr = np.asarray(value)
            if arr.dtype.kind in "fiu" and arr.dtype != np.bool_:  # anything else: validate() names it
                arr = np.ascontiguousarray(arr, dtype=dt)
            setattr(self, name, arr)
        self.validate()

    @property
    def dtype(self) -> np.dtype:
        """The floating-point type of the parameters (float64 or float32)."""
        return np.asarray(getattr(self, self.cell.names[0])).dtype

    def astype(self, dtype) -> "RNN":
        """A copy of the model with every parameter converted to ``dtype`` ("float32" or "float64")."""
        dt = check_dtype(dtype)
        return self.from_parameters({n: a.astype(dt) for n, a in self.parameters().items()}, self.activation,
                                    dtype=dt)

    def parameters(self) -> dict[str, np.ndarray]:
        """The parameter arrays by name, in the cell's order (the arrays themselves, not copies)."""
        return {name: getattr(self, name) for name in self.cell.names}

    @classmethod
    def from_parameters(cls, parameters, activation: str = "sigmoid", *, dtype=None) -> "RNN":
        """A model from ``{name: array}`` (every name of the cell; extra names are an error); ``dtype`` as in
        the constructor."""
        names = cls.cell.names
        missing = [n for n in names if n not in parameters]
        extra = [n for n in parameters if n not in names]
        if missing or extra:
            raise ValueError(f"parameters must be exactly {names}; missing {missing}, unexpected {extra}")
        return cls(**{n: parameters[n] for n in names}, activation=activation, dtype=dtype)

    @property
    def activation_function(self):
        """The :class:`gradlab.cells.Activation` of this model."""
        return _activation(self.activation)

    def _size(self, dim: str) -> int:
        """The size of ``dim`` ("vocab", "hidden", "output"), from the first parameter that has it."""
        for p in self.cell.parameters:
            if dim in p.shape:
                return getattr(self, p.name).shape[p.shape.index(dim)]
        raise ValueError(f"cell {self.cell.name!r} has no parameter with a {dim!r} dimension")

    @property
    def hidden_size(self) -> int:
        return self._size("hidden")

    @property
    def vocab_size(self) -> int:
        return self._size("vocab")

    @property
    def output_size(self) -> int:
        return self._size("output")

    @classmethod
    def init(cls, vocab_size: int, hidden_size: int, output_size: int | None = None, *,
             rng=None, scale: float = DEFAULT_SCALE, activation: str = "sigmoid", recurrent: str = "normal",
             gain: float = 1.0, dtype="float64") -> "RNN":
        """Draw U, V, W from N(0, scale^2), in that order, from ``rng``.

        Parameters
        ----------
        vocab_size, hidden_size : int
            |V| and H.
        output_size : int, optional
            |O|; defaults to ``vocab_size`` (language modelling).
        rng : int, numpy.random.Generator or None
            Seed or generator. Two calls with the same seed give the same model.
        scale : float
            Standard deviation of every weight (the coursework's sqrt(0.1) by default).
        activation : {"sigmoid", "tanh", "relu", "identity"}
        recurrent : {"normal", "orthogonal", "identity"}, default "normal"
            How U is made. "normal": N(0, scale^2) like V and W. "orthogonal": ``gain``
            times the orthogonal factor Q of the QR decomposition of U's Gaussian draw,
            with the signs that make R's diagonal positive (a uniformly distributed
            orthogonal matrix; Saxe et al. 2014). "identity": ``gain`` times I (Le, Jaitly
            & Hinton 2015). U's draw is taken in every case, so V and W are the same draws
            whatever ``recurrent`` is.
        gain : float >= 0, default 1
            Scale of an orthogonal or identity U (its singular values all equal ``gain``);
            ignored for "normal".
        dtype : {"float64", "float32"} or numpy float type, default "float64"
            The model's type. The draws are made in float64 and rounded, so a float32
            model is the float64 model of the same seed, rounded.
        """
        dtype = check_dtype(dtype)
        vocab_size = check_int(vocab_size, "vocab_size", 1)
        hidden_size = check_int(hidden_size, "hidden_size", 1)
        output_size = vocab_size if output_size is None else check_int(output_size, "output_size", 1)
        if not np.isfinite(scale) or scale < 0:
            raise ValueError(f"scale must be a finite number >= 0; received {scale!r}")
        if recurrent not in RECURRENT_INITS:
            raise ValueError(f"recurrent must be one of {RECURRENT_INITS}; received {recurrent!r}")
        if isinstance(gain, bool) or not isinstance(gain, (int, float, np.integer, np.floating)) \
                or not np.isfinite(gain) or gain < 0:
            raise ValueError(f"gain must be a finite number >= 0; received {gain!r}")
        rng = np.random.default_rng(rng)
        parameters = {}
        # every parameter is drawn, in the cell's order, whatever ``recurrent`` is
        for name, shape in cls.cell.shapes(vocab_size, hidden_size, output_size).items():
            G = rng.standard_normal(shape)
            if cls.cell.parameter(name).role != "recurrent" or recurrent == "normal":
                parameters[name] = G * scale
            elif recurrent == "orthogonal":
                Q, R = np.linalg.qr(G)
                parameters[name] = Q * np.where(np.diag(R) < 0, -1.0, 1.0) * float(gain)
            else:
                parameters[name] = np.eye(hidden_size) * float(gain)
        return cls.from_parameters(parameters, activation, dtype=dtype)

    def validate(self) -> None:
        """Check shapes, dtypes and finiteness of every parameter (U, V, W; raises naming the bad matrix).

        H comes from the first recurrent parameter, which must be square; the others
        must have H where their cell shape says "hidden". Every parameter must be
        float32 or float64, all of the same type.
        """
        first = self.cell.with_role("recurrent")[0]
        R = as_float_matrix(getattr(self, first), first, dtype=None)
        H = R.shape[0]
        if R.shape != (H, H):
            raise ValueError(f"{first} must be square (H x H); received shape {R.shape}")
        for p in self.cell.parameters:
            if p.name != first:
                as_float_matrix(getattr(self, p.name), p.name, tuple(H if d == "hidden" else None for d in p.shape),
                                dtype=None)
        dtypes = {name: np.asarray(a).dtype for name, a in self.parameters().items()}
        for name, dt in dtypes.items():
            if dt.name not in ("float32", "float64"):
                raise TypeError(f"{name} has dtype {dt}; a model's parameters are float32 or float64 "
                                f"(convert with model.astype or RNN(..., dtype=))")
        if len(set(dtypes.values())) > 1:
            listed = ", ".join(f"{n} {dt}" for n, dt in dtypes.items())
            raise TypeError(f"the parameters must share one dtype; received {listed} "
                            f"(convert with model.astype(dtype))")

    def copy(self) -> "RNN":
        return self.from_parameters({n: a.copy() for n, a in self.parameters().items()}, self.activation,
                                    dtype=self.dtype)

    def save(self, path: str | os.PathLike, *, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Write the model to an ``.npz`` file atomically and return its path.

        ``extra`` arrays (names other than the parameters' and "activation") are stored
        beside the model, in the same file; :meth:`load` ignores them (training
        checkpoints keep the run state there).
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        arrays = {**self.parameters(), "activation": np.array(self.activation)}
        clash = sorted(set(arrays) & set(extra or {}))
        if clash:
            raise ValueError(f"extra arrays may not be named {clash}: the model's own arrays have those names")
        return atomic_savez(path, **arrays, **(extra or {}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RNN":
        """Read a model written by :meth:`save`; errors name the file and what is wrong.

        A file whose parameters are all float32 gives a float32 model; any other a float64 one.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"model file {path} does not exist")
        import zipfile
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"model file {path} is not a readable .npz file ({exc}); "
                             "write models with RNN.save") from exc
        names = cls.cell.names
        listed = ", ".join(names)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"model file {path} holds a single array, not an .npz archive with {listed}; "
                             "write models with RNN.save")
        try:
            with data:
                missing = set(names) - set(data.files)
                if missing:
                    raise ValueError(f"model file {path} lacks array(s) {sorted(missing)}; "
                                     f"expected {listed} and activation as written by RNN.save")
                activation = str(data["activation"]) if "activation" in data.files else "sigmoid"
                parameters = {n: data[n] for n in names}
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"model file {path} is damaged ({exc}); write models with RNN.save") from exc
        f32 = all(np.asarray(a).dtype == np.float32 for a in parameters.values())
        try:
            return cls.from_parameters(parameters, activation, dtype=np.float32 if f32 else None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"model file {path}: {exc}") from exc
