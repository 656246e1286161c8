"""Analysis specs: TOML files that say which datasets, model states and settings a report uses.

Every key is checked before any work starts; messages name the key and the allowed values.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .._analyses import builtin_dir, builtin_names, builtin_spec
from ..analysis.states import TRAIN_TASKS, ModelState, parse_state
from ..schemes import parse_scheme

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Built-in specs shipped in ``analyses/`` are looked up by name too.
ANALYSES_DIR = builtin_dir()

TASKS = ("lm", "number", "agreement", "recall", "closing")


@dataclass(frozen=True)
class Spec:
    """A report's parameters (the keys of an analysis TOML file).

    Attributes
    ----------
    name : str
        Report folder name under the output root.
    title : str
    datasets : list of str
        Dataset specs (``gradlab datasets`` lists them), e.g. "agreement:distance=8".
    states : list of str
        Model states: "init:scale=S[,seed=N,activation=A]", "file:path=M.npz" or
        "train:scheme=S,epochs=E,lr=R,batch_size=B[,seed=N,at=end|mid|init]" (a model trained
        on the unit's dataset from the init state's draw; task lm or number).
    task : {"lm", "number", "agreement", "recall", "closing"}
        Every dataset must offer it (``gradlab datasets`` lists their tasks).
    hidden_size : int
    max_lag : int
        K: the vanishing profile and TBPTT(tau) for lags/taus 0..K.
    n_sentences : int, "all" or None
        Use the first n sentences of each dataset ("all" or None: all of them).
    block_schemes : list of str
        Other schemes whose gap is measured ("chunked:10", "mikolov:4,10", ...).
    floor : float
        Relative floor of the "reach" measure.
    per_sentence : bool
        Also measure the gap per sentence.
    seed : int
        Seed of the model initialisations (states may override).
    partition_size : int or None
        Analyse each dataset in partitions of this many sentences whose statistics are
        merged (memory bounded by the partition, not the corpus; quantiles of the profile
        read from log-spaced histograms). Needs ``per_sentence = false``; the report then
        has no per-dependency table (``dependency_kept`` is exact). None: in memory.
    max_memory : float or None
        GiB a unit may use (its estimated peak); None: half of this machine's RAM. A unit
        above it is refused before any work, with the estimate and the option to lower.
    """

    name: str = "default"
    title: str = "Vanishing gradients and the truncation gap"
    datasets: list = field(default_factory=lambda: ["agreement:distance=8"])
    states: list = field(default_factory=lambda: ["init"])
    task: str = "lm"
    hidden_size: int = 50
    max_lag: int = 40
    n_sentences: int | None = None
    block_schemes: list = field(default_factory=lambda: ["chunked:5", "chunked:10", "chunked:20", "mikolov:4,10"])
    floor: float = 1e-3
    per_sentence: bool = True
    seed: int = 0
    partition_size: int | None = None
    max_memory: float | None = None

    def __post_init__(self):
        if self.n_sentences == "all":
            object.__setattr__(self, "n_sentences", None)

    def model_states(self) -> list[ModelState]:
        """The states with the spec's seed filled in where a state sets none."""
        return [parse_state(s).resolved(self.seed) for s in self.states]

    def to_toml(self) -> str:
        """The spec as TOML text (written beside the report, so it can be re-run)."""
        lines = []
        for key, value in asdict(self).items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def reduced(self, n_sentences: int, max_lag: int | None = None, hidden_size: int | None = None,
                name: str | None = None) -> "Spec":
        """A smaller version for smoke runs (CI runs every spec like this), optionally under another name."""
        return replace(self, name=name or self.name, n_sentences=min(n_sentences, self.n_sentences or n_sentences),
                       max_lag=min(self.max_lag, max_lag) if max_lag is not None else self.max_lag,
                       hidden_size=hidden_size or self.hidden_size)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


_TYPES = {"name": str, "title": str, "datasets": list, "states": list, "task": str, "hidden_size": int,
          "max_lag": int, "n_sentences": int, "block_schemes": list, "floor": float, "per_sentence": bool,
          "seed": int, "partition_size": int, "max_memory": float}


_ITEM_NAMES = {str: "strings", int: "integers", float: "numbers"}


def _is(value, want) -> bool:
    """isinstance for TOML values: bools are not numbers, integers are floats."""
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, want)


def typed_values(data: dict, types: dict, item_types: dict, source: str) -> dict:
    """Check a TOML table's keys and value types; floats given as integers become floats.

    ``types`` maps each allowed key to its type; ``item_types`` gives the element type
    of each list key. Errors name ``source``, the key and what was expected.
    """
    unknown = set(data) - set(types)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}; allowed keys: {sorted(types)}")
    values = {}
    for key, value in data.items():
        want = types[key]
        if not _is(value, want):
            raise ValueError(f"{source}: key {key!r} must be of type {want.__name__}; received {value!r}")
        if want is float:
            value = float(value)
        if want is list:
            item = item_types[key]
            if not all(_is(v, item) for v in value):
                raise ValueError(f"{source}: key {key!r} must be a list of {_ITEM_NAMES[item]} ({item.__name__}); "
                                 f"received {value!r}")
            value = [float(v) for v in value] if item is float else list(value)
        values[key] = value
    return values


def spec_from_dict(data: dict, source: str = "spec") -> Spec:
    """Build and fully validate a Spec; errors name ``source``, the key and the allowed values."""
    if data.get("n_sentences") == "all":          # every sentence: the same as leaving the key out
        data = {k: v for k, v in data.items() if k != "n_sentences"}
    spec = Spec(**typed_values(data, _TYPES, {k: str for k, t in _TYPES.items() if t is list}, source))
    validate(spec, source)
    return spec


def validate(spec: Spec, source: str = "spec") -> None:
    """Check everything that can be checked without doing the work."""
    from ..data import canonical_spec, check_spec, dataset_info

    def fail(key, msg):
        raise ValueError(f"{source}: {key}: {msg}")

    if not spec.name or any(c in spec.name for c in "/\\") or spec.name.startswith("."):
        fail("name", f"must be a plain folder name; received {spec.name!r}")
    if spec.task not in TASKS:
        fail("task", f"must be one of {TASKS}; received {spec.task!r}")
    if not spec.datasets:
        fail("datasets", "needs at least one dataset spec (see `gradlab datasets`)")
    seen = {}
    for d in spec.datasets:
        try:
            name, _ = check_spec(d)
            canonical = canonical_spec(d)
        except (ValueError, TypeError, OSError) as exc:
            fail("datasets", str(exc))
        if canonical in seen:
            fail("datasets", f"{seen[canonical]!r} and {d!r} are the same dataset ({canonical}); list it once")
        seen[canonical] = d
        tasks = dataset_info(name).tasks
        if spec.task not in tasks:
            fail("task", f"dataset {d!r} offers tasks {tasks}; received task {spec.task!r}")
    if not spec.states:
        fail("states", "needs at least one model state, e.g. \"init\" or \"file:path=model.npz\"")
    labels, canonicals = {}, {}
    for s in spec.states:
        try:
            state = parse_state(s).resolved(spec.seed)
            state.check()
        except (ValueError, TypeError, OSError) as exc:
            fail("states", str(exc))
        if state.canonical in canonicals:
            fail("states", f"{canonicals[state.canonical]!r} and {s!r} are the same state ({state.canonical}); "
                           "list it once")
        canonicals[state.canonical] = s
        if state.kind == "train" and spec.task not in TRAIN_TASKS:
            fail("task", f"state {s!r} trains a model, which needs task one of {TRAIN_TASKS}; "
                         f"received task {spec.task!r}")
        if state.label in labels:
            fail("states", f"{labels[state.label]!r} and {s!r} are the same state ({state.label}); give each state "
                           "a different scale, seed or label=NAME")
        labels[state.label] = s
    if spec.hidden_size < 1:
        fail("hidden_size", f"must be >= 1; received {spec.hidden_size}")
    if spec.max_lag < 0:
        fail("max_lag", f"must be >= 0 (tau runs over 0..max_lag); received {spec.max_lag}")
    if spec.n_sentences is not None and spec.n_sentences < 1:
        fail("n_sentences", f"must be >= 1; received {spec.n_sentences} (or \"all\": every sentence)")
    if spec.partition_size is not None:
        if spec.partition_size < 1:
            fail("partition_size", f"must be an integer >= 1 (sentences per partition); received "
                                   f"{spec.partition_size}")
        if spec.per_sentence:
            fail("per_sentence", "per-sentence gaps keep a row per sentence, which partitions do not; set "
                                 "per_sentence = false with partition_size")
    for b in spec.block_schemes:
        try:
            parse_scheme(b)
        except (ValueError, TypeError) as exc:
            fail("block_schemes", str(exc))
    if not 0 < spec.floor < 1:
        fail("floor", f"must be between 0 and 1; received {spec.floor}")
    if spec.max_memory is not None and not 0 < spec.max_memory < float("inf"):
        fail("max_memory", f"must be a number of GiB > 0; received {spec.max_memory}")


def read_spec_file(path_or_name) -> tuple[Path, dict]:
    """Find a TOML spec (a path, or the name of one in ``analyses/``) and parse it.

    Returns the path and the table, with ``name`` defaulting to the file's stem.
    """
    path = Path(path_or_name)
    if not path.exists() and not path.suffix:
        candidate = builtin_spec(str(path_or_name))
        if candidate is not None:
            path = candidate
    if not path.exists():
        builtin = builtin_names()
        raise FileNotFoundError(f"analysis spec {path_or_name!r} not found; give a path to a .toml file "
                                f"or one of the built-in specs: {builtin}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    return path, data


def is_training_spec(data: dict) -> bool:
    """Training studies (``gradlab train``) name a ``train`` dataset, suites of them ``[[tasks]]``; report specs neither."""
    return "train" in data or "tasks" in data


def load_spec(path_or_name) -> Spec:
    """Read a report spec from a path, or a built-in one from ``analyses/`` by name."""
    path, data = read_spec_file(path_or_name)
    if is_training_spec(data):
        raise ValueError(f"{path} is a training study spec (it has a 'train' key); run it with "
                         f"`gradlab train {path_or_name}` or gradlab.train.study.load_train_spec")
    return spec_from_dict(data, str(path))


#: The report ``gradlab`` writes when run with no arguments: four built-in datasets,
#: from long planted dependencies to none, at the coursework size H = 50, at
#: initialisation and after two epochs of TBPTT(3) training on each dataset.
DEFAULT_SPEC = Spec(
    name="default",
    title="Vanishing gradients and the truncation gap on the built-in datasets",
    datasets=["agreement:distance=8", "recall:distance=8", "dyck", "markov"],
    states=["init", "train:scheme=tbptt:3,epochs=2,lr=0.5,batch_size=20,label=trained:tbptt:3"],
    task="lm",
    hidden_size=50,
    max_lag=40,
    n_sentences=1000,
)
