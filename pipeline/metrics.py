"""The papers' metrics, all with plain absolute error |prediction - truth| in degrees (no +-180
wrap-around: it forgives wrong answers)."""
from __future__ import annotations

import numpy as np

from pipeline.angles import ANGLES


def abs_errors(pred, true) -> np.ndarray:
    return np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64))


def criterion_1(pred, true) -> dict:
    """Per-angle mean absolute error and their mean (MAE), plus the sample count n."""
    err = abs_errors(pred, true)
    per_angle = err.mean(axis=0) if len(err) else np.full(3, np.nan)
    out = {a: float(v) for a, v in zip(ANGLES, per_angle)}
    out["mae"] = float(per_angle.mean())
    out["n"] = int(len(err))
    return out
