"""Evaluate a checkpoint.

Stage (an experiment of params.yaml, on the test sets of its protocol):
    python -m pipeline.evaluate EXPERIMENT
writes results/EXPERIMENT/metrics.json ({test set: yaw, pitch, roll, mae, n, n_filtered, ...}),
criteria.json (Criteria II and III) and predictions/<test set>.csv.

Any checkpoint on any dataset folder (cropped with the checkpoint's own crop settings):
    python -m pipeline.evaluate --checkpoint CKPT --dataset aflw2000 --root DIR --out FILE.json
writes FILE.json (yaw, pitch, roll, mae in degrees, n after the +-99 filter, n_filtered,
criteria II and III) and the per-sample predictions beside it as FILE.csv.
Both log an MLflow run.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pipeline import tracking
from pipeline.atomic import write_json
from pipeline.errors import ConfigError, cli
from pipeline.evaluation import score, write_predictions
from pipeline.inference import load_checkpoint, predict
from pipeline.paths import CROPS, experiment_dir
from pipeline.protocols import rows
from pipeline.store import fingerprint, load_store

DATASETS = ("300w_lp", "aflw2000", "biwi", "biwi_npz")


def _log(name: str, ckpt: dict, metrics: dict, artifacts: list[Path], tags: dict, parent_run_id: str | None = None) -> str:
    tags = {"stage": "evaluate", "train_run_id": ckpt.get("train_run_id", ""), **tags}
    with tracking.run(f"evaluate:{name}", tags, parent_run_id=parent_run_id) as (mlflow, active):
        mlflow.log_params(tracking.flat_params(ckpt["config"]))
        mlflow.log_metrics({f"{ts}_{k}": v for ts, m in metrics.items() for k, v in m.items() if isinstance(v, (int, float))})
        for path in artifacts:
            (mlflow.log_artifacts if path.is_dir() else mlflow.log_artifact)(str(path), *(["predictions"] if path.is_dir() else []))
        return active.info.run_id


def evaluate_experiment(name: str) -> dict:
    return evaluate_checkpoint(experiment_dir(name))


def evaluate_checkpoint(out: Path, parent_run_id: str | None = None, progress: bool = True) -> dict:
    """Score out/model.pt on its protocol's test sets; write metrics.json, criteria.json and
    predictions/ into `out`, and log an MLflow run (nested under parent_run_id if given)."""
    model, ckpt = load_checkpoint(out / "model.pt")
    config, split = ckpt["config"], ckpt.get("split")
    name = config["name"]
    protocol = config["protocol"]
    metrics, criteria, fps = {}, {}, {}
    for test_set in protocol["test"]:
        store = load_store(CROPS / test_set)
        idx = rows(store.labels, protocol, split, test_set, "test")
        pred = predict(model, store, idx, config["input_size"], progress=f"evaluate {name} on {test_set}" if progress else None)
        write_predictions(out / "predictions" / f"{test_set}.csv", store, idx, pred)
        metrics[test_set], criteria[test_set] = score(store, idx, pred)
        metrics[test_set]["protocol"] = protocol["name"]
        if split is not None and test_set == protocol["train"]:
            metrics[test_set]["split"] = split
        fps[test_set] = fingerprint(store.path)
    write_json(out / "criteria.json", criteria)
    tags = {"experiment": name, "protocol": protocol["name"], **{f"data_fingerprint.{k}": v for k, v in fps.items()}}
    run_id = _log(name, ckpt, metrics, [out / "criteria.json", out / "predictions"], tags, parent_run_id)
    for m in metrics.values():
        m["run_id"] = run_id
    write_json(out / "metrics.json", metrics)
    return metrics


def evaluate_folder(checkpoint: Path, dataset: str, root: Path, out: Path) -> dict:
    from pipeline.crop import crop_dataset

    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    model, ckpt = load_checkpoint(checkpoint)
    config = ckpt["config"]
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        crop_dataset(dataset, Path(root), str(root), config["crop"], Path(tmp), role="test")
        store = load_store(Path(tmp) / dataset)
        idx = range(len(store))
        pred = predict(model, store, idx, config["input_size"], progress=f"evaluate on {dataset}")
        metrics, criteria = score(store, list(idx), pred)
        write_predictions(out.with_suffix(".csv"), store, list(idx), pred)
        data_fp = fingerprint(store.path)
    result = {**metrics, **criteria, "checkpoint": str(checkpoint), "root": str(root), "experiment": config["name"]}
    result["run_id"] = _log(config["name"], ckpt, {dataset: metrics}, [out.with_suffix(".csv")],
                            {"experiment": config["name"], "dataset_root": str(root), f"data_fingerprint.{dataset}": data_fp})
    write_json(out, result)
    return result


def _print(label: str, m: dict) -> None:
    print(f"{label}: MAE {m['mae']:.2f} (yaw {m['yaw']:.2f}, pitch {m['pitch']:.2f}, roll {m['roll']:.2f}) deg, n={m['n']}, {m['n_filtered']} filtered out")


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?", help="name under 'experiments' in params.yaml (reads results/NAME/model.pt)")
    parser.add_argument("--checkpoint", type=Path, help="any model.pt written by the harness")
    parser.add_argument("--dataset", help=f"format of --root: {', '.join(DATASETS)}")
    parser.add_argument("--root", type=Path, help="dataset folder (for biwi: the hpdb folder; for biwi_npz: a .npz file or a folder of them)")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    args = parser.parse_args(argv)
    folder_mode = [args.checkpoint, args.dataset, args.root, args.out]
    if args.experiment and not any(folder_mode):
        for test_set, m in evaluate_experiment(args.experiment).items():
            _print(f"{args.experiment} on {test_set}", m)
    elif not args.experiment and all(folder_mode):
        _print(f"{args.checkpoint} on {args.root}", evaluate_folder(args.checkpoint, args.dataset, args.root, args.out))
    else:
        parser.error("give either EXPERIMENT, or all of --checkpoint, --dataset, --root and --out")


if __name__ == "__main__":
    main()
