"""End to end: `dvc repro` on a tiny setting in a copy of the repository (conftest.tiny_repro),
then the promises of the pipeline, each test on its own copy: outputs, MLflow runs, a no-op
second run, stages that re-run exactly when their code or values change, resume after a crash,
and one-line errors for bad params."""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.support import REAL_AFLW2000, ROOT, TINY, copy_project, needs_real_aflw2000, read_params, run, write_params

pytestmark = pytest.mark.slow


def test_repro_writes_every_output(tiny_repro):
    proj, _ = tiny_repro
    for rel in ("results/dadl/seed-0/model.pt", "results/dadl/seed-0/train_log.csv", "results/dadl/seed-0/predictions/aflw2000.csv",
                "results/dadl/seed-0/predictions/biwi.csv", "results/dadl/seed-0/robustness.json", "results/baseline/metrics.json",
                "reports/report.md", "reports/report.pdf", "reports/figures/gradcam_aflw2000.png"):
        assert (proj / rel).is_file(), rel
    metrics = json.loads((proj / "results/dadl/seed-0/metrics.json").read_text())
    for test_set in ("aflw2000", "biwi"):
        m = metrics[test_set]
        assert {"yaw", "pitch", "roll", "mae", "n", "n_filtered", "run_id"} <= set(m)
        assert m["mae"] == pytest.approx((m["yaw"] + m["pitch"] + m["roll"]) / 3)
        meta = json.loads((proj / f"data/crops/{test_set}/meta.json").read_text())
        assert m["n"] == meta["n"] and m["n_filtered"] == meta["n_filtered"]
    assert (proj / "reports/report.pdf").read_bytes()[:5] == b"%PDF-"
    report = (proj / "reports/report.md").read_text()
    assert metrics["aflw2000"]["run_id"] in report and "predict the training mean pose" in report


def test_second_repro_does_nothing(tiny_project):
    proj = tiny_project
    again = run(proj, "dvc", "repro")
    assert "Running stage" not in again.stdout, again.stdout


def test_report_is_stale_when_a_result_it_reads_changes(tiny_project):
    proj = tiny_project
    sweep = proj / "results/sweeps/alpha_beta/results.csv"  # written by a sweep, outside any DVC stage
    sweep.parent.mkdir(parents=True)
    sweep.write_text("number,state,alpha,beta,val_mae,epochs,train_run_id\n0,COMPLETE,1,1,5.0,1,t0\n")
    try:
        assert "report" in run(proj, "dvc", "status", "report").stdout
    finally:
        shutil.rmtree(sweep.parent.parent)
    assert "up to date" in run(proj, "dvc", "status", "report").stdout


def test_mlflow_holds_train_and_evaluate_runs(tiny_repro):
    proj, _ = tiny_repro
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("head-pose")
    assert exp.artifact_location == (proj / "mlartifacts").as_uri() and not (proj / "mlruns").exists()
    runs = {(r.data.tags["stage"], r.data.tags.get("experiment")): r for r in client.search_runs([exp.experiment_id])}
    assert {("train", "dadl"), ("evaluate", "dadl"), ("train", "bernoulli_at_nbg"), ("train", "asymmetry"), ("asymmetry", None)} <= set(runs)
    train, evaluate = runs["train", "dadl"], runs["evaluate", "dadl"]
    assert train.data.params["model"] == "dadl" and train.data.params["backbone"] == "resnet18" and train.data.params["input_size"] == "[32, 32]"
    assert "val_mae" in train.data.metrics and "data_fingerprint" in train.data.tags and "git_commit" in train.data.tags
    assert len(client.get_metric_history(train.info.run_id, "train_loss")) == TINY["train"]["epochs"]
    assert {"model.pt", "split.json", "train_log.csv"} <= {a.path for a in client.list_artifacts(train.info.run_id)}
    assert evaluate.data.tags["train_run_id"] == train.info.run_id
    assert "aflw2000_mae" in evaluate.data.metrics and "biwi_mae" in evaluate.data.metrics


# python -c TRAIN NAME OVERRIDES_JSON crash|-: trains dadl (with the overrides) into results/NAME, exiting
# with status 3 after its first epoch when told to crash; prints the MLflow run id
TRAIN = (
    "import json, sys\n"
    "from pipeline.config.experiment import resolve_experiment\n"
    "from pipeline.config.params import load_params\n"
    "from pipeline.engine.training import train_experiment\n"
    "from pipeline.core.paths import experiment_dir\n"
    "cfg = resolve_experiment(load_params(), 'dadl', overrides=json.loads(sys.argv[2]))\n"
    "def crash(epoch, mae):\n"
    "    if sys.argv[3] == 'crash' and epoch == 0: raise SystemExit(3)\n"
    "r = train_experiment(cfg, experiment_dir(sys.argv[1]), progress=False, on_epoch=crash)\n"
    "print('RUN', r['run_id'])\n"
)


def test_training_resumes_after_a_crash(tiny_project):
    proj = tiny_project
    crashed = run(proj, sys.executable, "-c", TRAIN, "resumed", '{"seed": 7}', "crash", check=False)
    assert crashed.returncode == 3
    assert not (proj / "results/resumed/model.pt").exists()  # no output from a crashed run
    resumed = run(proj, sys.executable, "-c", TRAIN, "resumed", '{"seed": 7}', "-")
    assert "resuming dadl after epoch 1" in resumed.stdout
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    run_id = resumed.stdout.split("RUN ")[1].strip()
    steps = [m.step for m in client.get_metric_history(run_id, "train_loss")]
    assert steps == [1, 2]  # one run, each epoch logged once
    assert not list((proj / "cache/resume").glob("*.pt"))  # resume state removed after success


def test_weight_average_is_the_checkpoint_and_survives_a_crash(tiny_project):
    """train.ema: model.pt holds the weight average, not the last step's weights (a run without
    it, same seed, ends elsewhere), and a run killed after its first epoch and resumed writes
    the same model.pt as one never killed (the average is kept in the resume state)."""
    import torch

    proj = tiny_project
    ema, plain = '{"ema": 0.5, "epochs": 3, "lr_milestones": [2]}', '{"epochs": 3, "lr_milestones": [2]}'
    run(proj, sys.executable, "-c", TRAIN, "whole", ema, "-")
    assert run(proj, sys.executable, "-c", TRAIN, "resumed", ema, "crash", check=False).returncode == 3
    run(proj, sys.executable, "-c", TRAIN, "resumed", ema, "-")
    run(proj, sys.executable, "-c", TRAIN, "last", plain, "-")
    whole, resumed, last = (torch.load(proj / f"results/{name}/model.pt", weights_only=False)["state_dict"]
                            for name in ("whole", "resumed", "last"))
    assert whole.keys() == last.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert not all(torch.equal(whole[k], last[k]) for k in whole if k.endswith("weight"))


@pytest.mark.parametrize("key, value, message", [
    ("backbone", "resnet19", "params.yaml experiments.broken.backbone: Input should be 'resnet18'"),
    ("model", "vit", "params.yaml experiments.broken.model: unknown model 'vit'"),
])
def test_bad_params_fail_in_one_line_without_output(tiny_project, key, value, message):
    proj = tiny_project
    params = read_params(proj)
    params["experiments"]["broken"] = {**params["experiments"]["dadl"], key: value}
    write_params(proj, params)
    proc = run(proj, sys.executable, "-m", "pipeline.configure", "broken", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr, proc.stderr
    assert not (proj / "results/broken").exists()


def test_missing_dataset_folder_is_one_line(tmp_path):
    proj = copy_project(tmp_path / "proj", TINY)
    proc = run(proj, sys.executable, "-m", "pipeline.crop", check=False)
    assert proc.returncode == 2 and "run `dvc repro download` first" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert not (proj / "data/crops").exists()


ARTIFACTS = ROOT / "tests" / "artifacts"


def test_real_section_signed_errors_match_the_evaluate_stage(tiny_repro, tmp_path):
    """The report's section "Trained on synthetic, tested on real AFLW2000" pointed at the tiny
    project's own AFLW2000-style folder (the same file format as the real one): its signed error by
    yaw range and its fitted lines are those of the evaluate stage's predictions of the same files."""
    import numpy as np
    import pandas as pd

    from pipeline.config.params import Params, validated
    from pipeline.core.metrics import YAW_RANGES
    from pipeline.reporting.build import write_report

    proj = tiny_repro[0]
    raw = read_params(proj)
    raw["report"]["real_aflw2000"] = str(proj / "data" / "raw" / "aflw2000")
    doc = write_report(validated(Params, raw, "params.yaml"), tmp_path / "reports", proj / "results", proj / "data" / "crops",
                       track=False)
    tables = doc.tables()
    label = next(r[0] for r in tables["real_aflw2000"].rows if r[0].startswith("dadl ("))
    pred = pd.read_csv(proj / "results" / "dadl" / "seed-0" / "predictions" / "aflw2000.csv")
    rows = [r for r in tables["real_aflw2000_bias"].rows if r[0] == label]
    assert [r[1] for r in rows] == [f"{lo} to {hi}" for lo, hi in zip(YAW_RANGES[:-1], YAW_RANGES[1:])]
    assert sum(int(r[2]) for r in rows) == len(pred) == int(tables["real_aflw2000"].row(label)[5])
    for (lo, hi), row in zip(zip(YAW_RANGES[:-1], YAW_RANGES[1:]), rows):
        inside = pred[(pred.true_yaw >= lo) & ((pred.true_yaw < hi) | ((hi == YAW_RANGES[-1]) & (pred.true_yaw <= hi)))]
        assert int(row[2]) == len(inside)
        for cell, a in zip(row[3:], ("yaw", "pitch", "roll")):
            if len(inside):
                assert float(cell) == pytest.approx((inside[f"pred_{a}"] - inside[f"true_{a}"]).mean(), abs=0.011), (lo, a)
            else:
                assert cell == "-"
    fit = tables["real_aflw2000_fit"].row(label)
    for cell, a in zip(fit[1:], ("yaw", "pitch", "roll")):
        intercept, sign, slope, r = re.fullmatch(r"([+-]\d+\.\d+) ([+-]) (\d+\.\d+) x true, r (-?\d+\.\d+)", cell).groups()
        intercept, slope, r = float(intercept), float(sign + slope), float(r)
        want_slope, want_intercept = np.polyfit(pred[f"true_{a}"], pred[f"pred_{a}"], 1)
        assert (intercept, slope, r) == pytest.approx(
            (want_intercept, want_slope, np.corrcoef(pred[f"true_{a}"], pred[f"pred_{a}"])[0, 1]), abs=0.011), (a, cell)


@needs_real_aflw2000
def test_evaluate_command_on_the_real_aflw2000_folder(tiny_project, tmp_path):
    """The documented command scores a checkpoint from `dvc repro` on real files, keeps exactly
    the samples within +-99 degrees, and its crops contain the faces (contact sheet kept in
    tests/artifacts/ to look at)."""
    import numpy as np
    import scipy.io

    from pipeline.config.params import Crop
    from pipeline.data import readers
    from pipeline.data.cropping import crop_dataset
    from pipeline.data.store import load_store
    from pipeline.reporting.figures import contact_sheet

    proj = tiny_project
    out = tmp_path / "real.json"
    run(proj, sys.executable, "-m", "pipeline.evaluate", "--checkpoint", "results/dadl/seed-0/model.pt",
        "--dataset", "aflw2000", "--root", str(REAL_AFLW2000), "--out", str(out))
    result = json.loads(out.read_text())
    mats = sorted(REAL_AFLW2000.glob("image*.mat"))
    kept = sum(np.all(np.abs(np.degrees(scipy.io.loadmat(m)["Pose_Para"][0, :3])) <= 99) for m in mats)
    assert result["n"] == kept and result["n_filtered"] == len(mats) - kept
    assert {"yaw", "pitch", "roll", "mae"} <= set(result) and out.with_suffix(".csv").is_file()

    cfg = Crop.model_validate({**read_params(proj)["crop"], "store_size": 96})
    crop_dataset("aflw2000", REAL_AFLW2000, "real", cfg, tmp_path / "crops", workers=1)
    store = load_store(tmp_path / "crops" / "aflw2000")
    picks = np.linspace(0, len(store) - 1, 32).astype(int)
    captions = [f"{store.labels.sample_id[i]}\n{store.ypr[i, 0]:.0f} {store.ypr[i, 1]:.0f} {store.ypr[i, 2]:.0f}" for i in picks]
    sheet = contact_sheet(np.asarray(store.images[picks]), captions, ARTIFACTS / "real_aflw2000_crops.png")
    assert sheet.stat().st_size > 10_000
    assert readers.read_aflw2000(REAL_AFLW2000).n_read == len(mats)


def test_bernoulli_with_background_trains_on_whole_frames(tiny_project):
    """The Bernoulli "BG" mode reads the biwi_frames store (whole frames, 128 x 96)."""
    proj = tiny_project
    params = read_params(proj)
    params["experiments"]["bernoulli_at_bg"]["epochs"] = 1
    write_params(proj, params)
    run(proj, sys.executable, "-m", "pipeline.configure", "bernoulli_at_bg")
    run(proj, sys.executable, "-m", "pipeline.train", "bernoulli_at_bg")
    run(proj, sys.executable, "-m", "pipeline.evaluate", "bernoulli_at_bg")
    m = json.loads((proj / "results/bernoulli_at_bg/seed-0/metrics.json").read_text())["biwi_frames"]
    frames = json.loads((proj / "data/crops/biwi_frames/meta.json").read_text())
    assert frames["store_size"] == [128, 96] and 0 < m["n"] < frames["n"] and m["split"]["test"]


def test_sim2real_pair_trains_on_its_own_crop_size_and_levels_pitch_on_a_folder(tiny_project, tmp_path):
    """params.yaml's sim2real pair at one epoch each. The crop stage stored every dataset at
    crop.extra_store_sizes too (not BIWI's frames); sim2real (store_size) trains and tests on those
    crops: its 96 px input is larger than the tiny default store could give. Scoring a folder levels
    its pitch by sim2real_level's run of the same seed, exactly as --pitch-level-from that
    checkpoint does; --no-pitch-level scores it alone; without that checkpoint it is one line and
    exit status 2. The report's real section shows the levelled numbers and says so."""
    import numpy as np
    import pandas as pd

    from pipeline.config.params import Params, validated
    from pipeline.reporting.build import write_report

    proj = tiny_project
    params = read_params(proj)
    (side,) = params["crop"]["extra_store_sizes"]
    for dataset in ("300w_lp", "aflw2000", "biwi"):
        meta = json.loads((proj / f"data/crops/{side}px/{dataset}/meta.json").read_text())
        default = json.loads((proj / f"data/crops/{dataset}/meta.json").read_text())
        assert meta["store_size"] == [side, side] and default["store_size"] != meta["store_size"] and meta["n"] == default["n"]
    assert not (proj / f"data/crops/{side}px/biwi_frames").exists()
    assert params["experiments"]["sim2real"]["input_size"] > params["crop"]["store_size"]
    for name in ("sim2real_level", "sim2real"):
        params["experiments"][name].update(epochs=1, lr_milestones=[1])
    write_params(proj, params)
    for name in ("sim2real_level", "sim2real"):
        for stage in ("configure", "train", "evaluate"):
            run(proj, sys.executable, "-m", f"pipeline.{stage}", name)
    wide = json.loads((proj / f"data/crops/{side}px/aflw2000/meta.json").read_text())
    assert json.loads((proj / "results/sim2real/seed-0/metrics.json").read_text())["aflw2000"]["n"] == wide["n"]

    folder = proj / "data" / "raw" / "aflw2000"  # the tiny AFLW2000-style folder (the real one's file format)
    reference = proj / "results/sim2real_level/seed-0/model.pt"
    scored = {}
    for case, flags in (("own", []), ("given", ["--pitch-level-from", str(reference)]), ("alone", ["--no-pitch-level"])):
        out = tmp_path / f"{case}.json"
        run(proj, sys.executable, "-m", "pipeline.evaluate", "--checkpoint", "results/sim2real/seed-0/model.pt", "--dataset", "aflw2000",
            "--root", str(folder), "--out", str(out), *flags)
        scored[case] = (json.loads(out.read_text()), pd.read_csv(out.with_suffix(".csv")))
    (own, own_pred), (given, given_pred), (alone, alone_pred) = scored["own"], scored["given"], scored["alone"]
    assert alone["pitch_shift"] is None and own["pitch_shift"] == pytest.approx(given["pitch_shift"]) and own["pitch_shift"] != 0
    assert Path(own["pitch_level_from"]).resolve() == reference.resolve()
    assert np.allclose(own_pred.pred_pitch, alone_pred.pred_pitch - own["pitch_shift"], atol=1e-3)
    assert np.allclose(own_pred[["pred_yaw", "pred_roll"]], alone_pred[["pred_yaw", "pred_roll"]], atol=1e-4)
    assert own["pitch"] != pytest.approx(alone["pitch"])

    params["report"]["real_aflw2000"] = str(folder)
    doc = write_report(validated(Params, params, "params.yaml"), tmp_path / "reports", proj / "results", proj / "data" / "crops",
                       track=False)
    row = next(r for r in doc.tables()["real_aflw2000"].rows if r[0].startswith("sim2real (dadl, mobilenet_v2"))
    assert f"pitch levelled from sim2real_level seed 0 (shift {own['pitch_shift']:+.2f})" in row[0]
    assert [float(v) for v in row[1:5]] == pytest.approx([own[k] for k in ("yaw", "pitch", "roll", "mae")], abs=0.011)

    reference.rename(reference.with_suffix(".away"))
    missing = tmp_path / "missing.json"
    proc = run(proj, sys.executable, "-m", "pipeline.evaluate", "--checkpoint", "results/sim2real/seed-0/model.pt", "--dataset",
               "aflw2000", "--root", str(folder), "--out", str(missing), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "sim2real_level/seed-0/model.pt: missing" in proc.stderr and "--no-pitch-level" in proc.stderr
    assert not missing.exists() and not missing.with_suffix(".csv").exists()


def test_protocol_p2_trains_and_tests_on_disjoint_biwi_sequences(tiny_project):
    """Switches the tiny project to BIWI 70/30 and reproduces."""
    import pandas as pd

    proj = tiny_project
    params = read_params(proj)
    params["train"]["protocol"] = "p2"
    params["run"] = ["dadl"]  # one model is enough here, and keeps the suite short
    write_params(proj, params)
    # the tiny set's p2 training data is one BIWI sequence of 5 frames: the asymmetry curves
    # need 1-degree bins to have the 5 points a fit takes
    params["asymmetry"]["bin_width"] = 1
    write_params(proj, params)
    out = run(proj, "dvc", "repro", "evaluate", "baseline").stdout
    assert "Running stage 'crop'" not in out and "Running stage 'train@dadl" in out
    metrics = json.loads((proj / "results/dadl/seed-0/metrics.json").read_text())
    assert set(metrics) == {"biwi"} and metrics["biwi"]["protocol"] == "p2"
    split = metrics["biwi"]["split"]
    assert split["train"] and split["test"] and not set(split["train"]) & set(split["test"])
    tested = set(pd.read_csv(proj / "results/dadl/seed-0/predictions/biwi.csv", dtype={"sequence": str})["sequence"])
    assert tested == set(split["test"])
    baseline = json.loads((proj / "results/baseline/metrics.json").read_text())
    assert baseline["p2"]["biwi"]["n"] == metrics["biwi"]["n"]


def test_torchrun_two_cpu_processes_write_one_checkpoint_and_one_run(tiny_project):
    """DistributedDataParallel on CPU (gloo): both ranks train, only rank 0 logs and saves."""
    import mlflow

    proj = tiny_project
    params = read_params(proj)
    params["experiments"]["ddp"] = {**params["experiments"]["dadl"], "epochs": 1}
    write_params(proj, params)
    run(proj, sys.executable, "-m", "pipeline.configure", "ddp")
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = run(proj, str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "pipeline.train", "ddp")
    assert proc.stdout.count("ddp seed 0: trained") == 1
    assert sorted(p.relative_to(proj / "results/ddp").as_posix() for p in (proj / "results/ddp").rglob("*")) == \
        ["config.json", "seed-0", "seed-0/model.pt", "seed-0/train_log.csv"]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("head-pose")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.experiment = 'ddp'")
    assert len(runs) == 1 and runs[0].data.tags["world_size"] == "2"


def test_bf16_training_on_cpu_gives_a_finite_loss_and_a_checkpoint_that_evaluates(tiny_project):
    import math

    import pandas as pd

    proj = tiny_project
    params = read_params(proj)
    params["experiments"]["dadl"].update(precision="bf16", epochs=2)
    write_params(proj, params)
    for stage in ("configure", "train", "evaluate"):
        run(proj, sys.executable, "-m", f"pipeline.{stage}", "dadl")
    log = pd.read_csv(proj / "results/dadl/seed-0/train_log.csv")
    assert len(log) == 2 and all(math.isfinite(v) for v in log.train_loss)
    metrics = json.loads((proj / "results/dadl/seed-0/metrics.json").read_text())
    assert all(math.isfinite(m["mae"]) for m in metrics.values())
    assert json.loads((proj / "results/dadl/config.json").read_text())["precision"] == "bf16"


def test_mlflow_views_datasets_logged_models_and_the_report_run(tiny_repro):
    """What the MLflow UI shows after a tiny pipeline run, read through its client: the experiment
    opens on model training, every train and evaluate run names its datasets, each trained model is
    an MLflow PyTorch model that loads back and predicts like the checkpoint, the report has a run."""
    import mlflow
    import numpy as np
    import torch

    from pipeline.data.batches import make_batch, to_unit_float
    from pipeline.data.store import load_store
    from pipeline.engine.inference import load_checkpoint

    proj, _ = tiny_repro
    mlflow.set_tracking_uri(f"sqlite:///{proj / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("head-pose")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([exp.experiment_id], "tags.experiment = 'dadl'")
    train = next(r for r in runs if r.data.tags["stage"] == "train")
    evaluate = next(r for r in runs if r.data.tags["stage"] == "evaluate")
    def contexts(run):
        return {(d.dataset.name, {t.key: t.value for t in d.tags}.get("mlflow.data.context")) for d in run.inputs.dataset_inputs}

    assert contexts(train) == {("300w_lp", "training"), ("300w_lp (validation groups)", "validation")}
    assert {d.dataset.digest for d in train.inputs.dataset_inputs} == {train.data.tags["data_fingerprint"]}
    assert contexts(evaluate) == {("aflw2000", "test"), ("biwi", "test")}
    assert train.data.tags["seed"] == "0" and train.data.tags["version.torch"].startswith(torch.__version__.split("+")[0])

    logged = mlflow.search_logged_models(experiment_ids=[exp.experiment_id], filter_string=f"source_run_id = '{train.info.run_id}'",
                                         output_format="list")
    assert len(logged) == 1
    store = load_store(proj / "data/crops/aflw2000")
    images = to_unit_float(make_batch(store, np.arange(5), (32, 32))[0]).contiguous()
    served = mlflow.pyfunc.load_model(logged[0].model_uri).predict(images.numpy())
    model, _ = load_checkpoint(proj / "results/dadl/seed-0/model.pt")
    with torch.no_grad():
        expected = model.predict(model(images)).numpy()
    assert np.asarray(served).shape == (5, 3) and np.allclose(np.asarray(served), expected, atol=1e-3)

    report = client.search_runs([exp.experiment_id], "tags.stage = 'report'")
    assert len(report) == 1
    artifacts = {a.path for a in client.list_artifacts(report[0].info.run_id)}
    assert {"report.md", "report.pdf", "figures"} <= artifacts
