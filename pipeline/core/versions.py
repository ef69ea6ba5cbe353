"""Which releases of the key packages produced a result, read from the installed distributions'
metadata (uv.lock pins them for `make setup`; an environment of the user's own may hold others).

    installed_versions()  ->  {"headpose-bench": "0.1.0", "torch": "2.14.1+cu130", ...}

For MLflow, e.g. `mlflow.set_tags({f"version.{k}": v for k, v in installed_versions().items()})`.
"""
from __future__ import annotations

from importlib import metadata

# distribution names (as pip and uv.lock spell them), the harness itself first
PACKAGES = ("headpose-bench", "torch", "torchvision", "numpy", "mlflow", "dvc", "optuna", "pydantic")
NOT_INSTALLED = "not installed"


def installed_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """{distribution name: installed version}, or "not installed" for one that is missing (e.g.
    the harness run from a bare checkout), so a record never fails for want of a package."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = NOT_INSTALLED
    return versions
