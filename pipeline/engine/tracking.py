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
import warnings
from pathlib import Path

import numpy as np
import torch

from pipeline.core.paths import project_root
from pipeline.core.versions import installed_versions
from pipeline.core.workers import alive

EXPERIMENT = "head-pose"


def default_uri() -> str:
    return f"sqlite:///{project_root() / 'mlflow.db'}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_uri()


def mlflow_module():
    """The mlflow module, pointed at the harness's tracking store (imported lazily: it takes
    seconds and most helpers do not need it)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"  # the UI opens such an experiment on its runs


def experiment_id(name: str = EXPERIMENT) -> str:
    """The harness's MLflow experiment, created (tagged as model training, so the UI opens on its
    runs table rather than the GenAI overview) when missing."""
    mlflow = mlflow_module()
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.tags.get(KIND_TAG) != KIND:  # created by an older version of the harness
            client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
        return exp.experiment_id
    location = None
    if tracking_uri() == default_uri():  # (mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI)
        location = (project_root() / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location, tags={KIND_TAG: KIND})
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel worker
        return client.get_experiment_by_name(name).experiment_id


def log_dataset(mlflow, name: str, path: Path, digest: str, context: str, source: str) -> None:
    """Record on the active run that it read the data at `path` (a crop store, or a dataset folder;
    content fingerprint `digest`) as its `context` data (training, validation or test): MLflow's
    Dataset column and inputs. `source` says where the images came from (synthetic, or the real
    dataset's location)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # MLflow registers its local-file source twice (for "" and "file:")
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        source_ = resolve_dataset_source(Path(path).resolve().as_uri())
    dataset = MetaDataset(source_, name=name, digest=digest)
    for attempt in range(1, LOG_INPUT_ATTEMPTS + 1):
        try:
            mlflow.log_input(dataset, context=context, tags={"images": source})
            return
        except mlflow.exceptions.MlflowException as exc:
            if attempt == LOG_INPUT_ATTEMPTS or not _lost_insert_race(exc):
                raise
            time.sleep(0.1 * attempt)


LOG_INPUT_ATTEMPTS = 3  # log_dataset's tries when another process wins the insert race (_lost_insert_race)


def _lost_insert_race(exc: BaseException) -> bool:
    """Whether an MLflow store error is a unique-key clash: the SQL store looks a dataset up and
    then inserts it, so two processes logging the same dataset at once (sweep workers sharing
    `mlflow.db`) can both insert; the loser's retry finds the winner's row and links it."""
    from sqlalchemy.exc import IntegrityError

    while exc is not None:
        if isinstance(exc, IntegrityError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def log_model(mlflow, model: torch.nn.Module, example: torch.Tensor, name: str = "model"):
    """Log `model` as an MLflow PyTorch model (torch.export, no harness code needed to load it)
    that maps a batch of crops (float32 N x 3 x h x w in [0, 1]) to N x 3 (yaw, pitch, roll)
    degrees, with its signature and `example` (a few real crops; the batch size stays free)."""
    import mlflow.pytorch  # noqa: F401  (the flavour is a submodule)
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    wrapped = PoseOutput(model).eval()
    example = example.float().contiguous()
    with torch.no_grad():
        outputs = wrapped(example)
    # unnamed tensors: a named input reaches the PyTorch flavour as a dict, which it refuses
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *example.shape[1:]))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 3))]))
    return mlflow.pytorch.log_model(wrapped, name=name, signature=signature, input_example=example.numpy(),
                                    serialization_format="pt2", pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                                    metadata={"outputs": "yaw, pitch, roll in degrees (harness convention)",
                                              "inputs": "float32 crops N x 3 x h x w in [0, 1], RGB"})


class PoseOutput(torch.nn.Module):
    """A harness model as a plain function of images: its outputs read as (yaw, pitch, roll)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predict(self.model(images)).float()


def client():
    """An MlflowClient on the harness's tracking store."""
    return mlflow_module().MlflowClient(tracking_uri=tracking_uri())


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
    found = []
    for r in _search(experiment, f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{HOST}'"):
        pid = r.data.tags.get(PID_TAG, "")
        if pid.isdigit() and not alive(int(pid)):
            client().set_terminated(r.info.run_id, "KILLED")
            found.append(r.info.run_id)
    return found


def _search(experiment: str, filter_string: str, **kwargs) -> list:
    """The runs of `experiment` that match `filter_string` (none when it does not exist yet)."""
    mlflow_client = client()
    exp = mlflow_client.get_experiment_by_name(experiment)
    return [] if exp is None else mlflow_client.search_runs([exp.experiment_id], filter_string, **kwargs)


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


def killed_run(experiment: str, tag: str, value: str) -> str | None:
    """The newest KILLED run of `experiment` tagged `tag` = `value`, if any (after end_dead_runs
    has marked the runs of dead processes KILLED)."""
    found = _search(experiment, f"attributes.status = 'KILLED' and tags.`{tag}` = '{value}'",
                    order_by=["attributes.start_time DESC"], max_results=1)
    return found[0].info.run_id if found else None


@contextlib.contextmanager
def run(run_name: str, tags: dict, run_id: str | None = None, experiment: str = EXPERIMENT, parent_run_id: str | None = None,
        reopen_tag: str | None = None):
    """Start (or, given run_id, resume) an MLflow run tagged with the git commit; with
    parent_run_id it is nested under that run, from any process (a sweep's trial).

    The run ends FINISHED when the block completes, KILLED when it is interrupted (Ctrl-C,
    SIGTERM) and FAILED on any error. A SIGKILL leaves it RUNNING: the training loop then
    reopens the same run when it resumes (pipeline.engine.training). With `reopen_tag` (a key
    of `tags`, set when the run is created) and no run_id, a KILLED run carrying the same value
    is reopened rather than a second one started: a kill can come after the run exists and
    before its id is written anywhere."""
    mlflow = mlflow_module()
    end_dead_runs(experiment)
    if run_id is None and reopen_tag is not None:
        run_id = killed_run(experiment, reopen_tag, str(tags[reopen_tag]))
    if parent_run_id:
        tags = {**tags, "mlflow.parentRunId": parent_run_id}
    kwargs = {"run_id": run_id} if run_id else {"experiment_id": experiment_id(experiment), "run_name": run_name,
                                                 "tags": {k: str(v) for k, v in tags.items()}}
    active = mlflow.start_run(**kwargs)
    try:
        mlflow.set_tags({"git_commit": git_commit(), HOST_TAG: HOST, PID_TAG: str(os.getpid()),
                         **{f"version.{k}": v for k, v in installed_versions().items()}, **tags})
        with _sigterm_as_interrupt():
            yield mlflow, active
    except (KeyboardInterrupt, SystemExit):
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")
