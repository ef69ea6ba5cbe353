import sys
import tomllib
from pathlib import Path

import pytest

from pipeline.core import versions
from pipeline.core.versions import NOT_INSTALLED, PACKAGES, installed_versions

ROOT = Path(__file__).resolve().parents[1]


def test_names_every_key_package_with_its_installed_version():
    found = installed_versions()
    assert list(found) == list(PACKAGES)
    assert {"headpose-bench", "torch", "torchvision", "numpy", "mlflow", "dvc", "optuna", "pydantic"} <= set(found)
    assert all(value != NOT_INSTALLED and value[0].isdigit() for value in found.values()), found


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason=f"runs in the .venv that make setup installs from uv.lock, not in {sys.prefix}")
def test_versions_are_what_uv_lock_pins():
    """make setup installs uv.lock, so what a run records is what the lock pins (a local version
    label such as +cu130, where a wheel's metadata carries one, is not in the lock)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {package["name"]: package["version"] for package in lock["package"] if "version" in package}
    for name, version in installed_versions().items():
        assert version.split("+")[0] == locked[name], (name, version, locked[name])


def test_missing_package_is_recorded_not_raised():
    assert installed_versions(("numpy", "no-such-distribution-xyz")) == {
        "numpy": versions.metadata.version("numpy"),
        "no-such-distribution-xyz": NOT_INSTALLED,
    }
