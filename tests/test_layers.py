"""Imports go one way: a module imports only modules of its own layer or of lower ones.

utilities -> model/batch/schemes -> kernels -> engine -> data -> analysis -> train -> report -> study -> cli

Every import counts, module-level or inside a function (lazy imports are still dependencies).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gradlab"

#: Layers, lowest first: module-name prefixes (below ``gradlab.``) of each.
LAYERS = [
    ("utilities", ("_config", "_io", "_validate", "_analyses")),
    ("model/batch/schemes", ("model", "batch", "schemes", "cells", "cellmodel", "interop")),
    ("kernels", ("kernels",)),
    ("engine", ("engine", "gradcheck", "compat", "cell_engine")),
    ("data", ("data",)),
    ("analysis", ("analysis",)),
    ("train", ("train", "")),          # "": the package itself (gradlab/__init__.py imports up to train)
    ("report", ("report",)),
    ("study", ("study", "executor", "_dask")),
    ("cli", ("cli", "__main__")),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    """The index in LAYERS of a gradlab module (``gradlab.x.y``): its longest matching prefix."""
    rest = module.split(".")[1:]
    top = rest[0] if rest else ""
    for i, (_, prefixes) in enumerate(LAYERS):
        if top in prefixes:
            return i
    raise AssertionError(f"module {module} is in no layer; add it to LAYERS in {__file__}")


def _is_package(module: str) -> bool:
    return (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists()


def _exists(module: str) -> bool:
    return _is_package(module) or (PACKAGE.parent / (module.replace(".", "/") + ".py")).exists()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, gradlab module) of every import in a file, relative ones resolved."""
    return imports_in(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")


def imports_in(source: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, gradlab module) of every import in the source of module ``name``, at any depth."""
    package = name if is_package else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "gradlab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "gradlab":
                continue
            for alias in node.names:          # "from . import engine": the submodule engine
                sub = f"{module}.{alias.name}"
                out.append((node.lineno, sub if _exists(sub) else module))
    return out


def _files():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in _files():
        layer_of(_module_name(path))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_go_one_way(path):
    module = _module_name(path)
    own = layer_of(module)
    bad = [f"line {line}: {module} ({LAYERS[own][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
           for line, target in imports_of(path) if layer_of(target) > own]
    assert not bad, "imports of a higher layer:\n" + "\n".join(bad)


def test_the_check_sees_lazy_imports():
    """A function-level import of a higher layer is found too (analysis training a model was one)."""
    source = "import numpy as np\n\n\ndef build():\n    if True:\n        from ..train import Trainer\n"
    found = imports_in(source, "gradlab.analysis.states")
    assert found == [(6, "gradlab.train")]
    assert layer_of("gradlab.train") > layer_of("gradlab.analysis.states")
    assert imports_in("from .. import engine\n", "gradlab.compat.coursework") == [(1, "gradlab.engine")]
