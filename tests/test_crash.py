"""No crash leaves a trace: training, the crop stage and a sweep killed with SIGKILL at seeded
random moments (pipeline.core.failpoints), then run again. After every re-run the work is
complete, the outputs load, each training has exactly one MLflow run and none is left RUNNING,
no temporary file remains, and at most the interrupted epoch was trained twice."""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import TINY, clone_project, copy_project, merge, read_params, run, write_params

pytestmark = pytest.mark.slow

EPOCHS = 3
BATCHES = 3  # per epoch at the tiny setting (38 training crops, batch 16)
KILLS = 20


def moments(seed: int = 0, n: int = KILLS) -> list[str]:
    """n seeded kill moments (failpoint:occurrence) across a short training run: at its start,
    inside epochs (the first included), between an epoch's state and its report, and inside the
    atomic writes of resume states, the run record, the checkpoint and the training log."""
    rng = np.random.default_rng(seed)
    pool = ["train.run_started:1", "train.after_checkpoint:1"]
    pool += [f"train.batch:{k}" for k in range(1, EPOCHS * BATCHES + 1)]
    pool += [f"train.before_state:{e}" for e in range(1, EPOCHS + 1)] + [f"train.after_state:{e}" for e in range(1, EPOCHS + 1)]
    # the atomic writes of a training: its run record, one resume state per epoch, model.pt, train_log.csv
    pool += [f"atomic_file.before_rename:{k}" for k in range(1, EPOCHS + 4)]
    first = ["train.batch:1", "atomic_file.before_rename:1"]  # inside the first epoch, and the first write
    return first + list(rng.choice(pool, size=n - len(first), replace=False))


def temporaries(proj: Path) -> list[Path]:
    return [p for folder in ("data", "results", "cache") for p in (proj / folder).rglob("*") if p.name.endswith((".tmp", ".old"))]


def mlflow_runs(proj: Path, experiment: str):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("head-pose")
    return client, client.search_runs([exp.experiment_id], filter_string=f"tags.experiment = '{experiment}'")


@pytest.fixture(scope="module")
def crash_project(tiny_cropped, tmp_path_factory):
    proj = clone_project(tiny_cropped, tmp_path_factory.mktemp("crash") / "proj")
    params = read_params(proj)
    for i in range(KILLS):
        params["experiments"][f"crash{i}"] = {**params["experiments"]["dadl"], "epochs": EPOCHS, "lr_milestones": [2]}
    write_params(proj, params)
    return proj


@pytest.mark.parametrize("i, moment", list(enumerate(moments())))
def test_training_killed_at_any_moment_resumes_cleanly(crash_project, i, moment):
    proj, name = crash_project, f"crash{i}"
    run(proj, sys.executable, "-m", "pipeline.configure", name)
    killed = run(proj, sys.executable, "-m", "pipeline.train", name, check=False, env={"HEADPOSE_FAILPOINT": moment})
    assert killed.returncode == -9, f"{moment} was never reached: {killed.stdout[-500:]}{killed.stderr[-500:]}"
    again = run(proj, sys.executable, "-m", "pipeline.train", name)
    assert f"{name} seed 0: trained" in again.stdout

    from pipeline.engine.inference import load_checkpoint

    _, ckpt = load_checkpoint(proj / "results" / name / "seed-0" / "model.pt")
    assert ckpt.experiment.name == name and ckpt.epochs == EPOCHS
    client, runs = mlflow_runs(proj, name)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED", [(r.info.run_id, r.info.status) for r in runs]
    assert ckpt.train_run_id == runs[0].info.run_id
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train_loss")]
    assert sorted(steps) == list(range(1, EPOCHS + 1)), steps  # every epoch reported exactly once
    assert not temporaries(proj), temporaries(proj)
    assert not list((proj / "cache" / "resume").glob(f"{name}-*")), "resume state left after success"
    # at most the interrupted epoch is trained again: the re-run resumes after the last saved epoch
    resumed = re.search(r"resuming \S+ after epoch (\d+)", again.stdout)
    done_before = int(resumed.group(1)) if resumed else 0
    point, nth = moment.split(":")
    lost_allowed = {"train.batch": (int(nth) - 1) // BATCHES, "train.before_state": int(nth) - 1, "train.after_state": int(nth)}
    if point in lost_allowed:
        assert done_before == lost_allowed[point], (moment, again.stdout[:300])
    all_runs = client.search_runs([client.get_experiment_by_name("head-pose").experiment_id], filter_string="attributes.status = 'RUNNING'")
    assert not all_runs, [r.data.tags.get("experiment") for r in all_runs]


def store_digest(proj: Path) -> dict:
    return {p.relative_to(proj).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((proj / "data" / "crops").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("moment", ["atomic_dir.before_rename:1", "crop.image:30", "crop.image:55"])
def test_crop_stage_killed_leaves_nothing_and_reruns_to_the_same_store(tiny_cropped, tmp_path, moment):
    proj = clone_project(tiny_cropped, tmp_path / "proj")
    clean = store_digest(proj)
    killed = run(proj, sys.executable, "-m", "pipeline.crop", check=False, env={"HEADPOSE_FAILPOINT": moment})
    assert killed.returncode == -9, killed.stderr[-500:]
    assert "Traceback" not in killed.stderr and "BrokenPipeError" not in killed.stderr, killed.stderr[-1500:]
    assert store_digest(proj) == clean  # the old store is untouched until the new one is complete
    run(proj, sys.executable, "-m", "pipeline.crop")
    assert store_digest(proj) == clean and not temporaries(proj), temporaries(proj)


def test_killed_evaluate_leaves_no_output_and_its_run_ends_killed(tiny_project):
    proj = tiny_project
    out = proj / "results" / "dadl" / "seed-0"
    before = {p.name: p.read_bytes() for p in (out / "metrics.json", out / "criteria.json")}
    killed = run(proj, sys.executable, "-m", "pipeline.evaluate", "dadl", check=False, env={"HEADPOSE_FAILPOINT": "evaluate.before_commit"})
    assert killed.returncode == -9
    # the outputs are untouched; the killed process's staged outputs stay until the next run removes them
    assert {p.name: p.read_bytes() for p in (out / "metrics.json", out / "criteria.json")} == before
    assert temporaries(proj), "the kill came before evaluate staged its outputs"
    run(proj, sys.executable, "-m", "pipeline.evaluate", "dadl")
    assert not temporaries(proj)
    _, runs = mlflow_runs(proj, "dadl")
    statuses = sorted(r.info.status for r in runs if r.data.tags.get("stage") == "evaluate")
    assert statuses == ["FINISHED", "FINISHED", "KILLED"], statuses  # the dvc repro run, the re-run, the killed one
    latest = json.loads((out / "metrics.json").read_text())["aflw2000"]["run_id"]
    assert latest not in {r.info.run_id for r in runs if r.info.status == "KILLED"}
