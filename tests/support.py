"""Helpers shared by the tests (not fixtures: those are in conftest.py).

- where the real AFLW2000 sample is: $AFLW2000_DEV, else ../shared/datasets/AFLW2000-dev beside
  the repository; tests that need it are skipped, with this path in the reason, when it is absent;
- the repository's params.yaml as typed objects, with one experiment added;
- a tiny setting of the whole pipeline, copies of the project that run it, and running a command.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REAL_AFLW2000 = Path(os.environ.get("AFLW2000_DEV") or ROOT.parent / "shared" / "datasets" / "AFLW2000-dev")
needs_real_aflw2000 = pytest.mark.skipif(
    not REAL_AFLW2000.is_dir(), reason=f"real AFLW2000 sample not found at {REAL_AFLW2000} (set AFLW2000_DEV to its folder)")

# The whole pipeline in about two minutes on two cores
TINY = {
    "data": {"synthetic": {"image_size": 64, "train_per_subset": 6, "test_images": 12, "biwi_sequences": 2, "biwi_frames": 5,
                           "biwi_size": [160, 120]}},
    "crop": {"store_size": 36},
    "train": {"input_size": 32, "epochs": 2, "batch_size": 16, "lr_milestones": [1], "val_fraction": 0.2},
    "asymmetry": {"experiment": {"epochs": 1, "input_size": 32}, "centre_images": 5, "bin_width": 8, "tolerance": 90, "max_offset": 90},
}
TOP_SKIP = {".git", ".venv", "data", "results", "cache", "mlflow.db", "mlartifacts", "mlruns", "dvc.lock", ".pytest_cache", ".dvc"}


def merge(base: dict, extra: dict) -> dict:
    """`extra` merged into `base` (nested dicts merged, everything else replaced); returns base."""
    for k, v in extra.items():
        base[k] = merge(base.get(k) or {}, v) if isinstance(v, dict) else v  # a dict merged into null is itself
    return base


def repo_params() -> dict:
    """The repository's params.yaml, as a plain dict (a fresh copy each call)."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def params_with(name: str, model: str, **overrides):
    """pipeline.config Params of the repository's params.yaml plus one experiment (inputs 32 px)."""
    from pipeline.config.params import Params, validated

    raw = merge(repo_params(), {"train": {"input_size": 32}})
    raw["experiments"][name] = {"model": model, **overrides}
    return validated(Params, raw, "params.yaml")


def experiment(name: str, model: str, **overrides):
    """The resolved experiment `name` of params_with(name, model, **overrides)."""
    from pipeline.config.experiment import resolve_experiment

    return resolve_experiment(params_with(name, model, **overrides), name)


def run(cwd: Path, *cmd, check=True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command in `cwd` with this interpreter's tools first on PATH and MLflow's default store."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def write_params(proj: Path, params: dict) -> None:
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def read_params(proj: Path) -> dict:
    return yaml.safe_load((proj / "params.yaml").read_text())


def copy_project(dst: Path, params_extra: dict | None = None) -> Path:
    """The repository's code and params (merged with `params_extra`) in `dst`, as a git repo, with
    no data, results, report or MLflow store."""
    def ignore(folder, names):
        top = Path(folder) == ROOT
        return [n for n in names if (top and n in TOP_SKIP) or n == "__pycache__" or n.startswith(".staging")]

    shutil.copytree(ROOT, dst, ignore=ignore)
    shutil.copytree(ROOT / ".dvc", dst / ".dvc", ignore=lambda folder, names: [n for n in names if Path(folder) == ROOT / ".dvc"
                                                                                and n not in ("config", ".gitignore", "plots")])
    for generated in ("report.md", "report.pdf", "figures"):
        target = dst / "reports" / generated
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    write_params(dst, merge(repo_params(), copy.deepcopy(params_extra or {})))
    run(dst, "git", "init", "-q")
    return dst


def clone_project(src: Path, dst: Path) -> Path:
    """A copy of a project folder with everything in it (data, results, MLflow store); MLflow's
    artifact locations are moved to the copy, so runs it logs never write into `src`."""
    import sqlite3

    dst = Path(shutil.copytree(src, dst, symlinks=True))
    if (dst / "mlflow.db").is_file():
        old, new = (Path(src) / "mlartifacts").as_uri(), (dst / "mlartifacts").as_uri()
        with sqlite3.connect(dst / "mlflow.db") as db:
            db.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)", (old, new))
            db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (old, new))
    return dst
