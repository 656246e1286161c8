"""Central finite differences of the total loss, to check gradients (ours or yours)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import cell_engine
from ._validate import check_int
from .batch import Batch
from .cellmodel import CellModel
from .engine import forward, gradient
from .model import RNN


@dataclass(frozen=True)
class GradientCheck:
    """Analytic against numerical derivatives at sampled entries.

    Attributes
    ----------
    parameter : str array (n,); index : int array (n, 2)
        Which entries were checked: (row, column); a vector parameter (a bias, a linear
        recurrence's lambda) is read as a column, so its entries have column 0.
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


def check_gradient(model: RNN | CellModel, batch: Batch, grad=None, *, n_samples: int = 20, eps: float = 1e-6,
                   rng=None, floor: float = 1e-8) -> GradientCheck:
    """Compare a full-BPTT gradient with central differences (J(w + eps) - J(w - eps)) / 2 eps.

    Parameters
    ----------
    model : RNN or CellModel
        An Elman RNN, or a GRU, LSTM, linear-recurrence or stacked model
        (:class:`gradlab.cellmodel.CellModel`; the loss and the default gradient then come
        from :mod:`gradlab.cell_engine`).
    batch : Batch
    grad : Gradient or dict of arrays, optional
        The gradient to check, one array per parameter of the model's cell, keyed by the
        cell's names (dJ/dU, dJ/dV, dJ/dW of the batch's total loss for the Elman cell;
        ``model.cell.names`` of a CellModel, e.g. weight_hh_l0, not PyTorch's "rnn."
        names; default: the engine's full-BPTT gradient). Pass your own to check it.
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
    A float32 RNN's gradient (computed in float32 by default) is compared with the
    differences of the model converted to float64: differences of float32 losses are
    rounding noise at any useful eps. Expect relative errors near 1e-4 then, not 1e-7.
    """
    cells = isinstance(model, CellModel)
    if not (cells or isinstance(model, RNN)):
        raise TypeError(f"model must be a gradlab.RNN or a gradlab.cellmodel.CellModel; "
                        f"received {type(model).__name__}")
    n_samples = check_int(n_samples, "n_samples", 1)
    if not eps > 0:
        raise ValueError(f"eps must be > 0; received {eps!r}")
    loss_of = (lambda m: cell_engine.forward(m, batch).loss) if cells else (lambda m: forward(m, batch).loss)
    if grad is None:
        grad = cell_engine.gradient(model, batch) if cells else gradient(model, batch)
    parts = grad if isinstance(grad, dict) else grad.as_dict()
    wanted = model.cell.names
    missing = set(wanted) - set(parts)
    if missing:
        listed = ", ".join(wanted[:-1]) + " and " + wanted[-1] if len(wanted) > 1 else wanted[0]
        hint = ""
        if cells and any("." in str(k) for k in parts):
            hint = " (keys are the cell's names, not PyTorch's: use as_dict() without torch_names)"
        raise ValueError(f"grad lacks {sorted(missing)}; pass a Gradient or a dict with {listed}{hint}")
    if cells:
        unexpected = sorted(set(parts) - set(wanted))
        if unexpected:
            raise ValueError(f"grad has entries {unexpected} that are no parameters of a {model.cell.name} "
                             f"model; its parameters are {', '.join(wanted)}")
    rng = np.random.default_rng(rng)
    probe = model.copy() if cells else model.astype(np.float64)
    names, idx, ana, num = [], [], [], []
    for name, w in probe.parameters().items():
        g = np.asarray(parts[name], dtype=np.float64)
        if g.shape != w.shape:
            raise ValueError(f"grad[{name!r}] has shape {g.shape}; the model's {name} has {w.shape}")
        flat = rng.choice(w.size, size=min(n_samples, w.size), replace=False)
        for f in np.sort(flat):
            at = np.unravel_index(f, w.shape)
            old = w[at]
            w[at] = old + eps
            plus = loss_of(probe)
            w[at] = old - eps
            minus = loss_of(probe)
            w[at] = old
            names.append(name)
            idx.append((int(at[0]), int(at[1]) if len(at) > 1 else 0))
            ana.append(g[at])
            num.append((plus - minus) / (2 * eps))
    ana = np.array(ana)
    num = np.array(num)
    err = np.abs(ana - num)
    return GradientCheck(np.array(names), np.array(idx, dtype=np.int64).reshape(-1, 2), ana, num, err,
                         err / np.maximum(np.abs(ana) + np.abs(num), floor))
