"""Evaluate stage: score an experiment's checkpoint on each of its test sets.

    python -m pipeline.evaluate EXPERIMENT
writes results/EXPERIMENT/metrics.json ({test set: yaw, pitch, roll, mae, n, n_filtered}) and
results/EXPERIMENT/predictions/<test set>.csv, and logs both to MLflow.
"""
from __future__ import annotations

import argparse

from pipeline import tracking
from pipeline.atomic import write_json
from pipeline.errors import cli
from pipeline.evaluation import score, write_predictions
from pipeline.inference import load_checkpoint, predict
from pipeline.paths import CROPS, experiment_dir
from pipeline.store import fingerprint, load_store


def evaluate_experiment(name: str) -> dict:
    out = experiment_dir(name)
    model, ckpt = load_checkpoint(out / "model.pt")
    config = ckpt["config"]
    metrics, fps = {}, {}
    for test_set in config["test_sets"]:
        store = load_store(CROPS / test_set)
        pred = predict(model, store, range(len(store)), int(config["input_size"]), progress=f"evaluate {name} on {test_set}")
        write_predictions(out / "predictions" / f"{test_set}.csv", store, pred)
        metrics[test_set] = score(store, pred)
        fps[test_set] = fingerprint(store.path)
    tags = {"stage": "evaluate", "experiment": name, "train_run_id": ckpt["train_run_id"],
            **{f"data_fingerprint.{k}": v for k, v in fps.items()}}
    with tracking.run(f"evaluate:{name}", tags) as (mlflow, active):
        mlflow.log_params(tracking.flat_params(config))
        mlflow.log_metrics({f"{ts}_{k}": v for ts, m in metrics.items() for k, v in m.items() if isinstance(v, (int, float))})
        for ts, m in metrics.items():
            m["run_id"] = active.info.run_id
        write_json(out / "metrics.json", metrics)
        mlflow.log_artifact(str(out / "metrics.json"))
        mlflow.log_artifacts(str(out / "predictions"), artifact_path="predictions")
    return metrics


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="name under 'experiments' in params.yaml (reads results/NAME/model.pt)")
    args = parser.parse_args(argv)
    for test_set, m in evaluate_experiment(args.experiment).items():
        print(f"{args.experiment} on {test_set}: MAE {m['mae']:.2f} (yaw {m['yaw']:.2f}, pitch {m['pitch']:.2f}, roll {m['roll']:.2f}) deg, n={m['n']}, {m['n_filtered']} filtered out")


if __name__ == "__main__":
    main()
