"""MLflow set-up shared by every stage and sweep.

Default store: SQLite at the repository root (`mlflow.db`, absolute URI so DVC's temporary
experiment copies log to the user's repository) with artifacts in `mlartifacts/` beside it.
`MLFLOW_TRACKING_URI` points every stage at a shared server instead. Browse with
    mlflow ui --backend-store-uri sqlite:///$PWD/mlflow.db
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time

from pipeline.core.paths import project_root
from pipeline.core.workers import alive

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


def client():
    """An MlflowClient on the harness's tracking store."""
    return _mlflow().MlflowClient(tracking_uri=tracking_uri())


def log_row(mlflow_client, run_id: str, row: dict) -> None:
    """One epoch's row of a training log (`epoch` is the step) as metrics of run `run_id`."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, int(row["epoch"])) for k, v in row.items() if k != "epoch"]
    mlflow_client.log_batch(run_id, metrics=metrics)


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


HOST, HOST_TAG, PID_TAG = socket.gethostname(), "harness.host", "harness.pid"


def end_dead_runs(experiment: str = EXPERIMENT) -> list[str]:
    """Mark KILLED the RUNNING runs started on this host by a process that no longer runs (a
    SIGKILL, a power cut); a resumed training reopens its own run afterwards. Returns their ids."""
    mlflow = _mlflow()
    exp = mlflow.MlflowClient().get_experiment_by_name(experiment)
    if exp is None:
        return []
    found = []
    for r in mlflow.MlflowClient().search_runs([exp.experiment_id], f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{HOST}'"):
        pid = r.data.tags.get(PID_TAG, "")
        if pid.isdigit() and not alive(int(pid)):
            mlflow.MlflowClient().set_terminated(r.info.run_id, "KILLED")
            found.append(r.info.run_id)
    return found


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Inside the block, SIGTERM (a `kill`, a stopped job) raises KeyboardInterrupt like Ctrl-C,
    so the run is ended as KILLED rather than left RUNNING. Only the main thread can do this."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def run(run_name: str, tags: dict, run_id: str | None = None, experiment: str = EXPERIMENT, parent_run_id: str | None = None):
    """Start (or, given run_id, resume) an MLflow run tagged with the git commit; with
    parent_run_id it is nested under that run, from any process (a sweep's trial).

    The run ends FINISHED when the block completes, KILLED when it is interrupted (Ctrl-C,
    SIGTERM) and FAILED on any error. A SIGKILL leaves it RUNNING: the training loop then
    reopens the same run when it resumes (pipeline.engine.training)."""
    mlflow = _mlflow()
    end_dead_runs(experiment)
    kwargs = {"run_id": run_id} if run_id else {"experiment_id": experiment_id(experiment), "run_name": run_name}
    if parent_run_id:
        tags = {**tags, "mlflow.parentRunId": parent_run_id}
    active = mlflow.start_run(**kwargs)
    try:
        mlflow.set_tags({"git_commit": git_commit(), HOST_TAG: HOST, PID_TAG: str(os.getpid()), **tags})
        with _sigterm_as_interrupt():
            yield mlflow, active
    except (KeyboardInterrupt, SystemExit):
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")
