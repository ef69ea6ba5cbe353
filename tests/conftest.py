"""Shared fixtures. Tests marked `slow` run the pipeline, the sweeps, PostgreSQL or torchrun on a
tiny setting in copies of the project; `make test-fast` (pytest -m "not slow") leaves them out."""
from __future__ import annotations

import os

import pytest

from tests.support import TINY, clone_project, copy_project, run


def pytest_configure(config):
    """Under pytest-xdist (`make test-fast` runs `-n auto`: one worker per core), each worker keeps
    torch to its share of the cores; its default of one thread per core in every worker would
    oversubscribe them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch  # noqa: PLC0415 (only in xdist workers)

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


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
