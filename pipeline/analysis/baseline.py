"""The mean-pose baseline: always predict the training set's mean pose, so a reader can see how
much a model learned beyond the pose prior of its protocol."""
from __future__ import annotations

import numpy as np

from pipeline.analysis.scoring import score, write_predictions
from pipeline.config.params import Params, Protocol
from pipeline.core.atomic import write_json
from pipeline.core.paths import CROPS, experiment_dir
from pipeline.data.protocols import draw_split, rows
from pipeline.data.store import load_store


def protocol_baseline(params: Params, name: str) -> tuple[dict, dict]:
    train = params.train
    protocol = Protocol(name=name, **params.protocols[name].model_dump())
    store = load_store(CROPS / protocol.train)
    split = draw_split(protocol, store.labels["sequence"], train.split_seed, train.split_by, store.meta.get("source", ""))
    mean = store.ypr[rows(store.labels, protocol, split, protocol.train, "train")].mean(axis=0)
    out = experiment_dir("baseline")
    metrics, criteria = {}, {}
    for test_set in protocol.test:
        test_store = load_store(CROPS / test_set)
        idx = rows(test_store.labels, protocol, split, test_set, "test")
        pred = np.tile(mean, (len(idx), 1))
        write_predictions(out / "predictions" / f"{name}-{test_set}.csv", test_store, idx, pred)
        metrics[test_set], criteria[test_set] = score(test_store, idx, pred)
        metrics[test_set].update(train_mean_ypr=[float(v) for v in mean], protocol=protocol.name)
    return metrics, criteria


def used_protocols(params: Params) -> list[str]:
    """The protocols of the experiments in `run`, and train.protocol."""
    names = {params.experiments[name].get("protocol", params.train.protocol) for name in params.run}
    return sorted(names | {params.train.protocol})


def baseline(params: Params) -> dict:
    """results/baseline/metrics.json: {protocol: {test set: metrics}} for every protocol in use."""
    metrics, criteria = {}, {}
    for name in used_protocols(params):
        metrics[name], criteria[name] = protocol_baseline(params, name)
    out = experiment_dir("baseline")
    write_json(out / "metrics.json", metrics)
    write_json(out / "criteria.json", criteria)
    return metrics
