"""What report and training runners share before any work starts: unit keys, file hashes,
resource estimates, the output folder's checks and its lock.

A unit's key is the SHA-256 of everything that determines its result (canonical
dataset and model-state texts, the bytes of every file it reads, the options and
the gradlab version), so a changed input recomputes exactly the units that read it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

#: Default ``max_memory``: this share of the machine's physical memory.
MEMORY_SHARE = 0.5
#: Bytes a Python process with numpy, pandas and the compiled kernels holds before any data.
BASE_BYTES = 300 * 2**20
#: Floating-point operations per second assumed for time estimates (one core, BLAS-bound
#: products on small matrices): an order of magnitude, not a promise.
FLOPS = 2e9

_HASHES: dict[tuple, str] = {}


class PlanError(ValueError):
    """A spec that cannot run as it is; the message names the file or key and the fix."""


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (cached per path, size and modification time within a process)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def dataset_inputs(canonical: str, role: str = "dataset") -> dict[str, str]:
    """{"<role>.<parameter>": sha256} of every file a dataset spec reads (none for built-in data)."""
    from ..data import spec_files
    return {f"{role}.{name}": file_sha256(path) for name, path in spec_files(canonical).items()}


def unit_key(params: dict) -> str:
    """The content key of a unit: SHA-256 of its parameters (JSON, sorted keys), 16 hex digits."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def physical_memory() -> int:
    """Bytes of physical memory of this machine."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 2**30


def memory_limit(max_memory_gb: float | None) -> tuple[int, str]:
    """(bytes, how it was chosen) of the memory a unit may use."""
    if max_memory_gb is not None:
        return int(max_memory_gb * 2**30), f"max_memory = {max_memory_gb:g} GiB"
    total = physical_memory()
    return int(total * MEMORY_SHARE), (f"max_memory default: {MEMORY_SHARE:.0%} of this machine's "
                                       f"{fmt_bytes(total)} RAM")


def fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**10:.0f} KiB"


def fmt_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


@dataclass(frozen=True)
class Estimate:
    """Peak memory (bytes) and time (seconds) of one unit, from its sizes."""

    memory: int
    seconds: float


def estimate_analysis(*, n_tokens: int, n_losses: int, n_sentences: int, max_lag: int, hidden_size: int,
                      vocab_size: int, output_size: int, n_dependencies: int = 0, per_sentence: bool = True,
                      n_schemes: int = 0) -> Estimate:
    """Peak memory and time of :func:`gradlab.analysis.analyse` on a batch of these sizes.

    Memory: the states and signals of every token (O(N H)), the per-(loss, lag) rows of
    the contributions and their tables (O(n_losses K)), the per-lag sums
    (O(K H (H + |V|))) and the per-sentence gaps (O(n K)); the dependency signal adds
    O(N H + n_dependencies H), whatever the distances. The constants were measured on
    the benchmark in ``benchmarks/bench_memory.py`` and err on the high side.
    """
    N, L, n, K, H = n_tokens, n_losses, n_sentences, max_lag, hidden_size
    pairs = L * (K + 1)
    words = (10 * N                          # ids, targets, offsets, positions, the dataset's own arrays
             + (3 * N + 5 * L) * H           # states, f', dJ/ds, the moving signals and their sources
             + 24 * pairs                    # per-pair arrays and the tables built from them
             + 3 * (K + 1) * H * (H + vocab_size)
             + (60 * n * (K + 1) if per_sentence else 0)
             + 4 * n_dependencies * H
             + 64 * output_size)
    memory = BASE_BYTES + 8 * words
    passes = 3 + n_schemes + (1 if per_sentence else 0) + (1 if n_dependencies else 0)
    flops = passes * (2 * N * H * H + 4 * L * output_size * H) + (8 if per_sentence else 4) * pairs * H * H
    return Estimate(int(memory), flops / FLOPS)


def estimate_training(*, n_tokens: int, n_sentences: int, hidden_size: int, vocab_size: int, output_size: int,
                      epochs: int, n_eval_tokens: int = 0) -> Estimate:
    """Peak memory and time of training one model for ``epochs`` epochs (forward, backward, evaluation)."""
    N, H = n_tokens + n_eval_tokens, hidden_size
    words = 10 * N + 6 * N * H + 3 * H * (H + vocab_size + output_size)
    flops = (epochs + 1) * 3 * (2 * N * H * H + 4 * N * output_size * H)
    return Estimate(BASE_BYTES + 8 * words, flops / FLOPS)


def describe(root: Path, limit: tuple, rows: list, what: str = "unit", extra: str = "") -> str:
    """The text of a plan: one line per (status, name, sizes, Estimate) row, after a header."""
    lines = [f"plan for {root}: {len(rows)} {what}(s){extra}; memory limit {fmt_bytes(limit[0])} ({limit[1]})"]
    for status, name, sizes, est in rows:
        lines.append(f"  {status:7s} {name}: {sizes + '; ' if sizes else ''}estimated peak memory "
                     f"{fmt_bytes(est.memory)}, time {fmt_seconds(est.seconds)}")
    return "\n".join(lines)


def check_memory(what: str, estimate: Estimate, limit: tuple[int, str], fix: str) -> None:
    """Refuse a unit whose estimated peak memory is above the limit, naming the estimate and ``fix``."""
    allowed, how = limit
    if estimate.memory > allowed:
        raise PlanError(f"{what}: estimated peak memory {fmt_bytes(estimate.memory)} is above the limit "
                        f"{fmt_bytes(allowed)} ({how}); {fix}, or raise max_memory (GiB) in the spec")


def _may_write(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def check_writable(root: Path) -> None:
    """Fail unless ``root`` (a report folder) can be created or written; creates nothing.

    Checks the folder itself when it exists, else its nearest existing parent: it must be
    a folder, and one this process may write into.
    """
    root = Path(root)
    for folder in [root, *root.parents]:
        if folder.exists():
            break
    if not folder.is_dir():
        raise PlanError(f"output folder {root}: {folder} is a file, not a folder; choose another --out")
    if not _may_write(folder):
        raise PlanError(f"output folder {root}: {folder} is not writable (permission denied); choose another "
                        "--out or fix its permissions")


def _remove_temporaries(root: Path) -> None:
    """Delete the temporary files (``.NAME.*.tmp``) that a killed run left behind: with the lock held,
    no live writer owns them."""
    for path in root.rglob(".*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def output_lock(root: Path, *, wait: bool = False):
    """Hold ``root/.lock`` while a run writes into ``root``.

    A second run on the same folder stops with an error naming the first one's pid,
    or, with ``wait``, waits until it finishes. The lock is an OS file lock
    (``filelock``): it is released when the holder exits, even after ``kill -9``; the
    temporary files such a run left behind are removed once the lock is held.
    """
    from filelock import FileLock, Timeout
    lock = FileLock(str(root / ".lock"))
    owner = root / ".lock.pid"
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        try:
            pid = owner.read_text().strip()
        except OSError:
            pid = "?"
        raise PlanError(f"output folder {root} is in use by another gradlab run (pid {pid}); wait for it to "
                        "finish (or rerun with --wait), or choose another --out") from None
    try:
        owner.write_text(str(os.getpid()))
        _remove_temporaries(root)
        yield
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()
