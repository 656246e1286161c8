"""The tables a report and a training study write, and how a report folder's tables are read back.

(Moved here unchanged from the report pipeline and the training study so that the renderers
read them without importing the runners above them.)
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .html import COLUMN_DOCS

#: Frames a report writes (their columns are documented in ``html.COLUMN_DOCS``).
FRAMES = tuple(COLUMN_DOCS)
#: Frames stored gzip-compressed (``<name>.csv.gz``, deterministic bytes; pandas reads them directly).
COMPRESSED = ("gap_sentences", "dependencies")
#: Combined CSVs of a study (timings.csv aside).
TRAIN_FRAMES = ("history", "evaluation", "by_distance", "by_attractors", "snapshots_profile", "snapshots_gap",
                "snapshots_decay", "summary")


def table_name(name: str) -> str:
    """The file name of a combined table: ``<name>.csv`` or ``<name>.csv.gz``."""
    return f"{name}.csv.gz" if name in COMPRESSED else f"{name}.csv"


def load_frames(root: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """Read the combined tables of a report folder (``.csv`` or ``.csv.gz``)."""
    root = Path(root)
    out = {}
    for name in FRAMES:
        for file in (table_name(name), f"{name}.csv", f"{name}.csv.gz"):
            if (root / file).exists():
                out[name] = pd.read_csv(root / file)
                break
    return out
