"""Golden outputs: a small report (in memory and streamed) and a small training study, run through the
command line, must give the tables, spec and page stored in ``expected/``.

The stored files were written by the code before the study layer, the frame and figure registry and the
cell seam were refactored (issue 9), with one deliberate change: the dependencies table's step columns
were renamed (``target`` -> ``dependent``, ``distance`` -> ``lag``; issue 9's "names that mean one
thing"), so ``report/dependencies.csv.gz`` has a new header row (its rows are unchanged) and the
reports' ``index.html`` the new column docs (and "by lag" in the dependencies caption).
A second deliberate addition (issue 13, item 4): the study, whose snapshots are on annotated agreement data,
now also writes ``snapshots_dependency_signal.csv``, ``snapshots_dependency_kept.csv`` and the
``snapshot_dependencies`` figure, and its ``index.html`` gains that figure and the two tables' column docs;
every file it wrote before is unchanged. A third (issue 13, item 5): a study spec has the key
``agreement_sets``, so the study's ``manifest.json`` (which records the whole spec) holds
``"agreement_sets": null``; the runs' digests are unchanged.

Tables are compared value by value (floats to 1e-9 relative with a floor at ``FLOOR`` of the column's
largest value, so that another CPU's last bits do not fail the test), everything else byte by byte.
Issue 11's lockstep kernels sum in another order than the kernels that wrote the stored files: every
table agrees at that tolerance, and no stored file was rewritten for them. After an intended
change of the outputs, rewrite them with
``GRADLAB_UPDATE_GOLDEN=1 python -m pytest tests/golden`` and say why in the commit.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gradlab.cli import app

HERE = Path(__file__).parent
EXPECTED = HERE / "expected"
SPECS = ("report", "report-partitioned", "study")
#: Files that hold wall-clock seconds, or per-unit/run working state.
SKIP = {"timings.csv"}
UPDATE = os.environ.get("GRADLAB_UPDATE_GOLDEN") == "1"
#: Float columns are compared to 1e-9 relative, with a floor at this fraction of the column's largest
#: value: entries that are zero up to rounding (the gap at tau >= T - 1 is ~1e-16) change in their last
#: bits whenever the order of a sum changes (another CPU's BLAS, or issue 11's lockstep kernels).
FLOOR = 1e-13

pytestmark = pytest.mark.slow


def _outputs(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.name not in SKIP}


def _table(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    for name in SPECS:
        result = CliRunner().invoke(app, ["run", str(HERE / f"{name}.toml"), "--out", str(out)])
        assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("name", SPECS)
def test_same_outputs(written, name):
    got = _outputs(written / name)
    if UPDATE:
        target = EXPECTED / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for fname, path in got.items():
            if path.suffix in (".png", ".svg"):
                (target / f"{fname}.drawn").write_text("")   # figures: that it is drawn, not its pixels
            else:
                shutil.copyfile(path, target / fname)
    expected = {p.name.removesuffix(".drawn"): p for p in sorted((EXPECTED / name).iterdir())}
    assert sorted(got) == sorted(expected), "the report writes other files than before"
    for fname, want in expected.items():
        if want.name.endswith(".drawn"):
            continue
        if ".csv" in fname:
            a, b = _table(got[fname]), _table(want)
            assert list(a.columns) == list(b.columns), fname
            for col in a.columns:
                x, y = a[col], b[col]
                if pd.api.types.is_float_dtype(y) and pd.api.types.is_numeric_dtype(x):
                    finite = y.abs().replace(float("inf"), float("nan"))
                    floor = FLOOR * (finite.max() if finite.notna().any() else 0.0)
                    np.testing.assert_allclose(x.to_numpy(float), y.to_numpy(float), rtol=1e-9, atol=floor,
                                               equal_nan=True, err_msg=f"{name}/{fname}: column {col}")
                else:
                    pd.testing.assert_series_equal(x, y, obj=f"{name}/{fname}: column {col}")
        else:
            assert got[fname].read_bytes() == want.read_bytes(), f"{name}/{fname} differs from {want}"
