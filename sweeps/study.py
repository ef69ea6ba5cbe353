"""A sweep's Optuna study: its storage (a journal file, or a database for several machines), the
grid cells queued as trials, its parent MLflow run, and its results table and figure.

The study lives in results/sweeps/<study>/journal.log (Optuna's JournalStorage, safe for several
processes on one machine) or in the database `--storage` names (PostgreSQL for workers on
several machines). Re-running continues it: grid cells with a COMPLETE, PRUNED, RUNNING or
WAITING trial are never queued again. One parent MLflow run per study (its id kept in the
study's user attrs, so a re-run reuses it) holds the nested train and evaluate runs of the
trials and, as artifacts, results.csv and the figure.
"""
from __future__ import annotations

import importlib.util
import itertools
import time
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from pipeline.core.atomic import atomic_file
from pipeline.core.errors import ConfigError
from pipeline.engine import tracking
from pipeline.reporting.sweep_figures import optuna_figures
from sweeps import halving
from sweeps.spec import Sweep, optuna_pruner

PARENT = "mlflow_parent_run_id"  # study user attr


class QueuedGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose cells all come from the trial queue: when to stop is the queue's
    business (GridSampler.after_trial calls study.stop(), which works only in study.optimize)."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def cell(params: dict) -> tuple:
    return tuple(sorted((k, float(v)) for k, v in params.items()))


def slot(trial: optuna.trial.FrozenTrial, grid: bool = True):
    """A grid trial's cell (None unless it was queued), or "search" for a search trial."""
    if not grid:
        return "search"
    fixed = trial.system_attrs.get("fixed_params")
    return cell(fixed) if fixed else None



def open_storage(url: str | None, folder: Path):
    """JournalStorage on folder/journal.log by default, else the database at `url`."""
    if not url:
        folder.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(folder / "journal.log"))
        return optuna.storages.journal.JournalStorage(backend)
    import sqlalchemy.exc

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(f"--storage {url!r}: not a database URL; e.g. postgresql://user@127.0.0.1:5432/optuna") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        parsed = parsed.set(drivername="postgresql+psycopg2")  # SQLAlchemy 2.1 defaults to psycopg 3; we ship psycopg2
    url = parsed.render_as_string(hide_password=False)
    kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True} if parsed.drivername.startswith("postgresql") else {}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            time.sleep(1 + attempt)  # another worker is creating the tables right now
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise ConfigError(f"--storage {shown}: cannot open it ({reason[:200]})") from None
    raise ConfigError(f"--storage {shown}: tables could not be created; try again")


def _sampler(sweep: Sweep, spec: dict):
    if sweep.grid:
        return QueuedGridSampler({sweep.param(k): v for k, v in spec["grid"].items()})
    return optuna.samplers.TPESampler()  # no seed: parallel workers must not draw the same points


def open_study(sweep: Sweep, spec: dict, name: str, storage) -> optuna.Study:
    """Create the study with its parent MLflow run, or load it and wait until its creator has
    recorded the parent run. Once a trial has finished, experiment, epochs and val_fraction are fixed."""
    kwargs = {"study_name": name, "storage": storage, "sampler": _sampler(sweep, spec), "pruner": optuna_pruner(sweep, spec)}
    fixed = {k: spec[k] for k in ("experiment", "epochs", "val_fraction")}
    try:
        study = optuna.load_study(**kwargs)
    except KeyError:
        try:
            study = optuna.create_study(direction="minimize", **kwargs)
        except optuna.exceptions.DuplicatedStudyError:  # created meanwhile by another worker
            study = optuna.load_study(**kwargs)
        else:  # only the creator makes the parent run (the others wait: no two first writers to MLflow)
            study.set_user_attr("spec", fixed)
            study.set_user_attr(PARENT, _new_parent_run(name, sweep, spec))
    _wait_for(study, PARENT)
    started = study.user_attrs.get("spec", fixed)
    if started != fixed and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        study.set_user_attr("spec", fixed)  # nothing finished yet: the new values hold
        started = fixed
    if started != fixed:
        raise ConfigError(f"params.yaml sweeps.{sweep.name}: study {name} was started with {started}, now {fixed}; "
                          f"restore those values or delete results/sweeps/{name}/ (or the --storage study) to start over")
    return study


def _wait_for(study: optuna.Study, key: str, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while key not in study.user_attrs:
        if time.time() > deadline:  # its creator died before writing it
            study.set_user_attr(key, _new_parent_run(study.study_name, None, None))
        time.sleep(0.5)


def _new_parent_run(name: str, sweep: Sweep | None, spec: dict | None) -> str:
    with tracking.run(f"sweep:{name}", {"stage": "sweep", "sweep.study": name}) as (mlflow, active):
        if spec is not None:
            mlflow.log_params({"sweep": sweep.name, **tracking.flat_params(spec)})
        return active.info.run_id


def enqueue_missing(study: optuna.Study, sweep: Sweep, spec: dict) -> int:
    """Queue every grid cell that has no trial other than FAIL ones; returns how many."""
    taken = {slot(t) for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL}
    attrs = halving.first_rung(spec["epochs"]) if spec["pruner"] == "halving" else {}
    queued = 0
    for values in itertools.product(*spec["grid"].values()):
        params = {sweep.param(k): v for k, v in zip(spec["grid"], values)}
        if cell(params) not in taken:
            study.enqueue_trial(params, user_attrs=attrs)
            queued += 1
    return queued


def _attempts(trial, by_number: dict) -> list:
    """The trial and the earlier trials of its cell's training, newest first: the killed attempts
    it retried (user attr retry_of) and the paused trials it resumed (resumes, synchronous halving)."""
    chain = [trial]
    while (previous := chain[-1].user_attrs.get("retry_of", chain[-1].user_attrs.get("resumes"))) is not None and previous in by_number:
        chain.append(by_number[previous])
    return chain


def _seconds(trial) -> float:
    end = trial.datetime_complete.timestamp() if trial.state != TrialState.FAIL else trial.user_attrs.get("heartbeat")
    return max(0.0, (end or trial.datetime_start.timestamp()) - trial.datetime_start.timestamp()) if trial.datetime_start else 0.0


def results_table(study: optuna.Study) -> pd.DataFrame:
    """One row per COMPLETE or PRUNED trial that no later trial resumed: its values, validation and
    test metrics, run ids, and the epochs and seconds its cell took, killed attempts and paused
    rounds included (a retry or a promotion resumes the earlier training, so the cell's epochs are
    the last epoch it reached)."""
    rows = []
    trials = study.get_trials(deepcopy=False)
    by_number, paused = {t.number: t for t in trials}, halving.superseded(trials)
    for t in trials:
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or t.number in paused:
            continue
        a = t.user_attrs
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
        row = {"number": t.number, "state": t.state.name, **t.params, "val_mae": a.get("val", {}).get("mae", t.value if t.value is not None else last)}
        row.update({f"val_{k}": v for k, v in a.get("val", {}).items() if k != "mae"})
        row.update({f"{ts}_{k}": m[k] for ts, m in a.get("test", {}).items() for k in ("yaw", "pitch", "roll", "mae")})
        row.update(epochs=max(t.intermediate_values, default=0), seconds=round(sum(map(_seconds, _attempts(t, by_number))), 1),
                   train_run_id=a.get("train_run_id", ""), evaluate_run_id=a.get("evaluate_run_id", ""), retry_of=a.get("retry_of", ""))
        rows.append(row)
    return pd.DataFrame(rows)


def export(study: optuna.Study, sweep: Sweep, folder: Path) -> pd.DataFrame:
    """Write results.csv, the paper's figure and Optuna's own (history, importances, contour), and
    log them to the study's parent MLflow run."""
    table = results_table(study)
    with atomic_file(folder / "results.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    figures = [sweep.plot(table, folder, sweep)] if len(table) else []
    figures += optuna_figures(study, folder, [sweep.param(k) for k in (*sweep.grid, *sweep.ranges)])
    with tracking.run("", {}, run_id=study.user_attrs[PARENT]) as (mlflow, _):
        mlflow.log_artifact(str(folder / "results.csv"))
        for figure in figures:
            mlflow.log_artifact(str(figure))
        done = table[table.state == "COMPLETE"] if len(table) else table
        mlflow.log_metrics({"trials_complete": len(done), "trials_pruned": len(table) - len(done),
                            **({"best_val_mae": float(done.val_mae.min())} if len(done) else {})})
    return table

