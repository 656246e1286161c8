"""Atomic file writes, shared by models, checkpoints and reports.

A reader (or a resumed run) sees either the old file or the new one, never a
partial one: data goes to a temporary file in the same folder, is flushed to
disk, and replaces the target with ``os.replace``.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

_FILE_MODE: int | None = None


def _file_mode() -> int:
    """rw-r--r-- less the process umask: what open() would give (mkstemp gives rw-------)."""
    global _FILE_MODE
    if _FILE_MODE is None:
        umask = os.umask(0o022)
        os.umask(umask)
        _FILE_MODE = 0o666 & ~umask
    return _FILE_MODE


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` (creating its folder) through a temporary file and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_savez(path: str | os.PathLike, **arrays) -> Path:
    """``numpy.savez`` to ``path``, atomically."""
    import numpy as np
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write(path, buffer.getvalue())
