"""What the sweep scripts share: command line, storage, study, MLflow parent run, results.

A script declares a `Sweep` (its keys under `sweeps.<name>` in params.yaml, how a trial's
values enter the base experiment's config, its figure) and calls `main(SWEEP)`:

    python sweeps/<name>.py [--workers N] [--storage URL]

The study lives in a journal file, results/sweeps/<study>/journal.log (Optuna's JournalStorage,
safe for several processes on one machine), or in the database `--storage` names (PostgreSQL
for workers on several machines). Re-running continues it: grid cells with a COMPLETE, PRUNED,
RUNNING or WAITING trial are never queued again. How each cell is trained exactly once, and
how a killed trial is retried but never counted, is in sweeps/worker.py.

One parent MLflow run per study (its id kept in the study's user attrs, so a re-run reuses it)
holds the nested train and evaluate runs of the trials and, as artifacts, results.csv and the
figure. Everything goes to results/sweeps/<study>/: journal.log, results.csv (one row per
COMPLETE or PRUNED trial), the figure, and trials/<number>/ (model.pt, metrics.json, ...).
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
import pandas as pd
from optuna.trial import TrialState

from pipeline import tracking
from pipeline.asymmetry import resolve_sigma
from pipeline.atomic import atomic_file
from pipeline.errors import ConfigError, HarnessError, cli
from pipeline.params import experiment_config, load_params, section
from pipeline.paths import RESULTS
from sweeps import worker

PARENT = "mlflow_parent_run_id"  # study user attr
OPTIONAL = ("pruner", "val_fraction")  # sweep keys with defaults: none, train.val_fraction
PRUNERS = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),  # never before epoch 2
           "none": optuna.pruners.NopPruner}


@dataclass(frozen=True)
class Sweep:
    """One study. `grid` keys hold lists (every combination is trained once, GridSampler);
    `ranges` keys hold [lo, hi] (TPE draws `trials` points, log scale). Optuna names a value
    prefix + key; `config(values)` turns {key: value} into config entries of the experiment."""

    name: str
    plot: Callable  # (results table, study folder, sweep) -> figure path
    grid: tuple[str, ...] = ()
    ranges: tuple[str, ...] = ()
    prefix: str = ""
    config: Callable[[dict], dict] = dict

    def keys(self) -> set[str]:
        return {"experiment", "epochs", *OPTIONAL, *self.grid, *self.ranges, *(["trials"] if self.ranges else [])}

    def param(self, key: str) -> str:
        return self.prefix + key


def read_spec(sweep: Sweep, params: dict) -> dict:
    """params.yaml sweeps.<name>, checked: {"experiment", "epochs", "pruner", "val_fraction",
    "grid": {key: [values]}, "ranges": {key: (lo, hi)}, "trials"}."""
    where = f"params.yaml sweeps.{sweep.name}"
    raw = section(params, "sweeps").get(sweep.name)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: missing; add it (keys: {', '.join(sorted(sweep.keys()))})")
    if unknown := set(raw) - sweep.keys():
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(sweep.keys()))}")
    if missing := sweep.keys() - set(OPTIONAL) - set(raw):
        raise ConfigError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    spec = {"experiment": raw["experiment"], "pruner": raw.get("pruner", "none"), "val_fraction": raw.get("val_fraction"),
            "grid": {}, "ranges": {}}
    if spec["val_fraction"] is not None and not (_number(spec["val_fraction"]) and 0 < spec["val_fraction"] < 1):
        raise ConfigError(f"{where}.val_fraction: need a number between 0 and 1, got {spec['val_fraction']!r}")
    for key in ("epochs", *(["trials"] if sweep.ranges else [])):
        if not isinstance(raw[key], int) or raw[key] < 1:
            raise ConfigError(f"{where}.{key}: need a whole number >= 1, got {raw[key]!r}")
        spec[key] = raw[key]
    if spec["pruner"] not in PRUNERS:
        raise ConfigError(f"{where}.pruner: unknown pruner {spec['pruner']!r}; use {' or '.join(PRUNERS)}")
    for key in sweep.grid:
        values = raw[key]
        if not isinstance(values, list) or not values or not all(_number(v) for v in values):
            raise ConfigError(f"{where}.{key}: need a non-empty list of numbers, got {values!r}")
        spec["grid"][key] = list(dict.fromkeys(float(v) for v in values))
    for key in sweep.ranges:
        pair = raw[key]
        if not (isinstance(pair, list) and len(pair) == 2 and all(_number(v) for v in pair) and 0 < pair[0] < pair[1]):
            raise ConfigError(f"{where}.{key}: need [lo, hi] with 0 < lo < hi, got {pair!r}")
        spec["ranges"][key] = (float(pair[0]), float(pair[1]))
    return spec


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def base_config(sweep: Sweep, spec: dict, params: dict) -> dict:
    """The base experiment's config with the sweep's epochs (and val_fraction); the sweep's keys
    must be in it."""
    config = resolve_sigma(experiment_config(params, spec["experiment"]))
    config["epochs"] = spec["epochs"]
    config["val_fraction"] = spec["val_fraction"] or config["val_fraction"]
    sample = {k: v[0] for k, v in spec["grid"].items()} | {k: lo for k, (lo, _) in spec["ranges"].items()}
    if unknown := set(sweep.config(sample)) - set(config):
        raise ConfigError(f"params.yaml sweeps.{sweep.name}.experiment: {spec['experiment']} (model {config['model']}) "
                          f"has no {', '.join(sorted(unknown))}; choose an experiment whose model takes it")
    if float(config["val_fraction"]) <= 0:
        raise ConfigError(f"params.yaml sweeps.{sweep.name}.val_fraction: sweeps rank trials by validation MAE; set it above 0")
    return config


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
        return worker.QueuedGridSampler({sweep.param(k): v for k, v in spec["grid"].items()})
    return optuna.samplers.TPESampler()  # no seed: parallel workers must not draw the same points


def open_study(sweep: Sweep, spec: dict, name: str, storage) -> optuna.Study:
    """Create the study with its parent MLflow run, or load it and wait until its creator has
    recorded the parent run. Once a trial has finished, experiment, epochs and val_fraction are fixed."""
    kwargs = {"study_name": name, "storage": storage, "sampler": _sampler(sweep, spec), "pruner": PRUNERS[spec["pruner"]]()}
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
    taken = {worker.slot(t) for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL}
    queued = 0
    for cell in itertools.product(*spec["grid"].values()):
        params = {sweep.param(k): v for k, v in zip(spec["grid"], cell)}
        if worker.cell(params) not in taken:
            study.enqueue_trial(params)
            queued += 1
    return queued


def results_table(study: optuna.Study) -> pd.DataFrame:
    """One row per COMPLETE or PRUNED trial: its values, validation and test metrics, run ids."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        a = t.user_attrs
        row = {"number": t.number, "state": t.state.name, **t.params, "val_mae": a.get("val", {}).get("mae", t.value)}
        row.update({f"val_{k}": v for k, v in a.get("val", {}).items() if k != "mae"})
        row.update({f"{ts}_{k}": m[k] for ts, m in a.get("test", {}).items() for k in ("yaw", "pitch", "roll", "mae")})
        row.update(epochs=len(t.intermediate_values), seconds=round((t.datetime_complete - t.datetime_start).total_seconds(), 1),
                   train_run_id=a.get("train_run_id", ""), evaluate_run_id=a.get("evaluate_run_id", ""), retry_of=a.get("retry_of", ""))
        rows.append(row)
    return pd.DataFrame(rows)


def export(study: optuna.Study, sweep: Sweep, folder: Path) -> pd.DataFrame:
    """Write results.csv and the figure, and log both to the study's parent MLflow run."""
    table = results_table(study)
    with atomic_file(folder / "results.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    figure = sweep.plot(table, folder, sweep) if len(table) else None
    with tracking.run("", {}, run_id=study.user_attrs[PARENT]) as (mlflow, _):
        mlflow.log_artifact(str(folder / "results.csv"))
        if figure:
            mlflow.log_artifact(str(figure))
        done = table[table.state == "COMPLETE"] if len(table) else table
        mlflow.log_metrics({"trials_complete": len(done), "trials_pruned": len(table) - len(done),
                            **({"best_val_mae": float(done.val_mae.min())} if len(done) else {})})
    return table


def run(sweep: Sweep, spec: dict, params: dict, storage_url: str | None = None, workers: int = 1,
        name: str | None = None) -> tuple[optuna.Study, pd.DataFrame]:
    """Create or continue the study, train its trials with `workers` processes, export results."""
    name = name or sweep.name
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is printed instead
    if workers < 1:
        raise ConfigError(f"--workers {workers}: need at least 1")
    folder = RESULTS / "sweeps" / name
    job = worker.Job(sweep, spec, base_config(sweep, spec, params), name, storage_url, folder, workers)
    study = open_study(sweep, spec, name, open_storage(storage_url, folder))
    worker.fail_dead_trials(study, job)
    if sweep.grid:
        enqueue_missing(study, sweep, spec)
    context = multiprocessing.get_context("spawn")
    helpers = [context.Process(target=worker.work, args=(job,)) for _ in range(workers - 1)]
    for process in helpers:
        process.start()
    worker.work(job, study)
    for process in helpers:
        process.join()
    table = export(study, sweep, folder)
    if crashed := [p.exitcode for p in helpers if p.exitcode]:
        raise HarnessError(f"{len(crashed)} worker process(es) stopped with status {crashed}; see the messages above, then re-run to continue")
    return study, table


def summary(table: pd.DataFrame, sweep: Sweep, folder: Path) -> str:
    done = table[table.state == "COMPLETE"] if len(table) else table
    if not len(done):
        return f"{sweep.name}: no trial completed yet; results in {folder}"
    best = done.loc[done.val_mae.idxmin()]
    values = ", ".join(f"{sweep.param(k)}={best[sweep.param(k)]:.4g}" for k in (*sweep.grid, *sweep.ranges))
    return (f"{sweep.name}: {len(done)} complete, {len(table) - len(done)} pruned; best trial {best.number} ({values}) "
            f"validation MAE {best.val_mae:.2f} deg; results in {folder / 'results.csv'}")


@cli
def main(sweep: Sweep, argv=None):
    parser = argparse.ArgumentParser(description=f"Optuna study '{sweep.name}' (params.yaml sweeps.{sweep.name}); see README \"Sweeps\".")
    parser.add_argument("--workers", type=int, default=1, help="processes on this machine, each training one trial at a time (default 1)")
    parser.add_argument("--storage", help="database shared by workers on several machines, e.g. postgresql://user@127.0.0.1:5432/optuna "
                                          f"(default: the journal file results/sweeps/{sweep.name}/journal.log)")
    args = parser.parse_args(argv)
    params = load_params()
    spec = read_spec(sweep, params)
    _, table = run(sweep, spec, params, args.storage, args.workers)
    print(summary(table, sweep, RESULTS / "sweeps" / sweep.name))
