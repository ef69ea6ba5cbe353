"""The one place for angle conventions.

Inside the harness angles are always degrees, always in the order (yaw, pitch, roll).

Visual convention (checked on the real AFLW2000 files, see tests/test_real_aflw2000.py): in an
image with x to the right and y down,
- positive yaw turns the nose towards the image's left (-x),
- positive pitch tilts the face up (the nose moves towards -y),
- positive roll turns the face clockwise as seen in the image.

`rotation_matrix` gives the head-to-camera rotation in a camera frame with x right, y down and
z pointing away from the camera, M = Rx(-pitch) @ Ry(yaw) @ Rz(roll). It is at once
- 3DDFA's `Pose_Para` rotation (300W-LP, AFLW2000) written in a y-down frame, and
- the matrix of BIWI's `frame_XXXXX_pose.txt`, which `biwi_euler` turns back into the angles
  with the formula HopeNet, FSA-Net and img2pose use.
"""
from __future__ import annotations

import numpy as np

ANGLES = ("yaw", "pitch", "roll")

# Binning shared by DADL, HopeNet and the Bernoulli paper: 66 bins of 3 degrees over [-99, 99).
BIN_WIDTH = 3.0
N_BINS = 66
ANGLE_LIMIT = 99.0
# Angle of bin i is i * 3 - 99: the papers' decoding (the bin's left edge). Kept on purpose.
BIN_ANGLES = np.arange(N_BINS) * BIN_WIDTH - ANGLE_LIMIT


def bin_index(angles):
    """Bin of each angle (degrees): floor((a + 99) / 3), clipped to [0, 65]."""
    idx = np.floor((np.asarray(angles, dtype=np.float64) + ANGLE_LIMIT) / BIN_WIDTH)
    return np.clip(idx, 0, N_BINS - 1).astype(np.int64)


def within_limit(ypr, limit: float = ANGLE_LIMIT):
    """True where all three angles lie in [-limit, limit] (the +-99 filter)."""
    ypr = np.asarray(ypr, dtype=np.float64)
    return np.all(np.abs(ypr) <= limit, axis=-1)


def flip_pose(ypr):
    """Pose of the horizontally mirrored image: yaw -> -yaw, roll -> -roll, pitch unchanged."""
    ypr = np.array(ypr, dtype=np.float64, copy=True)
    ypr[..., 0] *= -1
    ypr[..., 2] *= -1
    return ypr


def pose_para_to_ypr(pose_para):
    """3DDFA `Pose_Para` (pitch, yaw, roll in radians, then tx, ty, tz, scale) -> (yaw, pitch, roll) deg."""
    p = np.asarray(pose_para, dtype=np.float64).reshape(-1)
    pitch, yaw, roll = np.degrees(p[:3])
    return np.array([yaw, pitch, roll])


def ypr_to_pose_para(ypr, translation=(0.0, 0.0, 0.0), scale: float = 1.0):
    """Inverse of `pose_para_to_ypr`: a 1 x 7 `Pose_Para` row."""
    yaw, pitch, roll = np.radians(np.asarray(ypr, dtype=np.float64))
    return np.array([[pitch, yaw, roll, *translation, scale]], dtype=np.float64)


def _xp(x):
    """numpy, or torch for tensors, so one formula serves the readers and the models."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _matrix(xp, rows):
    return xp.stack([xp.stack(r, -1) for r in rows], -2)


def rotation_matrix(yaw, pitch, roll):
    """Head-to-camera rotation (x right, y down, z away from camera) for angles in degrees.

    Scalars give one 3 x 3 matrix; arrays or tensors of shape (...) give (..., 3, 3)."""
    xp = _xp(yaw)
    y, p, r = (xp.deg2rad(xp.asarray(v, dtype=xp.float64) if xp is np else v) for v in (yaw, pitch, roll))
    one, zero = xp.ones_like(y), xp.zeros_like(y)
    cy, sy, cp, sp, cr, sr = xp.cos(y), xp.sin(y), xp.cos(-p), xp.sin(-p), xp.cos(r), xp.sin(r)
    rx = _matrix(xp, [[one, zero, zero], [zero, cp, -sp], [zero, sp, cp]])
    ry = _matrix(xp, [[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    rz = _matrix(xp, [[cr, -sr, zero], [sr, cr, zero], [zero, zero, one]])
    return rx @ ry @ rz


def biwi_euler(matrix):
    """BIWI `pose.txt` rotation matrix (..., 3, 3) -> (..., 3) (yaw, pitch, roll) degrees.

    With R = M transposed: roll = -atan2(R10, R00); yaw = -atan2(-R20, sqrt(R21^2 + R22^2));
    pitch = atan2(R21, R22). Valid for |yaw| < 90 (beyond, another triple gives the same matrix).
    """
    xp = _xp(matrix)
    m = xp.asarray(matrix, dtype=xp.float64) if xp is np else matrix
    r = xp.swapaxes(m, -1, -2)
    roll = -xp.arctan2(r[..., 1, 0], r[..., 0, 0])
    yaw = -xp.arctan2(-r[..., 2, 0], xp.hypot(r[..., 2, 1], r[..., 2, 2]))
    pitch = xp.arctan2(r[..., 2, 1], r[..., 2, 2])
    return xp.rad2deg(xp.stack([yaw, pitch, roll], -1))
