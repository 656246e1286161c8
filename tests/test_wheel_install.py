"""The package installs whole: the built wheel, installed into a fresh virtual environment, runs a
built-in spec by name from a folder outside the repository (issue 9, "a package that installs whole").

Offline: the wheel is built with this interpreter's setuptools (no build isolation, no index) and
installed without dependencies; the new environment reaches numba, pandas, matplotlib, ... through a
``.pth`` file listing this interpreter's site-packages folders. Those folders come *after* the new
environment's own site-packages, and their ``.pth`` files are not run, so an editable gradlab installed
there (a finder or a path pointing at a checkout) can never shadow the wheel's: the test checks that
``gradlab`` is imported from inside the new environment. About 45 s, most of it Numba compiling the
kernels of the fresh install.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: What building the wheel reads; copied, so that the build leaves no build/ or egg-info in the checkout.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "gradlab", "analyses")
SPEC = "vanishing-across-datasets"


def _run(args, cwd, env, timeout=600):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _site_folders() -> list[str]:
    """This interpreter's site-packages folders (where gradlab's dependencies are)."""
    return [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]


def _venv_site(root: Path) -> Path:
    found = [p for p in root.glob("lib*/python*/site-packages")] or [root / "Lib" / "site-packages"]
    return found[0]


def test_wheel_installs_whole_and_runs_a_builtin_spec_outside_the_repository(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    env["MPLBACKEND"] = "Agg"

    # build the wheel from a copy of the sources
    src = tmp_path / "src"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copyfile(REPO / name, src / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", "-w", dist, src], tmp_path, env)
    (wheel,) = dist.glob("gradlab-*.whl")

    # it holds every subpackage of gradlab/ and every built-in spec
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted(p.parent.relative_to(REPO).as_posix() for p in (REPO / "gradlab").rglob("__init__.py")
                      if "__pycache__" not in p.parts)
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert not missing, f"the wheel lacks the package(s) {missing}"
    specs = sorted(p.name for p in (REPO / "analyses").glob("*.toml"))
    assert SPEC + ".toml" in specs
    missing = [s for s in specs if f"gradlab/analyses/{s}" not in names]
    assert not missing, f"the wheel lacks the built-in spec(s) {missing}"

    # a fresh environment with the wheel; the dependencies come from this interpreter's folders
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(root)
    site = _venv_site(root)
    (site / "zz_gradlab_test_dependencies.pth").write_text("".join(f"{p}\n" for p in _site_folders()))
    bindir = root / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
          "--disable-pip-version-check", "-q", wheel],
         tmp_path, env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert REPO not in elsewhere.parents
    where = _run([python, "-c", "import gradlab, gradlab._analyses as a; print(gradlab.__file__); "
                                "print(a.builtin_dir()); print(','.join(a.builtin_names()))"],
                 elsewhere, env).splitlines()
    module, specs_dir, builtin = Path(where[0]), Path(where[1]), where[2].split(",")
    assert root.resolve() in module.resolve().parents, f"gradlab was imported from {module}, not the new environment"
    assert specs_dir.resolve() == (module.parent / "analyses").resolve()
    assert builtin == sorted(Path(s).stem for s in specs)

    # the acceptance run: a built-in spec by name, from outside the repository
    cli = bindir / ("gradlab.exe" if os.name == "nt" else "gradlab")
    _run([cli, "run", SPEC, "--quick", "--out", elsewhere / "reports"], elsewhere, env)
    report = elsewhere / "reports" / f"{SPEC}-quick"
    for name in ("index.html", "summary.csv", "profile.csv", "manifest.json", "spec.toml"):
        assert (report / name).is_file(), f"the report lacks {name}: {sorted(p.name for p in report.iterdir())}"
