"""MLflow set-up shared by every stage and sweep.

Default store: SQLite at the repository root (`mlflow.db`, absolute URI so DVC's temporary
experiment copies log to the user's repository) with artifacts in `mlartifacts/` beside it.
`MLFLOW_TRACKING_URI` points every stage at a shared server instead. Browse with
    mlflow ui --backend-store-uri sqlite:///$PWD/mlflow.db
"""
from __future__ import annotations

import contextlib
import os
import subprocess

from pipeline.core.paths import project_root

EXPERIMENT = "head-pose"


def default_uri() -> str:
    return f"sqlite:///{project_root() / 'mlflow.db'}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_uri()


def _mlflow():
    import mlflow  # imported lazily: it takes seconds and most helpers do not need it

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


def experiment_id(name: str = EXPERIMENT) -> str:
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if tracking_uri() == default_uri():  # (mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI)
        location = (project_root() / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel worker
        return client.get_experiment_by_name(name).experiment_id


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_root(), capture_output=True, text=True).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def flat_params(config: dict, prefix: str = "") -> dict:
    """Nested config -> {"a.b": "value"} strings, as MLflow params want them."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


@contextlib.contextmanager
def run(run_name: str, tags: dict, run_id: str | None = None, experiment: str = EXPERIMENT, parent_run_id: str | None = None):
    """Start (or, given run_id, resume) an MLflow run tagged with the git commit; with
    parent_run_id it is nested under that run, from any process (a sweep's trial)."""
    mlflow = _mlflow()
    kwargs = {"run_id": run_id} if run_id else {"experiment_id": experiment_id(experiment), "run_name": run_name}
    if parent_run_id:
        tags = {**tags, "mlflow.parentRunId": parent_run_id}
    with mlflow.start_run(**kwargs) as active:
        mlflow.set_tags({"git_commit": git_commit(), **tags})
        yield mlflow, active
