"""Running a sweep: create or continue its study, train its trials with one or more worker
processes, export results.csv and the figure, print a summary.

    python sweeps/<name>.py [--workers N] [--storage URL]

How each cell is trained exactly once, and how a killed trial is retried but never counted, is
in sweeps/worker.py; the study itself in sweeps/study.py.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import optuna
import pandas as pd

from pipeline.config.params import Params, load_params
from pipeline.core.errors import ConfigError, HarnessError, cli
from pipeline.core.paths import RESULTS
from sweeps import halving, worker
from sweeps.spec import Sweep, read_spec, trial_experiment
from sweeps.study import enqueue_missing, export, open_storage, open_study


def run(sweep: Sweep, spec: dict, params: Params, storage_url: str | None = None, workers: int = 1,
        name: str | None = None) -> tuple[optuna.Study, pd.DataFrame]:
    """Create or continue the study, train its trials with `workers` processes, export results."""
    name = name or sweep.name
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is printed instead
    if workers < 1:
        raise ConfigError(f"--workers {workers}: need at least 1")
    folder = RESULTS / "sweeps" / name
    trial_experiment(params, spec, sweep)  # a bad experiment or value stops here, before any study is touched
    job = worker.Job(sweep, spec, params, name, storage_url, folder, workers)
    study = open_study(sweep, spec, name, open_storage(storage_url, folder))
    worker.fail_dead_trials(study, job)
    if sweep.grid:
        enqueue_missing(study, sweep, spec)
    rounds = bool(sweep.grid) and spec["pruner"] == "halving"  # synchronous halving (sweeps/halving.py)
    crashed = []
    while True:
        crashed += _work(job, study)
        if not rounds or crashed:
            break
        state = halving.advance(study, spec["epochs"])
        if state == "done":
            for t in halving.paused_not_promoted(study, spec["epochs"]):  # these cells stop: no resume file stays
                worker.drop_resume_files(worker.trial_config(job, {k: t.params[sweep.param(k)] for k in spec["grid"]}).name)
            break
        if state == "wait":  # a trial of this round is still running, in another process or on another machine
            time.sleep(5)
        worker.fail_dead_trials(study, job)
    table = export(study, sweep, folder)
    if crashed:
        raise HarnessError(f"{len(crashed)} worker process(es) stopped with status {crashed}; see the messages above, then re-run to continue")
    return study, table


def _work(job: worker.Job, study: optuna.Study) -> list[int]:
    """Run the study's waiting trials with job.workers processes (this one and helpers); returns
    the exit statuses of the helpers that failed."""
    context = multiprocessing.get_context("spawn")
    helpers = [context.Process(target=worker.work, args=(job,)) for _ in range(job.workers - 1)]
    for process in helpers:
        process.start()
    worker.work(job, study)
    for process in helpers:
        process.join()
    return [p.exitcode for p in helpers if p.exitcode]


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

