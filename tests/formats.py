"""Writers of tiny fixtures in the real datasets' on-disk formats, independent of the
synthetic renderer, so the readers are tested against the formats themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from pipeline.core import angles
from pipeline.data.calibration import Calibration, write_cal


def write_image(path: Path, size=(64, 64), seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def write_mat_sample(folder: Path, name: str, ypr, pt2d=None, with_pose=True, size: int = 64) -> Path:
    """imageNNNNN.jpg + .mat as in 300W-LP / AFLW2000 (Pose_Para: pitch, yaw, roll in radians)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / f"{name}.jpg", (size, size))
    if pt2d is None:
        pt2d = np.array([[16.0, 48.0, 32.0, 20.0], [20.0, 20.0, 36.0, 50.0]])
    mat = {"pt2d": np.asarray(pt2d, dtype=np.float64)}
    if with_pose:
        mat["Pose_Para"] = angles.ypr_to_pose_para(ypr, translation=(32, 32, 0), scale=0.001)
    scipy.io.savemat(folder / f"{name}.mat", mat)
    return folder / f"{name}.mat"


CAL = Calibration(K=np.array([[129.4, 0, 80.0], [0, 129.4, 60.0], [0, 0, 1]]), R=np.eye(3), t=np.array([-25.0, 0.0, 0.0]), size=(160, 120))


def write_pose_txt(path: Path, matrix, centre) -> None:
    rows = [" ".join(f"{v:.6f}" for v in r) + " " for r in np.asarray(matrix)]
    path.write_text("\n".join(rows) + "\n\n" + " ".join(f"{v:.6f}" for v in centre) + " \n")


def write_biwi_frame(seq: Path, frame: int, matrix, centre, cal: Calibration = CAL) -> None:
    """hpdb/NN/frame_XXXXX_rgb.png + frame_XXXXX_pose.txt (+ rgb.cal once per sequence)."""
    seq.mkdir(parents=True, exist_ok=True)
    if not (seq / "rgb.cal").exists():
        write_cal(seq / "rgb.cal", cal)
    write_image(seq / f"frame_{frame:05d}_rgb.png", cal.size, seed=frame)
    write_pose_txt(seq / f"frame_{frame:05d}_pose.txt", matrix, centre)


def write_biwi_npz(path: Path, rgb: np.ndarray, ypr) -> None:
    """FSA-Net's BIWI file: `image` N x H x W x 3 uint8 in BGR order, `pose` N x 3 (yaw, pitch, roll)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, image=np.ascontiguousarray(rgb[..., ::-1]), pose=np.asarray(ypr, dtype=np.float32))
