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
            inside = _within(true[:, a], lo, hi, edges)
            n = int(inside.sum())
            rows.append({"angle": name, "lo": lo, "hi": hi, "n": n, "share": n / len(true) if len(true) else float("nan"),
                         "mae": float(err[inside, a].mean()) if n else None})
    return rows


YAW_RANGES = (-99, -60, -30, 30, 60, 99)  # edges of signed true yaw, for signed_errors_by_yaw


def signed_errors_by_yaw(pred, true, edges=YAW_RANGES) -> list[dict]:
    """Mean signed error (prediction - truth) of each angle within ranges [lo, hi) of the signed
    true yaw (the last range closed): a bias shows here, where absolute errors mix it with scatter.

    One row per range: lo, hi, n and the three angles' mean signed errors (None where n = 0)."""
    pred, true = _rows(pred), _rows(true)
    diff = pred - true
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = _within(true[:, 0], lo, hi, edges)
        n = int(inside.sum())
        rows.append({"lo": lo, "hi": hi, "n": n, **{a: float(diff[inside, i].mean()) if n else None for i, a in enumerate(ANGLES)}})
    return rows


def linear_fit(pred, true) -> dict:
    """Per angle, the least-squares line prediction = intercept + slope * truth and the correlation
    of prediction and truth: a slope below 1 means the model under-reads large angles, an intercept
    away from 0 a constant offset. None for an angle with fewer than 2 samples or no spread."""
    pred, true = _rows(pred), _rows(true)
    out = {}
    for i, a in enumerate(ANGLES):
        x, y = true[:, i], pred[:, i]
        if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
            out[a] = None
            continue
        slope, intercept = np.polyfit(x, y, 1)
        out[a] = {"intercept": float(intercept), "slope": float(slope), "r": float(np.corrcoef(x, y)[0, 1])}
    return out


def _rows(values) -> np.ndarray:
    """(yaw, pitch, roll) rows as an N x 3 float array, also for an empty input."""
    return np.asarray(values, dtype=np.float64).reshape(-1, 3)


def _within(values: np.ndarray, lo: float, hi: float, edges) -> np.ndarray:
    """values in [lo, hi), the last range of `edges` closed at its top."""
    return (values >= lo) & ((values < hi) | ((hi == edges[-1]) & (values <= hi)))
