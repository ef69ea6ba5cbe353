"""A sweep worker: takes trials one at a time, trains and evaluates each, reports to Optuna.

Each cell exactly once. A trial trains only inside its *slot*: a grid cell (capacity 1), or the
search as a whole (capacity `trials`). All grid cells are enqueued as WAITING trials with
fixed params, and a grid worker trains only such queued trials (GridSampler alone hands the
same cell to racing workers). After taking a trial, a worker counts the lower-numbered trials
of its slot that are not FAIL; if the slot is full, the trial is marked FAIL (user attr
`skipped`) without training. Trial numbers are assigned and WAITING -> RUNNING is switched
atomically by the storage (journal file lock, PostgreSQL row lock), so of two trials that race
for one cell (two workers enqueuing it, a retry, a sampled trial) only the lower-numbered one
trains, and a queued cell is never lost: a lower trial that is still WAITING will be taken.

Killed trials are retried, never counted. Optuna's own heartbeat (RDBStorage with
RetryHeartbeatStaleTrialCallback) exists only for databases and only inside study.optimize;
the sweeps need it for the journal file too and run trials with ask/tell, so they keep their
own: a running trial records its host and pid (user attr `worker`) and refreshes the user attr
`heartbeat` every HEARTBEAT seconds. Before each trial a worker marks FAIL every RUNNING trial
whose process is gone (same host, pid not alive) or whose heartbeat is older than STALE
seconds (another host: clocks must agree to within a minute), and enqueues its values again
(user attr `retry_of`). FAIL trials are never results (results.csv lists COMPLETE and PRUNED);
the retry resumes from the killed trial's last finished epoch, because the training config's
name is unique per study and cell and so is its resume file under cache/resume/.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from pipeline.config.params import Params
from pipeline.core.atomic import remove_stale_in
from pipeline.core.errors import ConfigError, HarnessError
from pipeline.core.paths import CACHE
from pipeline.core.workers import alive
from pipeline.engine import tracking
from sweeps import halving
from sweeps.spec import Sweep, trial_experiment
from sweeps.study import PARENT, open_storage, open_study, slot

HEARTBEAT = 10  # seconds between heartbeats of a running trial
STALE = 120  # seconds without a heartbeat after which a trial of another host counts as dead
MAX_ERRORS = 3  # a worker stops after this many failed trials in a row
HOST = socket.gethostname()


@dataclass(frozen=True)
class Job:
    """What a worker process needs (picklable: helper processes are spawned)."""

    sweep: Sweep
    spec: dict
    params: Params
    study: str
    storage_url: str | None
    folder: Path
    workers: int


def blocker(study: optuna.Study, number: int, job: Job) -> str | None:
    """Why trial `number` must not train (its slot is taken, or it is no queued cell), or None."""
    grid = bool(job.sweep.grid)
    trials = study.get_trials(deepcopy=False)
    mine = slot(next(t for t in trials if t.number == number), grid)
    if mine is None:
        return "not a queued grid cell"
    paused = halving.superseded(trials)  # a paused trial that a later one resumes holds no slot
    rivals = [t.number for t in trials if t.number < number and t.state != TrialState.FAIL and slot(t, grid) == mine
              and t.number not in paused]
    capacity = 1 if grid else job.spec["trials"]
    return f"its slot is held by trial {rivals[-1]}" if len(rivals) >= capacity else None


def has_work(study: optuna.Study, job: Job) -> bool:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    if TrialState.WAITING in states:
        return True
    return not job.sweep.grid and sum(s != TrialState.FAIL for s in states) < job.spec["trials"]


def _dead(trial: optuna.trial.FrozenTrial, now: float) -> bool:
    who = trial.user_attrs.get("worker")
    if who and who["host"] == HOST and not alive(who["pid"]):
        return True
    beat = trial.user_attrs.get("heartbeat") or (trial.datetime_start.timestamp() if trial.datetime_start else now)
    return now - beat > STALE


def fail_dead_trials(study: optuna.Study, job: Job) -> None:
    """Mark FAIL the RUNNING trials whose worker is gone and queue their values again."""
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _dead(t, now):
            continue
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            continue  # another worker got there first
        _kill_runs(job.study, t.number)
        remove_stale_in(job.folder / "trials" / str(t.number))  # its half-written checkpoint or log
        if slot(t, bool(job.sweep.grid)) is not None:  # a retry keeps the round of synchronous halving it was in
            kept = {k: t.user_attrs[k] for k in ("until", "resumes") if k in t.user_attrs}
            study.enqueue_trial(t.system_attrs.get("fixed_params") or t.params, user_attrs={"retry_of": t.number, **kept})
        print(f"trial {t.number}: its worker {t.user_attrs.get('worker', '(unknown)')} is gone; marked FAIL and queued again", flush=True)


def _kill_runs(study_name: str, number: int) -> None:
    """Set the dead trial's unfinished MLflow runs to KILLED (a retry that resumes one reopens it)."""
    client = tracking.client()
    query = f"tags.`sweep.study` = '{study_name}' and tags.`sweep.trial` = '{number}' and attributes.status = 'RUNNING'"
    for found in client.search_runs([tracking.experiment_id()], query):
        client.set_terminated(found.info.run_id, "KILLED")


@contextlib.contextmanager
def heartbeat(trial: optuna.Trial):
    """Record this process on the trial and refresh its heartbeat until the block ends."""
    trial.set_user_attr("worker", {"host": HOST, "pid": os.getpid()})
    stop = threading.Event()

    def beat():
        while not stop.is_set():
            try:
                trial.set_user_attr("heartbeat", time.time())
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # marked FAIL by another worker
            except Exception:  # noqa: BLE001  a storage hiccup: try again at the next beat
                pass
            stop.wait(HEARTBEAT)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def say(job: Job, line: str) -> None:
    """One whole line to stdout (a worker's lines never interleave with another's mid-line),
    prefixed with the worker's process id when several workers share the terminal."""
    print(f"[worker {os.getpid()}] {line}" if job.workers > 1 else line, flush=True)


def progress(study: optuna.Study, job: Job) -> str:
    """'k of n trials done, about m min left': finished trials (COMPLETE or PRUNED) of the sweep's
    total, and the time left at the mean duration of the finished ones, across the workers."""
    trials = study.get_trials(deepcopy=False)
    paused = halving.superseded(trials)  # a cell that went on to the next rung is not done
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.number not in paused]
    total = (len(list(itertools.product(*job.spec["grid"].values()))) if job.sweep.grid else job.spec["trials"])
    if not done:
        return f"0 of {total} trials done"
    mean = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done) / len(done)
    left = max(0, total - len(done)) * mean / max(1, job.workers)
    return f"{len(done)} of {total} trials done, about {left / 60:.0f} min left"


def suggest(trial: optuna.Trial, job: Job) -> dict:
    """The trial's values by params.yaml key (fixed ones for queued trials). A grid key is a float
    over the grid's range, not a categorical: Optuna refuses a categorical whose choices change,
    and a grid extended in params.yaml must add its new cells to the existing study."""
    sweep = job.sweep
    values = {k: trial.suggest_float(sweep.param(k), min(v), max(v)) for k, v in job.spec["grid"].items()}
    values.update({k: trial.suggest_float(sweep.param(k), lo, hi, log=True) for k, (lo, hi) in job.spec["ranges"].items()})
    return values


def trial_config(job: Job, values: dict):
    """The base experiment with the trial's values; its name is unique per study and cell, so two
    cells never share a resume file while a retry of the same cell resumes the killed one's."""
    name = f"{job.study}-" + "-".join(f"{k}{v:g}" for k, v in values.items())
    return trial_experiment(job.params, job.spec, job.sweep, values, name)


def run_trial(trial: optuna.Trial, job: Job, config, parent: str) -> float:
    """Train and evaluate one trial (nested MLflow runs); returns the final validation MAE."""
    import mlflow

    from pipeline.analysis.evaluation import evaluate_checkpoint
    from pipeline.engine.training import train_experiment

    out = job.folder / "trials" / str(trial.number)
    tags = {"sweep.study": job.study, "sweep.trial": str(trial.number)}
    epochs = config.epochs
    until = trial.user_attrs.get("until", epochs)  # synchronous halving: this trial's rung

    def on_epoch(epoch: int, val_mae: float) -> None:
        if math.isnan(val_mae):
            raise ConfigError(f"params.yaml sweeps.{job.sweep.name}: experiment {job.spec['experiment']} held out no validation "
                              f"sample (val_fraction {config.val_fraction} of its training groups; BIWI holds out whole "
                              f"sequences); raise sweeps.{job.sweep.name}.val_fraction")
        if "train_run_id" not in trial.user_attrs:
            trial.set_user_attr("train_run_id", mlflow.active_run().info.run_id)
        say(job, f"trial {trial.number} epoch {epoch + 1}/{epochs}: validation MAE {val_mae:.2f} deg")
        trial.report(val_mae, epoch + 1)
        if epoch + 1 == until < epochs:
            mlflow.set_tag("sweep.state", f"PAUSED at epoch {until}")
            raise RungReached(f"paused after epoch {until} (a rung of synchronous halving)")
        if epoch + 1 < epochs and trial.should_prune():
            mlflow.set_tag("sweep.state", "PRUNED")
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

    try:
        if (trained := _trained_by_killed_attempt(trial, job, config)) is not None:
            out, result = trained  # killed after its training finished: evaluate that checkpoint
            trial.set_user_attr("train_run_id", result["run_id"])
            for row in result.pop("history"):
                on_epoch(row["epoch"] - 1, row.get("val_mae", float("nan")))
        else:
            result = train_experiment(config, out, progress=False, on_epoch=on_epoch, tags=tags, parent_run_id=parent)
    except optuna.TrialPruned as exc:
        tracking.client().set_terminated(trial.user_attrs["train_run_id"], "KILLED")  # a resumed trial reopens it
        if not isinstance(exc, RungReached):  # a paused cell may go on from its resume file
            drop_resume_files(config.name)  # a pruned cell is never trained again
        raise
    metrics = evaluate_checkpoint(out, parent_run_id=parent, progress=False)
    evaluate_run = next(iter(metrics.values()))["run_id"]
    for key, value in tags.items():
        tracking.client().set_tag(evaluate_run, key, value)
    trial.set_user_attr("train_run_id", result["run_id"])
    trial.set_user_attr("evaluate_run_id", evaluate_run)
    trial.set_user_attr("val", {k[4:]: result[k] for k in ("val_yaw", "val_pitch", "val_roll", "val_mae")})
    trial.set_user_attr("test", {ts: {k: m[k] for k in ("yaw", "pitch", "roll", "mae")} for ts, m in metrics.items()})
    return float(result["val_mae"])


class RungReached(optuna.TrialPruned):
    """The trial reached its rung of synchronous halving: it ends PRUNED, its resume file stays."""


def drop_resume_files(name: str) -> None:
    """The resume state and run-id file of the training config `name` (pipeline.engine.training)."""
    for pattern in (f"{name}-{'?' * 16}.pt", f"{name}-{'?' * 16}.run.json"):
        for path in (CACHE / "resume").glob(pattern):
            path.unlink(missing_ok=True)


def _trained_by_killed_attempt(trial: optuna.Trial, job: Job, config) -> tuple[Path, dict] | None:
    """(folder, training result with its history) of a killed attempt of this cell whose training
    had finished (checkpoint and log written), or None: a retry then trains nothing again."""
    import pandas as pd

    from pipeline.engine.inference import load_checkpoint

    by_number = {t.number: t for t in trial.study.get_trials(deepcopy=False)}
    previous = trial.user_attrs.get("retry_of")
    while previous is not None and previous in by_number:
        folder = job.folder / "trials" / str(previous)
        if (folder / "model.pt").is_file() and (folder / "train_log.csv").is_file():
            try:
                _, ckpt = load_checkpoint(folder / "model.pt")
            except HarnessError:
                return None
            if ckpt.experiment.name == config.name and ckpt.epochs == config.epochs:
                history = pd.read_csv(folder / "train_log.csv").to_dict("records")
                return folder, {"run_id": ckpt.train_run_id, **history[-1], "history": history}
        previous = by_number[previous].user_attrs.get("retry_of")
    return None


def _open(job: Job) -> optuna.Study:
    return open_study(job.sweep, job.spec, job.study, open_storage(job.storage_url, job.folder))


def work(job: Job, study: optuna.Study | None = None) -> None:
    """Take and run trials until the study has none left for this worker."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // job.workers))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = study or _open(job)
    parent = study.user_attrs[PARENT]
    errors = 0
    while errors < MAX_ERRORS:
        fail_dead_trials(study, job)
        if not has_work(study, job):
            return
        trial = study.ask()
        if reason := blocker(study, trial.number, job):
            trial.set_user_attr("skipped", reason)
            study.tell(trial, state=TrialState.FAIL)
            continue
        errors = 0 if _run(study, trial, job, parent) else errors + 1
    print(f"worker {os.getpid()}: {MAX_ERRORS} trials failed in a row; stopping", flush=True)


def _run(study: optuna.Study, trial: optuna.Trial, job: Job, parent: str) -> bool:
    """Run one taken trial and tell Optuna; False if it failed."""
    values = suggest(trial, job)
    config = trial_config(job, values)
    label = " ".join(f"{job.sweep.param(k)}={v:.4g}" for k, v in values.items())
    say(job, f"trial {trial.number} started: {label}")
    t0, value, state, note = time.time(), None, TrialState.COMPLETE, ""
    with heartbeat(trial):
        try:
            value = run_trial(trial, job, config, parent)
        except optuna.TrialPruned as exc:
            state, note = TrialState.PRUNED, str(exc)
        except HarnessError as exc:
            if isinstance(exc, ConfigError):  # the same for every trial: stop the sweep
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
            state, note = TrialState.FAIL, f"error: {exc}"
        except optuna.exceptions.UpdateFinishedTrialError:
            state = TrialState.FAIL  # marked FAIL by another worker: told below
        except BaseException:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
    try:
        study.tell(trial, value, state=state)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
        state, note = TrialState.FAIL, "marked FAIL meanwhile (heartbeat lost); result dropped"
    if state == TrialState.COMPLETE:
        test = ", ".join(f"{ts} {m['mae']:.2f}" for ts, m in trial.user_attrs["test"].items())
        note = f"validation MAE {value:.2f} deg (test MAE {test})"
    say(job, f"trial {trial.number} {state.name}: {label}: {note} [{time.time() - t0:.0f} s]; {progress(study, job)}")
    return state != TrialState.FAIL

