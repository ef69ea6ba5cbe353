"""Shared fixtures. Tests marked `slow` run the pipeline, the sweeps, PostgreSQL or torchrun on a
tiny setting in copies of the project; `make test-fast` (pytest -m "not slow") leaves them out."""
from __future__ import annotations

import pytest

from tests.support import TINY, clone_project, copy_project, run


@pytest.fixture(scope="session")
def tiny_repro(tmp_path_factory):
    """A copy of the project after `dvc repro` on the tiny setting: (folder, dvc's output). Never
    changed by a test: tests that change anything take `tiny_project`, a copy of it."""
    proj = copy_project(tmp_path_factory.mktemp("tiny") / "proj", TINY)
    first = run(proj, "dvc", "repro")
    return proj, first.stdout


@pytest.fixture
def tiny_project(tiny_repro, tmp_path):
    """This test's own copy of the reproduced tiny project (data, results and MLflow store)."""
    return clone_project(tiny_repro[0], tmp_path / "proj")


@pytest.fixture(scope="session")
def tiny_cropped(tmp_path_factory):
    """A copy of the project on the tiny setting with data/crops built and nothing trained."""
    proj = copy_project(tmp_path_factory.mktemp("cropped") / "proj", TINY)
    run(proj, "dvc", "repro", "crop")
    return proj
