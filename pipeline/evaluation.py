"""Scoring predictions on a test store and writing them: shared by evaluate and baseline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.angles import ANGLES
from pipeline.atomic import atomic_file
from pipeline.metrics import criterion_1
from pipeline.store import Store


def score(store: Store, pred: np.ndarray) -> dict:
    """Criterion I on the store, with the count the +-99 filter removed before it."""
    return {**criterion_1(pred, store.ypr), "n_filtered": int(store.meta["n_filtered"]), "dataset": store.meta["dataset"]}


def write_predictions(path: Path, store: Store, pred: np.ndarray) -> None:
    table = store.labels[["sample_id", "sequence"]].copy()
    for i, a in enumerate(ANGLES):
        table[f"true_{a}"] = store.ypr[:, i]
        table[f"pred_{a}"] = pred[:, i]
        table[f"err_{a}"] = np.abs(pred[:, i] - store.ypr[:, i])
    with atomic_file(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
