"""Baseline stage: always predict the training set's mean pose.

    python -m pipeline.baseline
writes results/baseline/metrics.json in the evaluate stage's format, so a reader can see how
much a model learned beyond the pose prior.
"""
from __future__ import annotations

import numpy as np

from pipeline.atomic import write_json
from pipeline.errors import cli
from pipeline.evaluation import score, write_predictions
from pipeline.params import load_params, section
from pipeline.paths import CROPS, experiment_dir
from pipeline.store import load_store


def baseline(train_set: str, test_sets: list[str]) -> dict:
    mean = load_store(CROPS / train_set).ypr.mean(axis=0)
    out = experiment_dir("baseline")
    metrics = {}
    for test_set in test_sets:
        store = load_store(CROPS / test_set)
        pred = np.tile(mean, (len(store), 1))
        write_predictions(out / "predictions" / f"{test_set}.csv", store, pred)
        metrics[test_set] = {**score(store, pred), "train_mean_ypr": [float(v) for v in mean]}
    write_json(out / "metrics.json", metrics)
    return metrics


@cli
def main():
    train = section(load_params(), "train")
    for test_set, m in baseline(train["train_set"], train["test_sets"]).items():
        print(f"mean-pose baseline on {test_set}: MAE {m['mae']:.2f} deg, n={m['n']}")


if __name__ == "__main__":
    main()
