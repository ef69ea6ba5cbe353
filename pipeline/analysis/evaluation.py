"""Evaluating a checkpoint: on its protocol's test sets (the evaluate stage, sweep trials) or on
any dataset folder, cropped with the checkpoint's own crop settings. Both log an MLflow run.

- evaluate_checkpoint(out): out/metrics.json ({test set: yaw, pitch, roll, mae, n, n_filtered,
  ...}), criteria.json (Criteria II and III) and predictions/<test set>.csv;
- evaluate_folder(checkpoint, dataset, root, out, flip, pitch_view, pitch_level_from): out (a JSON
  file with Criterion I, n after the +-99 filter, n_filtered, Criteria II and III) and the
  per-sample predictions beside it as .csv. Both score with test-time flip augmentation when the
  experiment says test_flip, and read pitch from a coarser view when it says pitch_view
  (evaluate_folder's flip and pitch_view override them). pitch_level_from, a second checkpoint,
  shifts every pitch by one amount so that its median over the folder's images matches that
  checkpoint's (pitch_level_shift): a label-free alignment on the scored images themselves. Without
  it, an experiment that names one in pitch_level_from takes that experiment's run of the same seed
  (pitch_level_checkpoint), unless level is False.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.analysis.levelling import level_pitch, pitch_level_checkpoint
from pipeline.analysis.scoring import predictions_table, save_predictions, score
from pipeline.config.params import DATASETS
from pipeline.core import failpoints
from pipeline.core.atomic import atomic_dir, atomic_file
from pipeline.core.errors import ConfigError
from pipeline.core.paths import crop_store
from pipeline.data.cropping import cropped_folder
from pipeline.data.protocols import rows
from pipeline.data.store import fingerprint, load_store
from pipeline.engine import tracking
from pipeline.engine.inference import Checkpoint, load_checkpoint, pitch_view_for, predict_as_trained


def _log(mlflow, ckpt: Checkpoint, metrics: dict, tags: dict) -> str:
    mlflow.set_tags({"stage": "evaluate", "train_run_id": ckpt.train_run_id, **tags})
    mlflow.log_params(tracking.flat_params(ckpt.experiment.summary()))
    mlflow.log_metrics({f"{ts}_{k}": v for ts, m in metrics.items() for k, v in m.items() if isinstance(v, (int, float))})
    return mlflow.active_run().info.run_id


def evaluate_checkpoint(out: Path, parent_run_id: str | None = None, progress: bool = True) -> dict:
    """Score out/model.pt on its protocol's test sets; write metrics.json, criteria.json and
    predictions/ into `out`, and log an MLflow run (nested under parent_run_id if given).
    Nothing is written, and the run ends FAILED, unless every step succeeds."""
    model, ckpt = load_checkpoint(out / "model.pt")
    exp, split = ckpt.experiment, ckpt.split
    name = exp.name
    protocol = exp.protocol
    metrics, criteria, fps, tables, stores = {}, {}, {}, {}, {}
    for test_set in protocol.test:
        store = stores[test_set] = load_store(crop_store(test_set, exp.store_size))
        idx = rows(store.labels, protocol, split, test_set, "test")
        pred = predict_as_trained(model, exp, store, idx, progress=f"evaluate {name} on {test_set}" if progress else None)
        tables[test_set] = predictions_table(store, idx, pred)
        metrics[test_set], criteria[test_set] = score(store, idx, pred)
        metrics[test_set]["protocol"] = protocol.name
        if split is not None and test_set == protocol.train:
            metrics[test_set]["split"] = split
        fps[test_set] = fingerprint(store.path)
    tags = {"experiment": name, "seed": exp.seed, "protocol": protocol.name, **{f"data_fingerprint.{k}": v for k, v in fps.items()}}
    with atomic_dir(out / "predictions") as staged, atomic_file(out / "criteria.json") as criteria_file, \
            atomic_file(out / "metrics.json") as metrics_file, tracking.run(f"evaluate:{name}", {}, parent_run_id=parent_run_id) as (mlflow, _):
        for test_set, table in tables.items():
            save_predictions(table, staged / f"{test_set}.csv")
        criteria_file.write_text(json.dumps(criteria, indent=2, sort_keys=True) + "\n")
        run_id = _log(mlflow, ckpt, metrics, tags)
        for test_set, store in stores.items():
            tracking.log_dataset(mlflow, test_set, store.path, fps[test_set], "test", store.meta.get("source", "unknown"))
        mlflow.log_dict(criteria, "criteria.json")
        mlflow.log_artifacts(str(staged), "predictions")
        for m in metrics.values():
            m["run_id"] = run_id
        metrics_file.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        failpoints.hit("evaluate.before_commit")
    return metrics


def evaluate_folder(checkpoint: Path, dataset: str, root: Path, out: Path, flip: bool | None = None,
                    pitch_view: int | None = None, pitch_level_from: Path | None = None, level: bool = True) -> dict:
    """Score `checkpoint` on the dataset folder `root`; write `out` (JSON) and the per-sample
    predictions beside it (.csv), only once everything succeeded. `flip`: test-time flip
    augmentation (pipeline.engine.inference.predict) on or off; `pitch_view`: pitch read from a
    view this many pixels wide, 0 for none; None: as the checkpoint's experiment says (test_flip,
    pitch_view). Both are recorded in `out`. `pitch_level_from`: a second checkpoint whose pitch
    sets the level of this one's (pitch_level_shift over the folder's images); the shift is
    recorded in `out` as pitch_shift. Without it, the experiment's own pitch_level_from, unless
    `level` is False (pitch_level_checkpoint)."""
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    out = Path(out)
    if out.is_dir() or out.with_suffix(".csv").is_dir():
        raise ConfigError(f"--out {out}: a folder is in the way; give the path of a .json file to write (the .csv goes beside it)")
    if out.suffix == ".csv":
        raise ConfigError(f"--out {out}: give the .json file to write; the per-sample .csv goes beside it")
    model, ckpt = load_checkpoint(checkpoint)
    exp = ckpt.experiment
    flip = exp.test_flip if flip is None else flip
    view = pitch_view_for(exp, pitch_view)
    pitch_level_from = pitch_level_checkpoint(exp, pitch_level_from, level)
    with cropped_folder(dataset, root, exp.crop) as store:
        idx = np.arange(len(store))
        pred = predict_as_trained(model, exp, store, idx, flip=flip, pitch_view=pitch_view, progress=f"evaluate on {dataset}")
        shift = None
        if pitch_level_from is not None:
            shift = level_pitch(pred, pitch_level_from, dataset, root, store.labels["sample_id"])
        metrics, criteria = score(store, idx, pred)
        table = predictions_table(store, idx, pred)
        data_fp = fingerprint(store.path)
    result = {**metrics, **criteria, "checkpoint": str(checkpoint), "root": str(root), "experiment": exp.name, "test_flip": flip,
              "pitch_view": view, "pitch_level_from": None if pitch_level_from is None else str(pitch_level_from), "pitch_shift": shift}
    tags = {"experiment": exp.name, "dataset_root": str(root), f"data_fingerprint.{dataset}": data_fp, "test_flip": flip,
            "pitch_view": view, **({} if shift is None else {"pitch_level_from": str(pitch_level_from), "pitch_shift": f"{shift:.4f}"})}
    with atomic_file(out.with_suffix(".csv")) as csv_file, atomic_file(out) as json_file, \
            tracking.run(f"evaluate:{exp.name}", {}) as (mlflow, _):
        save_predictions(table, csv_file)
        result["run_id"] = _log(mlflow, ckpt, {dataset: metrics}, tags)
        tracking.log_dataset(mlflow, dataset, Path(root), data_fp, "test", str(root))
        mlflow.log_text(csv_file.read_text(), f"predictions/{out.with_suffix('.csv').name}")
        json_file.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        failpoints.hit("evaluate.before_commit")
    return result
