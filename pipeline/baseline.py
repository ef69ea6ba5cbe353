"""Baseline stage: always predict the training set's mean pose.

    python -m pipeline.baseline
writes results/baseline/metrics.json: {protocol: {test set: evaluate's metrics}} for every
protocol an experiment of `run` uses, so a reader can see how much a model learned beyond the
pose prior.
"""
from __future__ import annotations

import numpy as np

from pipeline.atomic import write_json
from pipeline.errors import cli
from pipeline.evaluation import score, write_predictions
from pipeline.params import experiment_config, load_params, section
from pipeline.paths import CROPS, experiment_dir
from pipeline.protocols import draw_split, protocol_config, rows
from pipeline.store import load_store


def protocol_baseline(params: dict, name: str) -> tuple[dict, dict]:
    train = section(params, "train")
    protocol = protocol_config(params, name)
    store = load_store(CROPS / protocol["train"])
    split = draw_split(protocol, store.labels["sequence"], int(train["split_seed"]), train["split_by"], store.meta.get("source", ""))
    mean = store.ypr[rows(store.labels, protocol, split, protocol["train"], "train")].mean(axis=0)
    out = experiment_dir("baseline")
    metrics, criteria = {}, {}
    for test_set in protocol["test"]:
        test_store = load_store(CROPS / test_set)
        idx = rows(test_store.labels, protocol, split, test_set, "test")
        pred = np.tile(mean, (len(idx), 1))
        write_predictions(out / "predictions" / f"{name}-{test_set}.csv", test_store, idx, pred)
        metrics[test_set], criteria[test_set] = score(test_store, idx, pred)
        metrics[test_set].update(train_mean_ypr=[float(v) for v in mean], protocol=protocol["name"])
    return metrics, criteria


def baseline(params: dict) -> dict:
    protocols = sorted({experiment_config(params, name)["protocol"]["name"] for name in params.get("run") or []}
                       | {section(params, "train")["protocol"]})
    metrics, criteria = {}, {}
    for name in protocols:
        metrics[name], criteria[name] = protocol_baseline(params, name)
    out = experiment_dir("baseline")
    write_json(out / "metrics.json", metrics)
    write_json(out / "criteria.json", criteria)
    return metrics


@cli
def main():
    for protocol, tests in baseline(load_params()).items():
        for test_set, m in tests.items():
            print(f"mean-pose baseline, {protocol} on {test_set}: MAE {m['mae']:.2f} deg, n={m['n']}")


if __name__ == "__main__":
    main()
