"""The optional PyTorch oracle: skipped where torch is missing, a failure where CI requires it."""
from __future__ import annotations

import sys

import pytest

from conftest import REQUIRE_TORCH_ENV, import_torch


@pytest.fixture
def no_torch(monkeypatch):
    """Make ``import torch`` fail, as on a machine without it."""
    monkeypatch.setitem(sys.modules, "torch", None)


def test_missing_torch_skips_by_default(no_torch, monkeypatch):
    monkeypatch.delenv(REQUIRE_TORCH_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception):
        import_torch()
    monkeypatch.setenv(REQUIRE_TORCH_ENV, "0")
    with pytest.raises(pytest.skip.Exception):
        import_torch()


def test_missing_torch_fails_where_required(no_torch, monkeypatch):
    monkeypatch.setenv(REQUIRE_TORCH_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=rf"{REQUIRE_TORCH_ENV}=1 but torch cannot be imported"):
        import_torch()


def test_ci_requires_torch():
    """.ci/run installs torch and sets the variable before it runs the tests."""
    from pathlib import Path
    script = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    install = script.index('pip install -q "torch==2.13.0"')
    require = script.index(f"export {REQUIRE_TORCH_ENV}=1")
    assert install < require < script.index("python -m pytest")
    assert "--no-index" not in script and "2>/dev/null" not in script
