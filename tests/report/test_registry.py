"""The frame and figure registry: every table declared once, every figure one module, report/ below the study layer."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gradlab.report import figures, frames

REPORT_DIR = Path(frames.__file__).parent
#: Modules of report/ that belong to the study layer (spec, plan, runner) until they move out of it.
STUDY_LAYER = {"pipeline.py", "plan.py", "spec.py"}


@pytest.mark.parametrize("kind", frames.KINDS)
def test_every_figure_is_one_module_reading_declared_frames(kind):
    modules = figures.of(kind)
    names = [m.NAME for m in modules]
    assert len(set(names)) == len(names)
    declared = {f.name for f in frames.frames_of(kind)}
    for module in modules:
        assert module.__name__ == f"gradlab.report.figures.{module.NAME}"
        assert isinstance(module.CAPTION, str) and module.CAPTION
        assert set(module.FRAMES) <= declared, module.NAME
        assert module.draw({}, None) is None, module.NAME     # no tables: nothing to draw


def test_frames_are_declared_once_per_kind():
    for kind in frames.KINDS:
        names = [f.name for f in frames.frames_of(kind)]
        assert len(set(names)) == len(names)
    assert frames.table_name("dependencies") == "dependencies.csv.gz" and frames.table_name("gap") == "gap.csv"
    assert frames.columns("profile", without=("rel_mean",))[-1] == "q75"
    with pytest.raises(KeyError, match="no table 'history'"):
        frames.frame("history", frames.REPORT)
    assert "timings" not in frames.TRAIN_FRAMES and "timings" in frames.TRAIN_COLUMN_DOCS


def test_report_does_not_import_the_study_layer():
    for path in sorted(REPORT_DIR.rglob("*.py")):
        if path.parent == REPORT_DIR and path.name in STUDY_LAYER:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = ("." * node.level) + (node.module or "")
                names = [target] + [f"{target}.{a.name}" for a in node.names]
                # a figure module may be named training_*, the train package may not be imported
                banned = {"pipeline", "plan", "spec", "study", "suite", "cli"}
                assert not any(n.split(".")[-1] in banned or "train" in n.split(".") for n in names), \
                    (path.name, target)
