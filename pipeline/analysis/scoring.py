"""Scoring predictions on a test store and writing them: shared by evaluate and baseline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.angles import ANGLES
from pipeline.core.atomic import atomic_file
from pipeline.core.metrics import criterion_1, criterion_2, criterion_3
from pipeline.data.store import Store


def score(store: Store, idx: np.ndarray, pred: np.ndarray) -> tuple[dict, dict]:
    """(Criterion I with the count the +-99 filter removed, Criteria II and III) on rows `idx`."""
    true = store.ypr[idx]
    metrics = {**criterion_1(pred, true), "n_filtered": int(store.meta["n_filtered"]), "dataset": store.meta["dataset"],
               "source": store.meta.get("source", "unknown")}
    return metrics, {"criterion_2": criterion_2(pred, true), "criterion_3": criterion_3(pred, true)}


def predictions_table(store: Store, idx: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """One row per scored sample: sample_id, sequence, true_/pred_/err_ yaw, pitch, roll (degrees)."""
    table = store.labels[["sample_id", "sequence"]].iloc[idx].reset_index(drop=True)
    true = store.ypr[idx]
    for i, a in enumerate(ANGLES):
        table[f"true_{a}"] = true[:, i]
        table[f"pred_{a}"] = pred[:, i]
        table[f"err_{a}"] = np.abs(pred[:, i] - true[:, i])
    return table


def save_predictions(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, index=False, float_format="%.4f")


def write_predictions(path: Path, store: Store, idx: np.ndarray, pred: np.ndarray) -> None:
    with atomic_file(path) as tmp:
        save_predictions(predictions_table(store, idx, pred), tmp)
