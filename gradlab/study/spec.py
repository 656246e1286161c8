"""Specs of the study layer: the TOML files that say what a report, a training study or a suite of
studies computes.

One base (:class:`StudySpec`) reads a TOML file or a built-in spec by name, checks every key's
type with messages that name the key, writes the spec back as TOML and gives a reduced
variant for smoke runs; its kinds are :class:`ReportSpec` (``gradlab run``: datasets x model
states), :class:`TrainSpec` (``gradlab train``: a grid of training runs) and :class:`Suite`
(studies per task and distance distribution). :func:`spec_kind` is the one place that decides
which kind a TOML table is; :func:`load` reads any of them.

Every key is checked before any work starts; messages name the key and the allowed values.
"""
from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .._analyses import builtin_dir
from ..analysis.states import ModelState, parse_state
from ..data.dataset import TASK_DESCRIPTIONS
from ..model import DEFAULT_SCALE
from ..schemes import parse_scheme
from ..train.tasks import TRAIN_TASKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Built-in specs shipped in ``analyses/`` are looked up by name too (see :func:`builtin_specs`).
ANALYSES_DIR = builtin_dir()

#: Tasks a report can analyse: every task a dataset can describe.
TASKS = tuple(TASK_DESCRIPTIONS)
#: How the training data's dependency distances are spread (``distribution``): as the ``train`` spec
#: gives them; uniform on min_distance..distance; or that uniform data in a curriculum, short to long.
DISTRIBUTIONS = ("fixed", "uniform", "curriculum")
#: Distance distributions of a suite and the TrainSpec distribution each becomes.
SUITE_DISTRIBUTIONS = {"longest": "fixed", "uniform": "uniform", "curriculum": "curriculum"}
#: The kinds of spec, as :func:`spec_kind` names them.
KINDS = ("report", "train", "suite")


# ---------------------------------------------------------------------- reading and writing TOML
def builtin_specs() -> dict[str, Path]:
    """{name: file} of the built-in specs (the one place that knows where they are)."""
    return {p.stem: p for p in sorted(ANALYSES_DIR.glob("*.toml"))} if ANALYSES_DIR.exists() else {}


def read_spec_file(path_or_name) -> tuple[Path, dict]:
    """Find a TOML spec (a path, or the name of a built-in one) and parse it.

    Returns the path and the table, with ``name`` defaulting to the file's stem.
    """
    path = Path(path_or_name)
    if not path.exists() and not path.suffix:
        path = builtin_specs().get(str(path_or_name), path)
    if not path.exists():
        raise FileNotFoundError(f"analysis spec {path_or_name!r} not found; give a path to a .toml file "
                                f"or one of the built-in specs: {sorted(builtin_specs())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    return path, data


def spec_kind(data: dict) -> str:
    """The kind of a spec's TOML table: "suite" (it lists ``[[tasks]]``), "train" (it names a ``train``
    dataset) or "report" (neither)."""
    if "tasks" in data:
        return "suite"
    if "train" in data:
        return "train"
    return "report"


def is_training_spec(data: dict) -> bool:
    """Training studies (``gradlab train``) name a ``train`` dataset, suites of them ``[[tasks]]``; report specs
    neither."""
    return spec_kind(data) != "report"


def is_suite_spec(data: dict) -> bool:
    """Suites list their parts in ``[[tasks]]`` tables."""
    return spec_kind(data) == "suite"


def toml_value(value) -> str:
    """One TOML value as text (the values a spec holds: bools, numbers, strings and lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


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

    ``types`` maps each allowed key to its type (or a tuple of types it may have); ``item_types`` gives
    the element type of each list key. Errors name ``source``, the key and what was expected.
    """
    unknown = set(data) - set(types)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}; allowed keys: {sorted(types)}")
    values = {}
    for key, value in data.items():
        want = types[key]
        if isinstance(want, tuple):      # several types (cell: a string or a list of strings): the one it is
            choices = want
            want = next((t for t in choices if _is(value, t)), None)
            if want is None:
                raise ValueError(f"{source}: key {key!r} must be of type "
                                 f"{' or '.join(t.__name__ for t in choices)}; received {value!r}")
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


# ---------------------------------------------------------------------- option validators
def _failer(source: str):
    def fail(key, msg):
        raise ValueError(f"{source}: {key}: {msg}")
    return fail


def check_name(name, fail) -> None:
    """A spec's name is the folder its outputs go to."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        fail("name", f"must be a plain folder name; received {name!r}")


def check_max_memory(max_memory, fail) -> None:
    if max_memory is not None and not 0 < max_memory < float("inf"):
        fail("max_memory", f"must be a number of GiB > 0; received {max_memory}")


def check_scheme(key: str, text: str, fail, hint: str = "") -> None:
    """A truncation scheme's text (:func:`gradlab.schemes.parse_scheme`)."""
    try:
        parse_scheme(text)
    except (ValueError, TypeError) as exc:
        fail(key, f"{exc}{hint}")


def check_finite(key: str, value, fail, *, positive: bool = False, what: str = "") -> None:
    """A finite number > 0 (``positive``) or >= 0."""
    if not math.isfinite(value) or (value <= 0 if positive else value < 0):
        fail(key, f"must be a finite number {'>' if positive else '>='} 0{what}; received {value}")


def check_dataset_task(key: str, text: str, task: str, fail, *, what: str = "dataset") -> tuple:
    """A dataset spec that parses and offers ``task``; returns (registered name, the tasks it offers)."""
    from ..data import check_spec, dataset_info
    try:
        name, _ = check_spec(text)
    except (ValueError, TypeError, OSError) as exc:
        fail(key, str(exc))
    tasks = dataset_info(name).tasks
    if task not in tasks:
        fail("task", f"{what} {text!r} offers tasks {tasks}; received task {task!r}")
    return name, tasks


#: Standard agreement test sets a training spec's ``agreement_sets`` can name, with the parameters each takes.
AGREEMENT_SETS = {"linzen_testset": ("path", "gold", "lowercase"), "gulordava": ("path", "lowercase")}


def parse_agreement_set(text: str) -> dict:
    """``"NAME:path=P[,gold=G][,lowercase=true|false]"`` -> {"name", "path", "gold", "lowercase"}.

    NAME is ``linzen_testset`` (Linzen et al.'s ``subj_agr_filtered.text``; ``gold`` defaults to
    the ``.gold`` file beside it) or ``gulordava`` (Gulordava et al.'s English ``generated.tab``);
    ``lowercase`` (default false) lower-cases the words before the vocabulary lookup. Raises
    ValueError naming what is wrong; does not read the files.
    """
    if not isinstance(text, str):
        raise ValueError(f"must be a string NAME:path=FILE; received {text!r}")
    name, _, rest = text.partition(":")
    name = name.strip()
    if name not in AGREEMENT_SETS:
        raise ValueError(f"test set {name!r} is not one of {tuple(AGREEMENT_SETS)} (in {text!r}; e.g. "
                         "'linzen_testset:path=subj_agr_filtered.text' or 'gulordava:path=generated.tab')")
    out = {"name": name, "path": None, "gold": None, "lowercase": False}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise ValueError(f"{item!r} in {text!r} is not KEY=VALUE")
        if key not in AGREEMENT_SETS[name]:
            raise ValueError(f"{name} takes parameters {AGREEMENT_SETS[name]}; received {key!r} in {text!r}")
        if key == "lowercase":
            if value.lower() not in ("true", "false"):
                raise ValueError(f"lowercase must be true or false; received {value!r} in {text!r}")
            out[key] = value.lower() == "true"
        else:
            out[key] = value
    if out["path"] is None:
        raise ValueError(f"{text!r} needs path=FILE")
    return out


def check_dtype(dtype, fail) -> None:
    """The ``dtype`` key: "float64" (the default) or "float32" (:class:`gradlab.RNN`'s dtype)."""
    from .._validate import DTYPES
    if dtype not in DTYPES:
        fail("dtype", f"must be one of {DTYPES}; received {dtype!r} (float32 trains and analyses at about "
                      "7 significant digits, float64 at 16)")


#: The cell of the default ``cell`` key: today's Elman :class:`gradlab.RNN` (one-hot, no biases).
DEFAULT_CELL = "elman"


def spec_cells() -> tuple:
    """The values of a spec's ``cell`` key: "elman" (:class:`gradlab.RNN`) and every registered
    :class:`gradlab.CellModel` cell (one-hot input; "gru", "lstm", "linear", ...)."""
    from ..cellmodel import CELL_NAMES
    return (DEFAULT_CELL,) + tuple(c for c in CELL_NAMES if "-" not in c)


def cell_list(cell) -> list:
    """The ``cell`` key as a list of cell names (a string is one cell)."""
    return [cell] if isinstance(cell, str) else list(cell)


def check_cells(cell, num_layers: int, dtype: str, fail) -> None:
    """The ``cell`` and ``num_layers`` keys: known cells, each once; ``num_layers`` >= 1 and 1 for the
    Elman cell; float32 (``dtype``) for the Elman cell only."""
    cells, allowed = cell_list(cell), spec_cells()
    if not cells:
        fail("cell", f"needs at least one cell, one of {allowed}")
    for c in cells:
        if c not in allowed:
            fail("cell", f"must be one of {allowed} (or a list of them); received {c!r}")
    if len(set(cells)) != len(cells):
        fail("cell", f"values must be unique; received {cells}")
    if num_layers < 1:
        fail("num_layers", f"must be an integer >= 1; received {num_layers}")
    if num_layers > 1 and DEFAULT_CELL in cells:
        fail("num_layers", f"the Elman cell (cell = {DEFAULT_CELL!r}, gradlab.RNN) has one layer; received "
                           f"num_layers = {num_layers} with cell = {cell!r} (stack \"gru\", \"lstm\" or \"linear\")")
    if dtype != "float64" and cells != [DEFAULT_CELL]:
        fail("dtype", f"{dtype} is for the Elman cell only (gradlab.RNN); the other cells run in float64: "
                      f"leave dtype out or set cell = {DEFAULT_CELL!r} (received cell = {cell!r})")


def check_agreement_sets(values: list, task: str, fail) -> None:
    """A training spec's ``agreement_sets``: task lm, each entry parses, names existing files, and is listed once."""
    key = "agreement_sets"
    if task != "lm":
        fail(key, f"evaluates language models: needs task 'lm'; received task {task!r} (leave agreement_sets out)")
    seen = set()
    for text in values:
        try:
            parsed = parse_agreement_set(text)
        except ValueError as exc:
            fail(key, str(exc))
        if parsed["name"] in seen:
            fail(key, f"test set {parsed['name']!r} is listed twice; list each set once")
        seen.add(parsed["name"])
        files = [parsed["path"]] + ([parsed["gold"]] if parsed["gold"] else
                                    [str(Path(parsed["path"]).with_suffix(".gold"))]
                                    if parsed["name"] == "linzen_testset" else [])
        for f in files:
            if not Path(f).is_file():
                fail(key, f"{text!r}: file {f!r} does not exist")


# ---------------------------------------------------------------------- the base
class StudySpec:
    """What every kind of spec has: a name (its output folder), a title, TOML text and a smoke variant.

    Subclasses are frozen dataclasses whose fields are the keys of their TOML file; ``KIND``
    is what :func:`spec_kind` calls their tables.
    """

    KIND = ""
    #: Key -> type of every key of the TOML file, and the item type of each list key.
    TYPES: dict = {}
    ITEM_TYPES: dict = {}
    #: Keys left out of every record of the spec (TOML, manifest, unit and run keys) while they hold this
    #: value, so that specs written before the key existed keep their records and keys byte for byte.
    UNRECORDED_DEFAULTS: dict = {"dtype": "float64", "cell": DEFAULT_CELL, "num_layers": 1}

    @classmethod
    def from_dict(cls, data: dict, source: str = "spec"):
        """Build and fully validate a spec from its TOML table; errors name ``source``, the key and the allowed
        values."""
        spec = cls(**typed_values(data, cls.TYPES, cls.ITEM_TYPES, source))
        spec.validate(source)
        return spec

    def validate(self, source: str = "spec") -> None:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    @property
    def cells(self) -> list:
        """The spec's cells (its ``cell`` key as a list)."""
        return cell_list(self.cell)

    @property
    def has_cells(self) -> bool:
        """Whether the spec names a cell other than the default Elman one (or several): its tables then
        have a ``cell`` column and its records the ``cell`` key."""
        return self.cells != [DEFAULT_CELL] or self.num_layers != 1

    def recorded(self) -> dict:
        """The spec's keys and values as its records hold them (``asdict`` less :attr:`UNRECORDED_DEFAULTS`)."""
        return {k: v for k, v in asdict(self).items()
                if not (k in self.UNRECORDED_DEFAULTS and v == self.UNRECORDED_DEFAULTS[k])}

    def to_toml(self) -> str:
        """The spec as TOML text (written beside its outputs, so it can be re-run)."""
        return "".join(f"{k} = {toml_value(v)}\n" for k, v in self.recorded().items() if v is not None)

    def quick(self):  # pragma: no cover - every kind overrides it
        """A reduced version for smoke runs (same name)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ReportSpec(StudySpec):
    """A report's parameters (the keys of an analysis TOML file).

    Attributes
    ----------
    name : str
        Report folder name under the output root.
    title : str
    datasets : list of str
        Dataset specs (``gradlab datasets`` lists them), e.g. "agreement:distance=8".
    states : list of str
        Model states: "init:scale=S[,seed=N,activation=A]", "file:path=M.npz" (``RNN.save`` or
        ``CellModel.save``) or
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
    dtype : {"float64", "float32"}
        The type the models are drawn, trained and analysed in (``gradlab.RNN``'s dtype;
        "file" models are converted). float64 by default: the report shows relative
        errors down to 1e-14, which float32 (about 1e-7) cannot. float32 is for the Elman
        cell only.
    cell : str or list of str
        The recurrent cell: "elman" (the default: :class:`gradlab.RNN`, one-hot input, no
        biases), or a :class:`gradlab.CellModel` cell, "rnn" (PyTorch's nn.RNN: Elman with
        biases), "gru", "lstm", "linear" (PyTorch's equations and parameter names, one-hot
        input; :func:`spec_cells` lists them). A list
        compares cells: every dataset x state is analysed for each, and every table gets a
        ``cell`` column (as soon as the spec names any cell but "elman"); every figure shows
        the cells side by side. For the cells other than Elman, an "init" state is PyTorch's
        initialisation (uniform(-1/sqrt(H), 1/sqrt(H)); lambda of "linear" uniform(0, 1))
        with every array multiplied by ``scale / sqrt(0.1)`` (the default scale gives PyTorch's
        draw; ``activation`` applies to the Elman and rnn cells only); a "file" state holds a model of
        one cell (``CellModel.save`` or ``RNN.save``) and is analysed for that cell only; the
        Elman recurrence's statistics (spectral radius, sigma_max, mean f', growth bound) are
        NaN and the dependency signal is left out for the other cells.
    num_layers : int
        Stacked layers of the non-Elman cells (PyTorch's ``num_layers``; the Elman cell has 1).
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
    dtype: str = "float64"
    cell: str | list = DEFAULT_CELL
    num_layers: int = 1

    KIND = "report"
    TYPES = {"name": str, "title": str, "datasets": list, "states": list, "task": str, "hidden_size": int,
             "max_lag": int, "n_sentences": int, "block_schemes": list, "floor": float, "per_sentence": bool,
             "seed": int, "partition_size": int, "max_memory": float, "dtype": str, "cell": (str, list),
             "num_layers": int}
    ITEM_TYPES = {"datasets": str, "states": str, "block_schemes": str, "cell": str}

    def __post_init__(self):
        if self.n_sentences == "all":
            object.__setattr__(self, "n_sentences", None)

    def model_states(self) -> list[ModelState]:
        """The states with the spec's seed filled in where a state sets none."""
        return [parse_state(s).resolved(self.seed) for s in self.states]

    def reduced(self, n_sentences: int, max_lag: int | None = None, hidden_size: int | None = None,
                name: str | None = None) -> "ReportSpec":
        """A smaller version for smoke runs (CI runs every spec like this), optionally under another name."""
        return replace(self, name=name or self.name, n_sentences=min(n_sentences, self.n_sentences or n_sentences),
                       max_lag=min(self.max_lag, max_lag) if max_lag is not None else self.max_lag,
                       hidden_size=hidden_size or self.hidden_size)

    def quick(self) -> "ReportSpec":
        """The smoke version ``--quick`` runs: 100 sentences, K <= 10, H <= 16."""
        return self.reduced(100, max_lag=10, hidden_size=min(16, self.hidden_size))

    @classmethod
    def from_dict(cls, data: dict, source: str = "spec") -> "ReportSpec":
        if data.get("n_sentences") == "all":          # every sentence: the same as leaving the key out
            data = {k: v for k, v in data.items() if k != "n_sentences"}
        return super().from_dict(data, source)

    def validate(self, source: str = "spec") -> None:
        """Check everything that can be checked without doing the work."""
        from ..data import canonical_spec, check_spec, dataset_info
        spec, fail = self, _failer(source)
        check_name(spec.name, fail)
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
        check_cells(spec.cell, spec.num_layers, spec.dtype, fail)
        if not spec.states:
            fail("states", "needs at least one model state, e.g. \"init\" or \"file:path=model.npz\"")
        labels, canonicals = {}, {}
        for s in spec.states:
            try:
                state = parse_state(s).resolved(spec.seed)
                self._check_state(state)
            except (ValueError, TypeError, OSError) as exc:
                fail("states", str(exc))
            if state.canonical in canonicals:
                fail("states", f"{canonicals[state.canonical]!r} and {s!r} are the same state ({state.canonical}); "
                               "list it once")
            canonicals[state.canonical] = s
            if state.kind == "train" and spec.task not in TRAIN_TASKS:
                fail("task", f"state {s!r} trains a model, which needs task one of {tuple(TRAIN_TASKS)}; "
                             f"received task {spec.task!r}")
            if state.label in labels:
                fail("states", f"{labels[state.label]!r} and {s!r} are the same state ({state.label}); give each "
                               "state a different scale, seed or label=NAME")
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
            check_scheme("block_schemes", b, fail)
        if not 0 < spec.floor < 1:
            fail("floor", f"must be between 0 and 1; received {spec.floor}")
        check_max_memory(spec.max_memory, fail)
        check_dtype(spec.dtype, fail)


    def _check_state(self, state: ModelState) -> None:
        """A state's model file loads (as the Elman RNN or a CellModel of one of the spec's cells), and the
        options of an "init" or "train" state apply to the spec's cells."""
        from .states import check_state
        check_state(state, self.cells, self.num_layers)


#: The report spec's old name.
Spec = ReportSpec


def spec_from_dict(data: dict, source: str = "spec") -> ReportSpec:
    """Build and fully validate a ReportSpec; errors name ``source``, the key and the allowed values."""
    return ReportSpec.from_dict(data, source)


def validate(spec: ReportSpec, source: str = "spec") -> None:
    """Check everything that can be checked without doing the work."""
    spec.validate(source)


def load_spec(path_or_name) -> ReportSpec:
    """Read a report spec from a path, or a built-in one from ``analyses/`` by name."""
    path, data = read_spec_file(path_or_name)
    if is_training_spec(data):
        raise ValueError(f"{path} is a training study spec (it has a 'train' key); run it with "
                         f"`gradlab train {path_or_name}` or gradlab.study.spec.load_train_spec")
    return spec_from_dict(data, str(path))


#: The report ``gradlab`` writes when run with no arguments: four built-in datasets,
#: from long planted dependencies to none, at the coursework size H = 50, at
#: initialisation and after two epochs of TBPTT(3) training on each dataset.
DEFAULT_SPEC = ReportSpec(
    name="default",
    title="Vanishing gradients and the truncation gap on the built-in datasets",
    datasets=["agreement:distance=8", "recall:distance=8", "dyck", "markov"],
    states=["init", "train:scheme=tbptt:3,epochs=2,lr=0.5,batch_size=20,label=trained:tbptt:3"],
    task="lm",
    hidden_size=50,
    max_lag=40,
    n_sentences=1000,
)


@dataclass(frozen=True)
class TrainSpec(StudySpec):
    """A training study (the keys of its TOML file).

    Attributes
    ----------
    name, title : str
    train : str
        Dataset spec of the training data (``gradlab datasets``).
    dev : str or None
        Dataset spec of the dev data (same vocabulary); None: a ``dev_fraction`` split of ``train``.
    dev_fraction : float
    task : {"lm", "number"}
    hidden_sizes, schemes, learning_rates, seeds : list
        The grid: one run per combination. ``seeds`` seed the initial model (drawn as the
        report's ``init`` state with ``scale``) and the order of the sentences.
    epochs, batch_size : int
    anneal : float
        lr_epoch = lr / (1 + epoch / anneal); 0: constant.
    n_sentences : int or None
        First n training sentences (before a dev split).
    n_dev : int or None
        First n dev sentences.
    eval_tasks : list of str
        Tasks the final model is evaluated on (dev data): lm, agreement, recall, closing
        for task lm; number for task number. Default: [task].
    snapshots : bool
        Analyse the model at init, after epochs // 2 epochs and at the end (vanishing
        profile, TBPTT gap) on the first ``snapshot_sentences`` dev sentences, lags 0..max_lag.
    max_lag, snapshot_sentences : int
    scale : float
        Initial weight scale.
    max_memory : float or None
        GiB a run may use (its estimated peak); None: half of this machine's RAM.
    activation : str
        Activation of the models (sigmoid, tanh, relu).
    recurrent_init, recurrent_gain : str, float
        How U is initialised: "normal" (N(0, scale^2)), "orthogonal" or "identity" times
        the gain (:meth:`gradlab.RNN.init`).
    clip : float or None
        Global-norm gradient clipping of the updates (Trainer's ``clip``).
    distribution : {"fixed", "uniform", "curriculum"}
        The training data's distances: as ``train`` says ("fixed"); uniform on
        ``min_distance``..the train spec's ``distance`` ("uniform": ``train`` gets
        ``min_distance``); or that uniform data as a curriculum ("curriculum"): the epochs
        are split into ``curriculum_stages`` stages, stage s of S training only on the
        sentences whose longest dependency is at most min_distance + (distance -
        min_distance) * s / S (rounded up), each stage continuing from the last.
    min_distance : int or None
        Lower end of the distances for "uniform" and "curriculum".
    curriculum_stages : int
        Stages of a curriculum (<= epochs).
    agreement_sets : list of str or None
        Standard agreement test sets each trained language model (task lm) is also evaluated
        on (:func:`gradlab.train.evaluate.evaluate_agreement_set`, words looked up in the train
        dataset's vocabulary), written to ``agreement_sets.csv``:
        ``"linzen_testset:path=subj_agr_filtered.text[,gold=FILE.gold][,lowercase=true]"`` and
        ``"gulordava:path=generated.tab[,lowercase=true]"`` (:func:`parse_agreement_set`).
        None: none.
    dtype : {"float64", "float32"}
        The type the models are drawn, trained, evaluated and analysed in
        (``gradlab.RNN``'s dtype); float64 by default; float32 for the Elman cell only.
    cell : str or list of str
        The cell trained: "elman" (the default, :class:`gradlab.RNN`) or a :class:`gradlab.CellModel`
        cell ("gru", "lstm", "linear", ...; one-hot input), as for a report (:class:`ReportSpec`). A
        list adds a cell dimension to the grid (one run per cell and combination; the run's name
        starts with its cell, and every table gets a ``cell`` column). The initial model of a cell
        other than Elman is PyTorch's initialisation with every array multiplied by
        ``scale / sqrt(0.1)``; ``activation``, ``recurrent_init`` and ``recurrent_gain`` are the
        Elman cell's; the snapshots' dependency tables are measured for the Elman cell only.
    num_layers : int
        Stacked layers of the non-Elman cells (the Elman cell has 1).
    """

    name: str = "training"
    title: str = "Training study"
    train: str = "agreement:distance=8,min_distance=1"
    dev: str | None = None
    dev_fraction: float = 0.1
    task: str = "lm"
    hidden_sizes: list = field(default_factory=lambda: [50])
    schemes: list = field(default_factory=lambda: ["full"])
    learning_rates: list = field(default_factory=lambda: [0.5])
    seeds: list = field(default_factory=lambda: [0])
    epochs: int = 10
    batch_size: int = 1
    anneal: float = 0.0
    n_sentences: int | None = None
    n_dev: int | None = None
    eval_tasks: list | None = None
    snapshots: bool = False
    max_lag: int = 20
    snapshot_sentences: int = 200
    scale: float = DEFAULT_SCALE
    max_memory: float | None = None
    activation: str = "sigmoid"
    recurrent_init: str = "normal"
    recurrent_gain: float = 1.0
    clip: float | None = None
    distribution: str = "fixed"
    min_distance: int | None = None
    curriculum_stages: int = 4
    agreement_sets: list | None = None
    dtype: str = "float64"
    cell: str | list = DEFAULT_CELL
    num_layers: int = 1

    KIND = "train"
    TYPES = {"name": str, "title": str, "train": str, "dev": str, "dev_fraction": float, "task": str,
             "hidden_sizes": list, "schemes": list, "learning_rates": list, "seeds": list, "epochs": int,
             "batch_size": int, "anneal": float, "n_sentences": int, "n_dev": int, "eval_tasks": list,
             "snapshots": bool, "max_lag": int, "snapshot_sentences": int, "scale": float, "activation": str,
             "recurrent_init": str, "recurrent_gain": float, "clip": float, "distribution": str,
             "min_distance": int, "curriculum_stages": int, "max_memory": float, "agreement_sets": list,
             "dtype": str, "cell": (str, list), "num_layers": int}
    ITEM_TYPES = {"hidden_sizes": int, "schemes": str, "learning_rates": float, "seeds": int, "eval_tasks": str,
                  "agreement_sets": str, "cell": str}

    @property
    def evaluation_tasks(self) -> list:
        return list(self.eval_tasks) if self.eval_tasks else [self.task]

    def quick(self, n_sentences: int = 20, epochs: int = 1, hidden_size: int = 4, max_lag: int = 4) -> "TrainSpec":
        """A reduced version for smoke runs: 20 sentences (train and dev), 1 epoch, H = 4, K = 4."""
        return replace(self, n_sentences=min(n_sentences, self.n_sentences or n_sentences),
                       n_dev=min(n_sentences, self.n_dev or n_sentences), epochs=min(epochs, self.epochs),
                       hidden_sizes=[min(hidden_size, h) for h in dict.fromkeys(self.hidden_sizes)][:1],
                       max_lag=min(max_lag, self.max_lag),
                       snapshot_sentences=min(n_sentences, self.snapshot_sentences),
                       curriculum_stages=min(self.curriculum_stages, epochs, self.epochs))

    def validate(self, source: str = "training spec") -> None:
        """Check everything that can be checked without training."""
        spec, fail = self, _failer(source)
        check_name(spec.name, fail)
        if spec.task not in TRAIN_TASKS:
            fail("task", f"must be one of {tuple(TRAIN_TASKS)}; received {spec.task!r}")
        for key in ("train", "dev"):
            text = getattr(spec, key)
            if text is None:
                continue
            _, tasks = check_dataset_task(key, text, spec.task, fail, what=f"{key} dataset")
            if key == (spec.dev and "dev" or "train"):
                for t in spec.evaluation_tasks:
                    if t not in TRAIN_TASKS[spec.task]:
                        fail("eval_tasks", f"a model trained on task {spec.task!r} can be evaluated on "
                                           f"{TRAIN_TASKS[spec.task]}; received {t!r}")
                    if t not in tasks:
                        fail("eval_tasks", f"the dev dataset {text!r} offers tasks {tasks}; received {t!r}")
        if not 0 < spec.dev_fraction < 1:
            fail("dev_fraction", f"must be between 0 and 1; received {spec.dev_fraction}")
        for key in ("hidden_sizes", "schemes", "learning_rates", "seeds"):
            values = getattr(spec, key)
            if not values:
                fail(key, "needs at least one value")
            if len(set(values)) != len(values):
                fail(key, f"values must be unique; received {values}")
        if any(h < 1 for h in spec.hidden_sizes):
            fail("hidden_sizes", f"must be integers >= 1; received {spec.hidden_sizes}")
        for s in spec.schemes:
            check_scheme("schemes", s, fail, " (allowed: full, tbptt:TAU, chunked:H, mikolov:BPTT,BLOCK, "
                                             "block:K1,K2, adaptive:delta=D[,every=N,...])")
        if any(not math.isfinite(r) or r <= 0 for r in spec.learning_rates):
            fail("learning_rates", f"must be finite numbers > 0; received {spec.learning_rates}")
        if any(s < 0 for s in spec.seeds):
            fail("seeds", f"must be integers >= 0; received {spec.seeds}")
        for key, lo in (("epochs", 1), ("batch_size", 1), ("n_sentences", 1), ("n_dev", 1), ("max_lag", 0),
                        ("snapshot_sentences", 1)):
            value = getattr(spec, key)
            if value is not None and value < lo:
                fail(key, f"must be an integer >= {lo}; received {value}")
        check_finite("anneal", spec.anneal, fail, what=" (0: constant learning rate)")
        check_finite("scale", spec.scale, fail)
        check_max_memory(spec.max_memory, fail)
        check_dtype(spec.dtype, fail)
        check_cells(spec.cell, spec.num_layers, spec.dtype, fail)
        self._validate_model_and_distribution(fail)
        if spec.agreement_sets is not None:
            check_agreement_sets(spec.agreement_sets, spec.task, fail)

    def _validate_model_and_distribution(self, fail) -> None:
        from ..data import check_spec, dataset_info, parse_spec
        from ..model import ACTIVATIONS, RECURRENT_INITS
        spec = self
        if spec.activation not in ACTIVATIONS:
            fail("activation", f"must be one of {tuple(ACTIVATIONS)}; received {spec.activation!r}")
        if spec.recurrent_init not in RECURRENT_INITS:
            fail("recurrent_init", f"must be one of {RECURRENT_INITS}; received {spec.recurrent_init!r}")
        check_finite("recurrent_gain", spec.recurrent_gain, fail)
        if DEFAULT_CELL not in spec.cells:
            from .states import has_activation
            for key, default in (("activation", "sigmoid"), ("recurrent_init", "normal"), ("recurrent_gain", 1.0)):
                if getattr(spec, key) != default and not (key == "activation" and any(map(has_activation,
                                                                                            spec.cells))):
                    fail(key, f"is the Elman cell's (cell = {DEFAULT_CELL!r}; activation also the rnn cell's); the "
                              f"cells {spec.cells} have their own initialisation and activations: leave {key} out")
        if spec.clip is not None:
            check_finite("clip", spec.clip, fail, positive=True, what=" (or left out: no clipping)")
        if spec.distribution not in DISTRIBUTIONS:
            fail("distribution", f"must be one of {DISTRIBUTIONS}; received {spec.distribution!r}")
        if spec.distribution == "fixed":
            if spec.min_distance is not None:
                fail("min_distance", "applies to distribution = 'uniform' or 'curriculum'; put min_distance into "
                                     "the train dataset spec for fixed data")
            return
        name, given = parse_spec(spec.train)
        if "min_distance" not in {p.name for p in dataset_info(name).parameters} or "distance" not in given:
            fail("distribution", f"{spec.distribution!r} needs a train dataset with distance and min_distance "
                                 f"parameters and distance given (e.g. 'recall:distance=20'); received {spec.train!r}")
        if "min_distance" in given:
            fail("train", f"distribution = {spec.distribution!r} sets min_distance itself; remove it from "
                          f"{spec.train!r}")
        if spec.min_distance is None:
            fail("min_distance", f"distribution = {spec.distribution!r} needs min_distance (the shortest distance)")
        try:
            check_spec(spec.train, min_distance=spec.min_distance)
        except (ValueError, TypeError) as exc:
            fail("min_distance", str(exc))
        if spec.distribution == "curriculum" and not 1 <= spec.curriculum_stages <= spec.epochs:
            fail("curriculum_stages", f"must be between 1 and epochs ({spec.epochs}); received "
                                      f"{spec.curriculum_stages}")


def train_spec_from_dict(data: dict, source: str = "training spec") -> TrainSpec:
    """Build and fully validate a TrainSpec; errors name ``source``, the key and the allowed values."""
    return TrainSpec.from_dict(data, source)


def validate_train_spec(spec: TrainSpec, source: str = "training spec") -> None:
    """Check everything that can be checked without training."""
    spec.validate(source)


def load_train_spec(path_or_name) -> TrainSpec:
    """Read a training TOML spec from a path, or one in ``analyses/`` by name."""
    path, data = read_spec_file(path_or_name)
    kind = spec_kind(data)
    if kind == "suite":
        raise ValueError(f"{path} is a suite of studies (it has [[tasks]] tables); run it with "
                         f"`gradlab train {path_or_name}` or gradlab.study.spec.load_suite")
    if kind == "report":
        raise ValueError(f"{path} is a report spec, not a training study (it has no 'train' key); run it with "
                         f"`gradlab run {path_or_name}`")
    return train_spec_from_dict(data, source=str(path))


# ---------------------------------------------------------------------- suites
_TASK_KEYS = {"name": str, "train": str, "dev": str, "task": str, "min_distance": int, "eval_tasks": list,
              "agreement_sets": list}
_PER_TASK = ("name", "train", "dev", "task", "eval_tasks", "distribution", "min_distance", "agreement_sets")


@dataclass(frozen=True)
class Suite(StudySpec):
    """A validated suite: its name, title and the studies it runs (in order).

    A suite spec is a TOML file with the keys every study shares (any key of a training
    spec, :class:`TrainSpec`, except ``name``, ``train``, ``dev``, ``task``, ``eval_tasks``,
    ``distribution``, ``min_distance`` and ``agreement_sets``), a list ``distributions`` (``"longest"``: the
    train spec as given, all sentences at its distance; ``"uniform"``: uniform on
    min_distance..distance; ``"curriculum"``: that uniform data short to long, see TrainSpec)
    and one ``[[tasks]]`` table per task with ``name``, ``train``, ``dev``, ``task``,
    ``min_distance`` and optionally ``eval_tasks`` and ``agreement_sets`` (task lm). A suite trains one
    ``cell`` (a list of several is refused: one suite per cell).
    ``analyses/truncation-learning.toml`` is one; ``analyses/truncation-linzen.toml`` another, on real data.
    """

    name: str
    title: str
    studies: tuple
    distributions: tuple
    parts: tuple
    text: dict = field(default_factory=dict, compare=False)

    KIND = "suite"

    @classmethod
    def from_dict(cls, data: dict, source: str = "suite spec") -> "Suite":
        return suite_from_dict(data, source)

    def validate(self, source: str = "suite spec") -> None:
        for study in self.studies:
            study.validate(f"{source} ({study.name})")

    def quick(self) -> "Suite":
        """Smoke version: every study's ``quick()`` with its first seed only."""
        return replace(self, studies=tuple(replace(s.quick(), seeds=s.seeds[:1]) for s in self.studies))


def suite_from_dict(data: dict, source: str = "suite spec") -> Suite:
    """Build and validate every study of a suite before any work; errors name ``source``, the part and the key."""
    data = dict(data)
    name = data.pop("name", "suite")
    parts = data.pop("tasks", None)
    dists = data.pop("distributions", None)
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        raise ValueError(f"{source}: tasks must be a list of [[tasks]] tables (name, train, dev, task, min_distance)")
    if not isinstance(dists, list) or not dists or any(d not in SUITE_DISTRIBUTIONS for d in dists) \
            or len(set(dists)) != len(dists):
        raise ValueError(f"{source}: distributions must be a list of distinct values from "
                         f"{tuple(SUITE_DISTRIBUTIONS)}; received {dists!r}")
    if isinstance(data.get("cell"), list) and len(data["cell"]) > 1:
        raise ValueError(f"{source}: cell: a suite trains one cell (its figures compare schemes and distributions); "
                         f"received {data['cell']!r}: write one suite per cell")
    shared = sorted(set(data) & set(_PER_TASK))
    if shared:
        raise ValueError(f"{source}: key(s) {shared} belong in each [[tasks]] table, not at the top")
    title = data.get("title", "Training suite")
    studies, names = [], []
    for i, part in enumerate(parts):
        where = f"{source}: tasks[{i}]"
        unknown = sorted(set(part) - set(_TASK_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_TASK_KEYS)}")
        for key in ("name", "train", "task"):
            if key not in part:
                raise ValueError(f"{where}: needs {key!r}")
        if part["name"] in names:
            raise ValueError(f"{where}: name {part['name']!r} is used twice")
        names.append(part["name"])
        for dist in dists:
            table = dict(data, **{k: v for k, v in part.items() if k not in ("name", "min_distance")})
            table["name"] = f"{part['name']}-{dist}"
            table["title"] = f"{title}: {part['name']}, {dist} distances"
            table["distribution"] = SUITE_DISTRIBUTIONS[dist]
            if dist != "longest":
                if "min_distance" not in part:
                    raise ValueError(f"{where}: distribution {dist!r} needs min_distance in the [[tasks]] table")
                table["min_distance"] = part["min_distance"]
            studies.append(train_spec_from_dict(table, source=f"{where} ({part['name']}, {dist})"))
    return Suite(name, title, tuple(studies), tuple(dists), tuple(names), {"source": source})


def load_suite(path_or_name) -> Suite:
    """Read a suite TOML from a path, or from ``analyses/`` by name."""
    path, data = read_spec_file(path_or_name)
    if not is_suite_spec(data):
        raise ValueError(f"{path} is not a suite (it has no [[tasks]] tables); run it with `gradlab train {path}`")
    return suite_from_dict(data, str(path))


# ---------------------------------------------------------------------- any kind
#: Spec class of each kind.
SPEC_CLASSES = {"report": ReportSpec, "train": TrainSpec, "suite": Suite}


def from_dict(data: dict, source: str = "spec") -> StudySpec:
    """The spec of whichever kind ``data`` is (:func:`spec_kind`), fully validated."""
    return SPEC_CLASSES[spec_kind(data)].from_dict(data, source)


def load(path_or_name) -> tuple[StudySpec, str]:
    """(spec, source) of a TOML file or built-in spec of any kind; ``source`` is its path."""
    path, data = read_spec_file(path_or_name)
    return from_dict(data, str(path)), str(path)
