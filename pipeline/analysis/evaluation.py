"""Evaluating a checkpoint: on its protocol's test sets (the evaluate stage, sweep trials) or on
any dataset folder, cropped with the checkpoint's own crop settings. Both log an MLflow run.

- evaluate_checkpoint(out): out/metrics.json ({test set: yaw, pitch, roll, mae, n, n_filtered,
  ...}), criteria.json (Criteria II and III) and predictions/<test set>.csv;
- evaluate_folder(checkpoint, dataset, root, out): out (a JSON file with Criterion I, n after the
  +-99 filter, n_filtered, Criteria II and III) and the per-sample predictions beside it as .csv.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.analysis.scoring import score, write_predictions
from pipeline.config.params import DATASETS
from pipeline.core.atomic import write_json
from pipeline.core.errors import ConfigError
from pipeline.core.paths import CROPS
from pipeline.data.cropping import crop_dataset
from pipeline.data.protocols import rows
from pipeline.data.store import fingerprint, load_store
from pipeline.engine import tracking
from pipeline.engine.inference import Checkpoint, load_checkpoint, predict


def _log(name: str, ckpt: Checkpoint, metrics: dict, artifacts: list[Path], tags: dict, parent_run_id: str | None = None) -> str:
    tags = {"stage": "evaluate", "train_run_id": ckpt.train_run_id, **tags}
    with tracking.run(f"evaluate:{name}", tags, parent_run_id=parent_run_id) as (mlflow, active):
        mlflow.log_params(tracking.flat_params(ckpt.experiment.summary()))
        mlflow.log_metrics({f"{ts}_{k}": v for ts, m in metrics.items() for k, v in m.items() if isinstance(v, (int, float))})
        for path in artifacts:
            (mlflow.log_artifacts if path.is_dir() else mlflow.log_artifact)(str(path), *(["predictions"] if path.is_dir() else []))
        return active.info.run_id


def evaluate_checkpoint(out: Path, parent_run_id: str | None = None, progress: bool = True) -> dict:
    """Score out/model.pt on its protocol's test sets; write metrics.json, criteria.json and
    predictions/ into `out`, and log an MLflow run (nested under parent_run_id if given)."""
    model, ckpt = load_checkpoint(out / "model.pt")
    exp, split = ckpt.experiment, ckpt.split
    name = exp.name
    protocol = exp.protocol
    metrics, criteria, fps = {}, {}, {}
    for test_set in protocol.test:
        store = load_store(CROPS / test_set)
        idx = rows(store.labels, protocol, split, test_set, "test")
        pred = predict(model, store, idx, exp.input_size, progress=f"evaluate {name} on {test_set}" if progress else None)
        write_predictions(out / "predictions" / f"{test_set}.csv", store, idx, pred)
        metrics[test_set], criteria[test_set] = score(store, idx, pred)
        metrics[test_set]["protocol"] = protocol.name
        if split is not None and test_set == protocol.train:
            metrics[test_set]["split"] = split
        fps[test_set] = fingerprint(store.path)
    write_json(out / "criteria.json", criteria)
    tags = {"experiment": name, "protocol": protocol.name, **{f"data_fingerprint.{k}": v for k, v in fps.items()}}
    run_id = _log(name, ckpt, metrics, [out / "criteria.json", out / "predictions"], tags, parent_run_id)
    for m in metrics.values():
        m["run_id"] = run_id
    write_json(out / "metrics.json", metrics)
    return metrics


def evaluate_folder(checkpoint: Path, dataset: str, root: Path, out: Path) -> dict:
    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    model, ckpt = load_checkpoint(checkpoint)
    exp = ckpt.experiment
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        crop_dataset(dataset, Path(root), str(root), exp.crop, Path(tmp), role="test")
        store = load_store(Path(tmp) / dataset)
        idx = range(len(store))
        pred = predict(model, store, idx, exp.input_size, progress=f"evaluate on {dataset}")
        metrics, criteria = score(store, list(idx), pred)
        write_predictions(out.with_suffix(".csv"), store, list(idx), pred)
        data_fp = fingerprint(store.path)
    result = {**metrics, **criteria, "checkpoint": str(checkpoint), "root": str(root), "experiment": exp.name}
    result["run_id"] = _log(exp.name, ckpt, {dataset: metrics}, [out.with_suffix(".csv")],
                            {"experiment": exp.name, "dataset_root": str(root), f"data_fingerprint.{dataset}": data_fp})
    write_json(out, result)
    return result
