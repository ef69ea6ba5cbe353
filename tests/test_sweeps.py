"""The sweeps on a tiny copy of the project: a re-run trains nothing, a killed worker's trial is
retried and never counted, two workers on PostgreSQL train each grid cell once, and bad
sweep params fail in one line."""
from __future__ import annotations

import collections
import copy
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support import TINY, clone_project, copy_project, merge, run

pytestmark = pytest.mark.slow

GRID = {"experiment": "dadl", "alpha": [1.0, 2.0], "beta": [1.0, 2.0], "epochs": 1, "pruner": "none"}
CELLS = {(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (2.0, 2.0)}
STUDY = Path("results/sweeps/alpha_beta")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    proj = copy_project(tmp_path_factory.mktemp("sweeps") / "proj", merge(copy.deepcopy(TINY), {"sweeps": {"alpha_beta": GRID}}))
    run(proj, "dvc", "repro", "crop")
    return proj


@pytest.fixture
def project(prepared, tmp_path):
    """A fresh copy of the cropped project: its own studies, MLflow store and resume files."""
    return clone_project(prepared, tmp_path / "proj")


def set_grid(proj: Path, **changes) -> None:
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["sweeps"]["alpha_beta"] = {**GRID, **changes}
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def sweep(proj: Path, *args, check=True):
    return run(proj, sys.executable, "sweeps/alpha_beta.py", *args, check=check)


def start(proj: Path, log: Path, *args) -> subprocess.Popen:
    """A sweep in the background, in its own process group, output to `log`."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "sweeps/alpha_beta.py", *args], cwd=proj, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def load_trials(proj: Path, storage=None):
    import optuna

    if storage is None:
        storage = optuna.storages.journal.JournalStorage(optuna.storages.journal.JournalFileBackend(str(proj / STUDY / "journal.log")))
    else:  # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; the harness ships psycopg2
        storage = storage.replace("postgresql://", "postgresql+psycopg2://")
    return optuna.load_study(study_name="alpha_beta", storage=storage).get_trials(deepcopy=False)


def complete_per_cell(trials) -> collections.Counter:
    return collections.Counter((t.params["alpha"], t.params["beta"]) for t in trials if t.state.name == "COMPLETE")


def sweep_runs(proj: Path) -> tuple[list, list]:
    """(parent runs, runs nested under them) in the copy's MLflow store."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("head-pose").experiment_id])
    parents = [r for r in runs if r.data.tags.get("stage") == "sweep"]
    ids = {p.info.run_id for p in parents}
    return parents, [r for r in runs if r.data.tags.get("mlflow.parentRunId") in ids]


def train_runs_per_cell(nested) -> collections.Counter:
    return collections.Counter((float(r.data.params["alpha"]), float(r.data.params["beta"]))
                               for r in nested if r.data.tags["stage"] == "train" and r.info.status == "FINISHED")


@pytest.fixture(scope="module")
def killed(prepared, tmp_path_factory):
    """A 2 x 2 grid of 2 epochs whose worker is SIGKILLed in trial 1 after its first epoch,
    then run again to the end: (project, output of the killed run, output of the re-run)."""
    proj = clone_project(prepared, tmp_path_factory.mktemp("killed") / "proj")
    set_grid(proj, epochs=2)
    log = proj.parent / "killed.log"
    proc = start(proj, log)
    deadline = time.time() + 300
    while not glob.glob(str(proj / "cache/resume/alpha_beta-alpha1-beta2-*.pt")):  # trial 1 has finished epoch 1
        assert proc.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proj, log.read_text(), sweep(proj).stdout


def test_killed_trial_is_retried_and_never_counted(killed):
    proj, first, again = killed
    assert "trial 0 COMPLETE" in first and "trial 1 COMPLETE" not in first
    assert "trial 1: its worker" in again and "resuming alpha_beta-alpha1-beta2 after epoch 1" in again
    assert "trial 0 started" not in again  # the finished cell is kept
    trials = load_trials(proj)
    assert trials[1].state.name == "FAIL" and any(t.user_attrs.get("retry_of") == 1 for t in trials)
    assert complete_per_cell(trials) == {cell: 1 for cell in CELLS}
    table = pd.read_csv(proj / STUDY / "results.csv")
    assert 1 not in set(table.number) and len(table) == 4 and set(zip(table.alpha, table.beta)) == CELLS
    assert (table.state == "COMPLETE").all() and table.drop(columns="retry_of").notna().all().all()
    _, nested = sweep_runs(proj)
    assert train_runs_per_cell(nested) == {cell: 1 for cell in CELLS}  # the retry continued the killed trial's run


def test_rerun_trains_nothing_new(killed):
    proj = killed[0]
    journal = (proj / STUDY / "journal.log").read_bytes()
    parents, nested = sweep_runs(proj)
    again = sweep(proj)
    assert "started" not in again.stdout and "4 complete" in again.stdout
    assert (proj / STUDY / "journal.log").read_bytes() == journal  # no trial, report or state written
    parents_again, nested_again = sweep_runs(proj)
    assert len(parents) == 1 and [r.info.run_id for r in parents_again] == [r.info.run_id for r in parents]
    assert sorted(r.info.run_id for r in nested_again) == sorted(r.info.run_id for r in nested)
    assert len([r for r in nested if r.data.tags["stage"] == "train"]) == 4  # one per cell, none left from the kill
    done = {str(t.number) for t in load_trials(proj) if t.state.name == "COMPLETE"}
    assert sorted(r.data.tags["sweep.trial"] for r in nested if r.data.tags["stage"] == "evaluate") == sorted(done)
    assert all(r.data.tags["sweep.study"] == "alpha_beta" for r in nested)

    table = pd.read_csv(proj / STUDY / "results.csv")
    assert {"val_mae", "aflw2000_mae", "biwi_yaw", "train_run_id", "evaluate_run_id"} <= set(table.columns)
    assert (proj / STUDY / "heatmap.png").stat().st_size > 10_000 and (proj / STUDY / "trials/0/model.pt").is_file()
    import mlflow

    artifacts = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}").list_artifacts(parents[0].info.run_id)
    assert {a.path for a in artifacts} == {"results.csv", "heatmap.png", "optuna_history.png", "optuna_importances.png", "optuna_contour.png"}


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    found = found or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None)
    return Path(found).resolve().parent if found else None  # resolved: createdb sits beside the real initdb


@pytest.fixture
def postgres():
    """A PostgreSQL server on a free localhost port (as user postgres when we are root): its URL."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        print("PostgreSQL binaries (initdb) not found: install postgresql (.ci/run does)")
        pytest.skip("PostgreSQL binaries (initdb) not found; install postgresql (.ci/run does)")
    as_user = []
    folder = Path(tempfile.mkdtemp(prefix="sweeps-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"

    def pg(tool, *args):
        done = subprocess.run([*as_user, str(bin_dir / tool), *args], capture_output=True, text=True)
        assert done.returncode == 0, f"{tool} failed: {done.stdout}{done.stderr}"

    pg("initdb", "-D", str(data), "-A", "trust", "-U", "sweeps")
    pg("pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w", "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start")
    try:
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "sweeps", "optuna")
        yield f"postgresql://sweeps@127.0.0.1:{port}/optuna"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_on_postgresql_train_each_cell_once(project, postgres, tmp_path):
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [start(project, log, "--storage", postgres) for log in logs]
    for proc, log in zip(workers, logs):
        assert proc.wait(timeout=600) == 0, log.read_text()
    started = [line.split(":")[1] for log in logs for line in log.read_text().splitlines() if " started: " in line]
    assert sorted(started) == sorted(set(started)) and len(started) == 4, started
    assert complete_per_cell(load_trials(project, postgres)) == {cell: 1 for cell in CELLS}
    parents, nested = sweep_runs(project)
    assert len(parents) == 1 and train_runs_per_cell(nested) == {cell: 1 for cell in CELLS}
    assert not list((project / STUDY).glob("journal.log"))  # the study lives in the database


def test_bad_sweep_param_fails_in_one_line(project):
    set_grid(project, alpah=[1.0])
    proc = sweep(project, check=False)
    assert proc.returncode == 2 and "sweeps.alpha_beta: unknown key(s) alpah" in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert not (project / "results").exists()


def test_extending_a_finished_grid_trains_only_the_new_cells(project):
    """A grid extended in params.yaml adds its new cells to the finished study (no Optuna error about
    a changed value space) and trains only them."""
    set_grid(project, alpha=[1.0, 2.0], beta=[1.0])
    first = sweep(project)
    assert first.stdout.count(" started: ") == 2 and "2 complete" in first.stdout
    set_grid(project, alpha=[1.0, 2.0], beta=[1.0, 2.0])
    second = sweep(project)
    assert second.stdout.count(" started: ") == 2 and "4 complete" in second.stdout, second.stdout
    assert all("beta=2" in line for line in second.stdout.splitlines() if " started: " in line), second.stdout
    assert complete_per_cell(load_trials(project)) == {cell: 1 for cell in CELLS}


@pytest.mark.parametrize("moment", ["train.after_state:2", "evaluate.before_commit:2", "atomic_file.before_rename:5"])
def test_sweep_killed_at_a_moment_trains_each_cell_once(project, moment):
    set_grid(project, epochs=2)
    killed = run(project, sys.executable, "sweeps/alpha_beta.py", check=False, env={"HEADPOSE_FAILPOINT": moment})
    assert killed.returncode == -9, killed.stdout[-2000:]
    again = sweep(project)
    assert "4 complete" in again.stdout, again.stdout
    trials = load_trials(project)
    assert complete_per_cell(trials) == {cell: 1 for cell in CELLS}
    table = pd.read_csv(project / STUDY / "results.csv")
    assert len(table) == 4 and (table.state == "COMPLETE").all() and (table.epochs == 2).all()
    parents, nested = sweep_runs(project)
    assert len(parents) == 1 and train_runs_per_cell(nested) == {cell: 1 for cell in CELLS}
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    running = client.search_runs([client.get_experiment_by_name("head-pose").experiment_id], "attributes.status = 'RUNNING'")
    assert not running, [(r.data.tags.get("stage"), r.data.tags.get("sweep.trial")) for r in running]
    assert not [p for p in project.rglob("*.tmp")], [p for p in project.rglob("*.tmp")]


def test_halving_on_a_grid_trains_in_synchronous_rounds(project):
    """pruner: halving on a 2 x 2 grid of 3 epochs (rungs 1, 3): every cell trains one epoch and
    pauses; the best third, rounded up (2 of 4), resume their paused training to epoch 3; the
    others stay PRUNED with their epoch-1 value. A re-run trains nothing and no resume file stays."""
    set_grid(project, epochs=3, pruner="halving")
    out = sweep(project).stdout
    trials = load_trials(project)
    by_number = {t.number: t for t in trials}
    first = [t for t in trials if t.user_attrs.get("until") == 1]
    assert len(first) == 4 and all(t.state.name == "PRUNED" and set(t.intermediate_values) == {1} for t in first), out
    resumed = [t for t in trials if "resumes" in t.user_attrs]
    best = sorted(first, key=lambda t: t.intermediate_values[1])[:2]
    assert sorted(t.user_attrs["resumes"] for t in resumed) == sorted(t.number for t in best), out
    for t in resumed:  # its curve continues the paused one (that it resumed, not retrained, is the "resuming" count below)
        assert t.state.name == "COMPLETE" and set(t.intermediate_values) == {1, 2, 3}
        assert t.intermediate_values[1] == by_number[t.user_attrs["resumes"]].intermediate_values[1]
    assert out.count("resuming alpha_beta-") == 2 and "2 complete, 2 pruned" in out, out  # resumed, not trained again
    table = pd.read_csv(project / STUDY / "results.csv")
    assert sorted(table.epochs) == [1, 1, 3, 3] and sorted(table.state) == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    assert {(r.alpha, r.beta) for r in table.itertuples()} == CELLS
    assert not glob.glob(str(project / "cache/resume/*"))
    again = sweep(project).stdout
    assert " started: " not in again and "2 complete, 2 pruned" in again, again
