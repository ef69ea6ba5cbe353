"""The papers' metrics, all with plain absolute error |prediction - truth| in degrees (no +-180
wrap-around: it forgives wrong answers)."""
from __future__ import annotations

import numpy as np

from pipeline.core.angles import ANGLES


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


THRESHOLDS = tuple(float(t) for t in np.arange(0.5, 30.01, 0.5))  # degrees, Criterion II
RANGES = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99)  # edges of |ground truth| bins, Criterion III


def criterion_2(pred, true, thresholds=THRESHOLDS) -> dict:
    """Share of samples whose three absolute errors are all below each threshold (a curve)."""
    worst = abs_errors(pred, true).max(axis=1) if len(pred) else np.zeros(0)
    share = [float((worst < t).mean()) if len(worst) else float("nan") for t in thresholds]
    return {"thresholds": list(thresholds), "share": share}


def criterion_3(pred, true, edges=RANGES) -> list[dict]:
    """MAE within ranges of absolute ground-truth angle, per angle.

    For each angle and each range [lo, hi) of |ground truth of that angle| (the last range is
    closed at 99): the number and share of samples in it and that angle's MAE on them.
    """
    err = abs_errors(pred, true)
    true = np.abs(np.asarray(true, dtype=np.float64))
    rows = []
    for a, name in enumerate(ANGLES):
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = (true[:, a] >= lo) & ((true[:, a] < hi) | ((hi == edges[-1]) & (true[:, a] <= hi)))
            n = int(inside.sum())
            rows.append({"angle": name, "lo": lo, "hi": hi, "n": n, "share": n / len(true) if len(true) else float("nan"),
                         "mae": float(err[inside, a].mean()) if n else None})
    return rows
