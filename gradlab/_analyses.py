"""Where the built-in analysis specs (``gradlab run NAME``) are.

In the repository they live in the top-level ``analyses/`` folder; a built wheel (or a
non-editable ``pip install .``) ships the same files as package data in ``gradlab/analyses/``
(pyproject.toml maps the package ``gradlab.analyses`` to that folder). The installed copy
is looked at first, so an install never reads an ``analyses/`` folder that merely happens
to sit beside the package; a source checkout or an editable install has no installed copy
and reads the repository's folder.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["builtin_dir", "builtin_names", "builtin_spec"]

_HERE = Path(__file__).resolve().parent
#: The specs as package data (wheel, non-editable install), then in the repository.
_CANDIDATES = (_HERE / "analyses", _HERE.parent / "analyses")


def builtin_dir() -> Path:
    """The folder that holds the built-in ``*.toml`` specs (the installed copy when there is one)."""
    for folder in _CANDIDATES:
        if folder.is_dir():
            return folder
    return _CANDIDATES[0]


def builtin_names() -> list[str]:
    """Names of the built-in specs, sorted (empty when the folder is missing)."""
    folder = builtin_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def builtin_spec(name: str) -> Path | None:
    """The built-in spec called ``name`` (without ``.toml``), or None when there is none."""
    path = builtin_dir() / f"{name}.toml"
    return path if path.is_file() else None
