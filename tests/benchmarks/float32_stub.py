"""A stand-in for the float32 API, shared by the benchmark tests."""
from __future__ import annotations

import gradlab


class RNNWithFloat32API(gradlab.RNN):
    """A stand-in for the float32 API (``init`` takes ``dtype``, ``astype`` exists) that still computes in
    float64: the benchmarks must time its float32 rows, and flag that they are not float32."""

    @classmethod
    def init(cls, *args, dtype="float64", **kwargs):
        return super().init(*args, **kwargs)

    def astype(self, dtype):
        return self
