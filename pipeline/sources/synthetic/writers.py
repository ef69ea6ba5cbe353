"""Writers of the three datasets' real on-disk formats (byte-deterministic).

`Pose_Para` (300W-LP, AFLW2000) is `pipeline.angles.ypr_to_pose_para(ypr, (tx, ty, tz), scale)`:
pitch, yaw, roll in radians, then tx = head centre pixel x, ty = image height - head centre
pixel y (3DDFA's y-up image frame), tz = 0 and scale = pixels per head unit (1 unit = 100 mm).
The head centre is the head frame's origin (pipeline.synthetic.head).

AFLW2000 `pt2d` holds the 21 AFLW points with BOTH coordinates -1 for self-occluded points (the
real files we checked write x = -1, y = 452 on their 450 px images, so readers must treat a
point with any negative coordinate as invisible). `pt3d_68` is x, y in pixels and z in pixels, positive towards the camera and 0 at the
head centre (as the real files, where the nose tip has the largest z on a frontal face). `roi`
is int16 (x0, y0, x1, y1): the floor/ceil box of the 68 landmarks.

BIWI: `frame_XXXXX_pose.txt` holds `rotation_matrix(yaw, pitch, roll)` and the head centre in mm
in the depth camera's frame; `rgb.cal` and `depth.cal` are written by
`pipeline.calibration.write_cal`.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from pipeline.core.angles import flip_pose, ypr_to_pose_para
from pipeline.data.calibration import Calibration, write_cal

_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: pipeline.synthetic".ljust(116, b" ")


def savemat(path: Path, data: dict) -> None:
    """scipy.io.savemat with a fixed header text (scipy writes the current time there)."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, data)
    raw = bytearray(buf.getvalue())
    raw[:116] = _MAT_HEADER
    Path(path).write_bytes(bytes(raw))


def pose_para(ypr, centre, height: int, scale: float) -> np.ndarray:
    return ypr_to_pose_para(ypr, (float(centre[0]), float(height - centre[1]), 0.0), float(scale))


def write_300wlp(root: Path, subset: str, name: str, rgb: np.ndarray, pt2d, ypr, centre, scale: float, quality: int) -> None:
    """<subset>/<name>.jpg/.mat and the mirrored twin <subset>_Flip/<name>.jpg/.mat."""
    H, W = rgb.shape[:2]
    pt2d = np.asarray(pt2d, dtype=np.float64)
    flip_pt = pt2d.copy()
    flip_pt[0] = W - 1 - flip_pt[0]
    twins = ((subset, rgb, pt2d, ypr, centre), (f"{subset}_Flip", rgb[:, ::-1], flip_pt, flip_pose(ypr),
                                                 (W - 1 - centre[0], centre[1])))
    for folder, img, pts, angles, c in twins:
        Image.fromarray(np.ascontiguousarray(img)).save(root / folder / f"{name}.jpg", quality=quality)
        savemat(root / folder / f"{name}.mat", {"Pose_Para": pose_para(angles, c, H, scale), "pt2d": pts})


def write_aflw(root: Path, index: int, rgb: np.ndarray, lm21, vis21, lm68, z68, ypr, centre, scale: float, quality: int) -> None:
    """imageNNNNN.jpg/.mat; z68 is the camera-frame depth (head units, + away) of the 68 landmarks."""
    H = rgb.shape[0]
    vis21 = np.asarray(vis21, bool)
    if not vis21.any():  # a head turned beyond 99 deg shows no face: keep the points (the reader needs a box; the filter drops it)
        vis21 = np.ones_like(vis21)
    pt2d = np.where(vis21[None, :], lm21, -1.0).astype(np.float64)
    pt3d = np.vstack([lm68, -np.asarray(z68)[None, :] * scale]).astype(np.float32)
    roi = np.array([[np.floor(lm68[0].min()), np.floor(lm68[1].min()), np.ceil(lm68[0].max()), np.ceil(lm68[1].max())]],
                   dtype=np.int16)
    name = f"image{index:05d}"
    Image.fromarray(rgb).save(root / f"{name}.jpg", quality=quality)
    savemat(root / f"{name}.mat", {"Pose_Para": pose_para(ypr, centre, H, scale), "pt2d": pt2d, "pt3d_68": pt3d, "roi": roi})


def write_biwi_frame(seq_dir: Path, frame: int, rgb: np.ndarray, matrix, centre_mm) -> None:
    """frame_XXXXX_rgb.png and frame_XXXXX_pose.txt (3 matrix rows, a blank line, the centre in mm)."""
    Image.fromarray(rgb).save(seq_dir / f"frame_{frame:05d}_rgb.png", compress_level=1, compress_type=2)  # Huffman only: fast
    row = lambda v: " ".join(f"{x:.6f}" for x in v) + " "  # noqa: E731
    text = "\n".join([row(r) for r in np.asarray(matrix)] + ["", row(centre_mm)]) + "\n"
    (seq_dir / f"frame_{frame:05d}_pose.txt").write_text(text)


def write_biwi_calibration(seq_dir: Path, rgb_cal: Calibration, depth_cal: Calibration) -> None:
    write_cal(seq_dir / "rgb.cal", rgb_cal)
    write_cal(seq_dir / "depth.cal", depth_cal)
