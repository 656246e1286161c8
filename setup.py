"""Which files the package holds (the rest of the metadata is in pyproject.toml).

Every package under ``gradlab/`` (found, so a new subpackage needs no entry here), and the
built-in analysis specs: in the repository they stay in the top-level ``analyses/`` folder;
installed, they are the package data ``gradlab/analyses/*.toml`` (see ``gradlab/_analyses.py``).
pyproject.toml cannot both find packages and map one of them to another folder, hence this file.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["gradlab", "gradlab.*"]) + ["gradlab.analyses"],
    package_dir={"gradlab.analyses": "analyses"},
    package_data={"gradlab": ["py.typed"], "gradlab.analyses": ["*.toml"]},
)
