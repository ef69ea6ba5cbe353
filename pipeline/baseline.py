"""Baseline stage: always predict the training set's mean pose.

    python -m pipeline.baseline
writes results/baseline/metrics.json in the evaluate stage's format (for the protocol named in
params.yaml train.protocol), so a reader can see how much a model learned beyond the pose prior.
"""
from __future__ import annotations

import numpy as np

from pipeline.atomic import write_json
from pipeline.errors import cli
from pipeline.evaluation import score, write_predictions
from pipeline.params import load_params, section
from pipeline.paths import CROPS, experiment_dir
from pipeline.protocols import draw_split, protocol_config, rows
from pipeline.store import load_store


def baseline(params: dict) -> dict:
    train = section(params, "train")
    protocol = protocol_config(params, train["protocol"])
    store = load_store(CROPS / protocol["train"])
    split = draw_split(protocol, store.labels["sequence"], int(train["split_seed"]), train["split_by"], store.meta.get("source", ""))
    mean = store.ypr[rows(store.labels, protocol, split, protocol["train"], "train")].mean(axis=0)
    out = experiment_dir("baseline")
    metrics, criteria = {}, {}
    for test_set in protocol["test"]:
        test_store = load_store(CROPS / test_set)
        idx = rows(test_store.labels, protocol, split, test_set, "test")
        pred = np.tile(mean, (len(idx), 1))
        write_predictions(out / "predictions" / f"{test_set}.csv", test_store, idx, pred)
        metrics[test_set], criteria[test_set] = score(test_store, idx, pred)
        metrics[test_set].update(train_mean_ypr=[float(v) for v in mean], protocol=protocol["name"])
    write_json(out / "metrics.json", metrics)
    write_json(out / "criteria.json", criteria)
    return metrics


@cli
def main():
    for test_set, m in baseline(load_params()).items():
        print(f"mean-pose baseline on {test_set}: MAE {m['mae']:.2f} deg, n={m['n']}")


if __name__ == "__main__":
    main()
