"""BIWI `rgb.cal` calibration and the projection of the head centre into the RGB image.

File layout (as in BIWI's `hpdb/NN/rgb.cal`): intrinsics K on lines 0-2, a blank line, the
distortion row, a blank line, the extrinsic rotation R on lines 6-8, a blank line, the
translation t (mm) on line 10, a blank line, then "width height".

Direction of the extrinsics (UNVERIFIED on real BIWI frames): the harness takes them as mapping
the depth camera's frame, in which `pose.txt` gives the head centre, into the RGB camera's frame,
p_rgb = R @ p_depth + t, then (u, v) = K p_rgb / z. `python -m pipeline.biwi_check` draws the
projected centre on a few frames so anyone with BIWI can confirm or refute this in a minute.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError


@dataclass(frozen=True)
class Calibration:
    K: np.ndarray  # 3 x 3 intrinsics
    R: np.ndarray  # 3 x 3 extrinsic rotation, depth frame -> RGB frame (see module doc)
    t: np.ndarray  # 3 translation in mm
    size: tuple[int, int] = (640, 480)  # width, height


def read_cal(path: Path) -> Calibration:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: calibration file missing; every BIWI sequence folder needs rgb.cal")
    lines = path.read_text().splitlines()
    try:
        rows = [np.array(lines[i].split(), dtype=np.float64) for i in range(11)]
        K = np.stack(rows[0:3])
        R = np.stack(rows[6:9])
        t = rows[10]
        size = (640, 480)
        if len(lines) > 12 and len(lines[12].split()) == 2:
            size = tuple(int(v) for v in lines[12].split())
        if K.shape != (3, 3) or R.shape != (3, 3) or t.shape != (3,):
            raise ValueError("wrong shapes")
    except (ValueError, IndexError) as exc:
        raise DataError(f"{path}: not a BIWI rgb.cal (expected K on lines 1-3, R on 7-9, t on 11): {exc}") from None
    return Calibration(K=K, R=R, t=t, size=size)


def write_cal(path: Path, cal: Calibration) -> None:
    fmt = lambda row: " ".join(f"{v:.6f}" for v in row) + " "  # noqa: E731
    lines = [fmt(r) for r in cal.K] + ["", "0 0 0 0 ", ""] + [fmt(r) for r in cal.R] + ["", fmt(cal.t), ""]
    lines.append(f"{cal.size[0]} {cal.size[1]}")
    Path(path).write_text("\n".join(lines) + "\n")


def project(centre_mm, cal: Calibration) -> np.ndarray:
    """Pixel (u, v) of a point given in mm in the depth camera's frame."""
    p = cal.R @ np.asarray(centre_mm, dtype=np.float64) + cal.t
    uvw = cal.K @ p
    return uvw[:2] / uvw[2]


def unproject(uv, depth_mm: float, cal: Calibration) -> np.ndarray:
    """Depth-frame point (mm) that `project` maps to pixel `uv` at RGB-frame depth `depth_mm`."""
    ray = np.linalg.solve(cal.K, np.array([uv[0], uv[1], 1.0]))
    p_rgb = ray * depth_mm / ray[2]
    return cal.R.T @ (p_rgb - cal.t)
