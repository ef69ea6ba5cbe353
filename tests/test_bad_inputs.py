"""Every bad input a user can give ends the same way: exit status 2, exactly one line on stderr
(besides progress bars) naming the file or key and the fix, no traceback, and nothing changed in
data/, results/ or mlflow.db."""
from __future__ import annotations

import hashlib
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.formats import CAL, write_biwi_frame, write_biwi_npz, write_mat_sample, write_pose_txt
from tests.support import clone_project, read_params, run, write_params

pytestmark = pytest.mark.slow

BAR = re.compile(r"(\d+%\|)|(\d+/\d+ \[)|(\?it/s)|(img/s)|(batch/s)")


def error_lines(stderr: str) -> list[str]:
    """stderr's lines that are not progress bars (each line's last carriage-return segment)."""
    shown = [line.split("\r")[-1].strip() for line in stderr.split("\n")]
    return [line for line in shown if line and not BAR.search(line)]


def snapshot(proj: Path) -> dict:
    files = [p for folder in ("data", "results") for p in sorted((proj / folder).rglob("*")) if p.is_file()]
    files.append(proj / "mlflow.db")
    return {p.relative_to(proj).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def set_param(path: str, value):
    """A change of params.yaml: the value at a dotted path (a missing last key is added)."""
    def change(params):
        node = params
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return change


def checkpoint_with(tmp: Path, kind: str) -> Path:
    path = tmp / f"{kind}.pt"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "malicious":
        class Evil:
            def __reduce__(self):
                return (print, ("this should never run",))
        path.write_bytes(pickle.dumps({"config": Evil(), "state_dict": {}}))
    elif kind == "no_crop":
        from models import build_model
        from tests.support import experiment

        exp = experiment("x", "hard_label")
        config = exp.model_dump(mode="json")
        del config["crop"]
        torch.save({"config": config, "state_dict": build_model(exp.model, exp.hparams).state_dict()}, path)
    return path


def dataset_with(tmp: Path, kind: str) -> tuple[str, Path]:
    """(dataset format, folder) holding one broken sample of `kind`."""
    root = tmp / kind
    if kind == "mat_without_pose":
        write_mat_sample(root, "image00000", [0, 0, 0], with_pose=False)
        return "aflw2000", root
    if kind == "undecodable_image":
        write_mat_sample(root, "image00000", [0, 0, 0])
        (root / "image00000.jpg").write_bytes(b"\xff\xd8 not a jpeg")
        return "aflw2000", root
    if kind == "malformed_pose_txt":
        write_biwi_frame(root / "01", 0, np.eye(3), [0, 0, 900])
        (root / "01" / "frame_00000_pose.txt").write_text("1 0 0\n0 1\n")
        return "biwi", root
    if kind == "head_behind_camera":
        write_biwi_frame(root / "01", 0, np.eye(3), [0, 0, 900])
        write_pose_txt(root / "01" / "frame_00000_pose.txt", np.eye(3), [0, 0, -900])
        return "biwi", root
    if kind == "missing_rgb_cal":
        write_biwi_frame(root / "01", 0, np.eye(3), [0, 0, 900], CAL)
        (root / "01" / "rgb.cal").unlink()
        return "biwi", root
    if kind == "npz_without_pose":
        root.mkdir(parents=True)
        np.savez(root / "BIWI_test.npz", image=np.zeros((1, 8, 8, 3), np.uint8))
        return "biwi_npz", root
    if kind == "missing_folder":
        return "aflw2000", root
    raise ValueError(kind)


EVALUATE = [sys.executable, "-m", "pipeline.evaluate"]
PARAM_CASES = [  # (change of params.yaml, command, what the one line must say)
    (set_param("train.epochs", "ten"), ["-m", "pipeline.configure", "dadl"], "params.yaml train.epochs:"),
    (set_param("train.epochs", 0), ["-m", "pipeline.configure", "dadl"], "params.yaml train.epochs:"),
    (set_param("train.lr", -1), ["-m", "pipeline.configure", "dadl"], "params.yaml train.lr:"),
    (set_param("train.optimizer", "adamw"), ["-m", "pipeline.configure", "dadl"], "params.yaml train.optimizer:"),
    (set_param("train.optimiser", "adam"), ["-m", "pipeline.configure", "dadl"], "params.yaml train.optimiser: unknown key"),
    (set_param("train.protocol", "p9"), ["-m", "pipeline.configure", "dadl"], "params.yaml train.protocol:"),
    (set_param("train.val_fraction", 1.5), ["-m", "pipeline.configure", "dadl"], "params.yaml train.val_fraction:"),
    (set_param("train.input_size", [64]), ["-m", "pipeline.configure", "dadl"], "params.yaml train.input_size"),
    (set_param("crop.store_size", "big"), ["-m", "pipeline.crop"], "params.yaml crop.store_size:"),
    (set_param("crop.rule", "dlib"), ["-m", "pipeline.crop"], "params.yaml crop.rule:"),
    (set_param("crop.train_k", [0.4, 0.2]), ["-m", "pipeline.crop"], "params.yaml crop.train_k:"),
    (set_param("data.synthetic.test_images", -5), ["-m", "pipeline.download"], "params.yaml data.synthetic.test_images:"),
    (set_param("data.synthetic.image_size", 8), ["-m", "pipeline.download"], "params.yaml data.synthetic.image_size:"),
    (set_param("data.sources.biwi_npz", "synthetic"), ["-m", "pipeline.download"], "params.yaml data.sources.biwi_npz:"),
    (set_param("data.sources", {"aflw2000": None}), ["-m", "pipeline.download"], "params.yaml data.sources: every dataset is null"),
    (set_param("data.sources.300w", "synthetic"), ["-m", "pipeline.download"], "params.yaml data.sources.300w:"),
    (set_param("data.sources", {"aflw2000": "/nonexistent/AFLW2000"}), ["-m", "pipeline.download"], "/nonexistent/AFLW2000: no such file or folder"),
    (set_param("experiments.dadl.sigma", "wide"), ["-m", "pipeline.configure", "dadl"], "params.yaml experiments.dadl.sigma:"),
    (set_param("experiments.dadl.sigma", [1, 2]), ["-m", "pipeline.configure", "dadl"], "params.yaml experiments.dadl.sigma"),
    (set_param("experiments.dadl.backbone", "resnet19"), ["-m", "pipeline.configure", "dadl"], "params.yaml experiments.dadl.backbone:"),
    (set_param("experiments.dadl.model", "vit"), ["-m", "pipeline.configure", "dadl"], "params.yaml experiments.dadl.model: unknown model 'vit'"),
    (set_param("experiments.dadl.alpah", 1), ["-m", "pipeline.configure", "dadl"], "params.yaml experiments.dadl: unknown key(s) alpah"),
    (set_param("experiments.dadl.alpha", -1), ["-m", "pipeline.configure", "dadl"], "params.yaml experiments.dadl.alpha:"),
    (set_param("experiments.bernoulli_at_nbg.input_size", 62), ["-m", "pipeline.configure", "bernoulli_at_nbg"],
     "params.yaml experiments.bernoulli_at_nbg.input_size: the bernoulli model needs width and height divisible by 4"),
    (set_param("experiments.dadl.pitch_view", 64), ["-m", "pipeline.configure", "dadl"],
     "params.yaml experiments.dadl.pitch_view: 64 px is not coarser than the 32 px wide input"),
    (set_param("experiments.bernoulli_at_nbg.gamma", 0.5), ["-m", "pipeline.configure", "bernoulli_at_nbg"], "params.yaml experiments.bernoulli_at_nbg.gamma:"),
    (set_param("experiments.bernoulli_at_nbg.attention", "yes"), ["-m", "pipeline.configure", "bernoulli_at_nbg"],
     "params.yaml experiments.bernoulli_at_nbg.attention:"),
    (set_param("run", ["dadl", "nope"]), ["-m", "pipeline.configure", "dadl"], "params.yaml run: 'nope' is not under experiments"),
    (set_param("protocols.p2.split", [16]), ["-m", "pipeline.configure", "dadl"], "params.yaml protocols.p2.split"),
    (set_param("protocols.p9", {"train": "biwi", "test": ["biwi"]}), ["-m", "pipeline.configure", "dadl"],
     "params.yaml protocols.p9.test: includes the training dataset biwi without a split"),
    (set_param("robustness.repeats", 0), ["-m", "pipeline.robustness", "dadl"], "params.yaml robustness.repeats:"),
    (set_param("robustness.occluded_area", [0.5, 0.1]), ["-m", "pipeline.robustness", "dadl"], "params.yaml robustness.occluded_area:"),
    (set_param("asymmetry.centre_images", 0), ["-m", "pipeline.asymmetry"], "params.yaml asymmetry.centre_images:"),
    (set_param("sweeps.alpha_beta.alpah", [1.0]), ["sweeps/alpha_beta.py"], "params.yaml sweeps.alpha_beta: unknown key(s) alpah"),
    (set_param("sweeps.alpha_beta.epochs", 0), ["sweeps/alpha_beta.py"], "params.yaml sweeps.alpha_beta.epochs:"),
    (set_param("sweeps.gamma.experiment", "dadl"), ["sweeps/gamma.py"], "params.yaml sweeps.gamma.experiment: dadl (model dadl) has no gamma"),
    (lambda params: None, ["-m", "pipeline.configure", "nope"], "params.yaml: no experiment 'nope' under experiments"),
    (lambda params: None, ["-m", "pipeline.train", "nope"], "results/nope/config.json: missing"),
    (lambda params: None, ["-m", "pipeline.evaluate", "nope"], "results/nope/seed-0/model.pt: checkpoint not found"),
]


@pytest.fixture(scope="module")
def project(tiny_repro, tmp_path_factory):
    return clone_project(tiny_repro[0], tmp_path_factory.mktemp("bad") / "proj")


def check_refused(proj: Path, cmd: list, message: str):
    before = snapshot(proj)
    proc = run(proj, *cmd, check=False)
    lines = error_lines(proc.stderr)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert message in lines[0], lines[0]
    assert snapshot(proj) == before, "data/, results/ or mlflow.db changed"


@pytest.mark.parametrize("change, cmd, message", PARAM_CASES, ids=[c[2][:60] for c in PARAM_CASES])
def test_bad_params(project, change, cmd, message):
    params = read_params(project)
    original = (project / "params.yaml").read_text()
    change(params)
    write_params(project, params)
    try:
        check_refused(project, [sys.executable, *cmd], message)
    finally:
        (project / "params.yaml").write_text(original)


def test_yaml_syntax_error_names_line_and_column(project):
    original = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(original.replace("epochs: 2\n", "epochs: [2\n", 1))
    try:
        check_refused(project, [sys.executable, "-m", "pipeline.crop"], "params.yaml: not valid YAML at line")
    finally:
        (project / "params.yaml").write_text(original)


@pytest.mark.parametrize("kind, message", [
    ("random", "not a readable checkpoint"),
    ("empty", "not a readable checkpoint (EOFError: empty or truncated file)"),
    ("malicious", "not a readable checkpoint (UnpicklingError"),
    ("no_crop", "its experiment configuration does not fit this version of the harness (crop: missing)"),
    ("missing", "checkpoint not found"),
])
def test_unreadable_checkpoints(project, tmp_path, kind, message):
    path = checkpoint_with(tmp_path, kind) if kind != "missing" else tmp_path / "none.pt"
    check_refused(project, [*EVALUATE, "--checkpoint", str(path), "--dataset", "aflw2000", "--root", "data/raw/aflw2000",
                            "--out", str(tmp_path / "out.json")], f"{path}: {message}")
    assert not (tmp_path / "out.json").exists() and "params.yaml" not in message


def test_evaluate_out_naming_a_folder(project, tmp_path):
    (tmp_path / "out").mkdir()
    check_refused(project, [*EVALUATE, "--checkpoint", "results/dadl/seed-0/model.pt", "--dataset", "aflw2000", "--root", "data/raw/aflw2000",
                            "--out", str(tmp_path / "out")], "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kind, message", [
    ("mat_without_pose", "image00000.mat: no 'Pose_Para' variable"),
    ("undecodable_image", "image00000.jpg: image does not decode"),
    ("malformed_pose_txt", "frame_00000_pose.txt: malformed BIWI pose file"),
    ("head_behind_camera", "frame_00000_pose.txt: the head centre"),
    ("missing_rgb_cal", "rgb.cal: calibration file missing"),
    ("npz_without_pose", "BIWI_test.npz: no 'pose' array"),
    ("missing_folder", "folder not found"),
])
def test_broken_dataset_files(project, tmp_path, kind, message):
    dataset, root = dataset_with(tmp_path, kind)
    check_refused(project, [*EVALUATE, "--checkpoint", "results/dadl/seed-0/model.pt", "--dataset", dataset, "--root", str(root),
                            "--out", str(tmp_path / "out.json")], message)
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.csv").exists()


def test_divergence_stops_without_touching_the_checkpoint(project):
    """train.lr 1e6 with Adam: stopped in one line, exit 2; results/ untouched; its MLflow run FAILED."""
    import mlflow

    params, original = read_params(project), (project / "params.yaml").read_text()
    params["experiments"]["dadl"]["lr"] = 1e6
    write_params(project, params)
    try:
        run(project, sys.executable, "-m", "pipeline.configure", "dadl")
        before = {p: p.read_bytes() for p in (project / "results" / "dadl" / "seed-0").glob("*.*")}
        proc = run(project, sys.executable, "-m", "pipeline.train", "dadl", check=False)
        lines = error_lines(proc.stderr)
        assert proc.returncode == 2 and len(lines) == 1 and "diverged" in lines[0] and "lower lr (now 1e+06)" in lines[0], proc.stderr[-2000:]
        assert {p: p.read_bytes() for p in before} == before
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
        runs = client.search_runs([client.get_experiment_by_name("head-pose").experiment_id],
                                  "tags.experiment = 'dadl' and tags.stage = 'train'", order_by=["attributes.start_time DESC"])
        assert runs[0].info.status == "FAILED"
    finally:
        (project / "params.yaml").write_text(original)
        run(project, sys.executable, "-m", "pipeline.configure", "dadl")
