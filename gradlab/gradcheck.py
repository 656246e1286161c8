"""Central finite differences of the total loss, to check gradients (ours or yours)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_int
from .batch import Batch
from .engine import forward, gradient
from .model import RNN


@dataclass(frozen=True)
class GradientCheck:
    """Analytic against numerical derivatives at sampled entries.

    Attributes
    ----------
    parameter : str array (n,); index : int array (n, 2)
        Which entries were checked.
    analytic, numeric : float64 (n,)
    abs_error, rel_error : float64 (n,)
        |analytic - numeric| and that divided by max(|analytic| + |numeric|, floor).
    """

    parameter: np.ndarray
    index: np.ndarray
    analytic: np.ndarray
    numeric: np.ndarray
    abs_error: np.ndarray
    rel_error: np.ndarray

    @property
    def max_rel_error(self) -> float:
        return float(self.rel_error.max()) if self.rel_error.size else 0.0

    @property
    def mean_rel_error(self) -> float:
        return float(self.rel_error.mean()) if self.rel_error.size else 0.0

    def to_frame(self):
        import pandas as pd
        return pd.DataFrame({"parameter": self.parameter, "row": self.index[:, 0], "col": self.index[:, 1],
                             "analytic": self.analytic, "numeric": self.numeric, "abs_error": self.abs_error,
                             "rel_error": self.rel_error})


def check_gradient(model: RNN, batch: Batch, grad=None, *, n_samples: int = 20, eps: float = 1e-6,
                   rng=None, floor: float = 1e-8) -> GradientCheck:
    """Compare a full-BPTT gradient with central differences (J(w + eps) - J(w - eps)) / 2 eps.

    Parameters
    ----------
    model : RNN
    batch : Batch
    grad : Gradient or dict of arrays, optional
        The gradient to check, one array per parameter of the model's cell (dJ/dU,
        dJ/dV, dJ/dW of the batch's total loss for the Elman cell; default:
        ``gradient(model, batch)``). Pass your own to check it.
    n_samples : int
        Entries sampled per parameter (all entries if the matrix is smaller).
    eps : float
        Step of the central difference.
    rng : int or Generator, optional
        Chooses the entries.
    floor : float
        Denominator floor of the relative error.

    Notes
    -----
    Only full BPTT is a true gradient; truncated ones are not derivatives of the loss.
    """
    if not isinstance(model, RNN):
        raise TypeError(f"model must be a gradlab.RNN; received {type(model).__name__}")
    n_samples = check_int(n_samples, "n_samples", 1)
    if not eps > 0:
        raise ValueError(f"eps must be > 0; received {eps!r}")
    grad = gradient(model, batch) if grad is None else grad
    parts = grad if isinstance(grad, dict) else grad.as_dict()
    wanted = model.cell.names
    missing = set(wanted) - set(parts)
    if missing:
        listed = ", ".join(wanted[:-1]) + " and " + wanted[-1] if len(wanted) > 1 else wanted[0]
        raise ValueError(f"grad lacks {sorted(missing)}; pass a Gradient or a dict with {listed}")
    rng = np.random.default_rng(rng)
    probe = model.copy()
    names, idx, ana, num = [], [], [], []
    for name, w in probe.parameters().items():
        g = np.asarray(parts[name], dtype=np.float64)
        if g.shape != w.shape:
            raise ValueError(f"grad[{name!r}] has shape {g.shape}; the model's {name} has {w.shape}")
        flat = rng.choice(w.size, size=min(n_samples, w.size), replace=False)
        for f in np.sort(flat):
            i, j = np.unravel_index(f, w.shape)
            old = w[i, j]
            w[i, j] = old + eps
            plus = forward(probe, batch).loss
            w[i, j] = old - eps
            minus = forward(probe, batch).loss
            w[i, j] = old
            names.append(name)
            idx.append((i, j))
            ana.append(g[i, j])
            num.append((plus - minus) / (2 * eps))
    ana = np.array(ana)
    num = np.array(num)
    err = np.abs(ana - num)
    return GradientCheck(np.array(names), np.array(idx, dtype=np.int64).reshape(-1, 2), ana, num, err,
                         err / np.maximum(np.abs(ana) + np.abs(num), floor))
