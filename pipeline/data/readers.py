"""Dataset readers: raw files on disk -> one table of samples in the harness's conventions.

Every reader returns a `Samples` table (pandas) with one row per kept sample and the columns
    sample_id   path of the image relative to the dataset root, without extension
    image       absolute path of the image file
    yaw, pitch, roll   degrees, (yaw, pitch, roll) order (pipeline.angles)
    x0, y0, x1, y1     landmark box (300W-LP, AFLW2000) or head box (BIWI), pixels
    cx, cy      head centre in the image, pixels (BIWI: projected through rgb.cal)
    sequence    BIWI sequence ("01".."24"), 300W-LP subset, or "" for AFLW2000
    group       samples that must stay on one side of a train/validation split
and the counts of samples read, dropped by the +-99 filter, and images skipped for having no
label file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from pipeline.core import angles
from pipeline.data.calibration import read_cal, project
from pipeline.core.errors import DataError

COLUMNS = ["sample_id", "image", "yaw", "pitch", "roll", "x0", "y0", "x1", "y1", "cx", "cy", "sequence", "group"]
W300_SUBSETS = ("AFW", "HELEN", "IBUG", "LFPW")


@dataclass
class Samples:
    table: pd.DataFrame  # kept samples, COLUMNS
    n_read: int
    n_filtered: int  # dropped by the +-99 filter
    n_unlabelled: int = 0  # images without their label file, skipped

    def summary(self) -> str:
        skipped = f", {self.n_unlabelled} image(s) without a label file skipped" if self.n_unlabelled else ""
        return f"{self.n_read} read, {self.n_filtered} outside +-{angles.ANGLE_LIMIT:g} deg dropped, {len(self.table)} kept{skipped}"


def _require_dir(root: Path, what: str, fix: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: {what} folder not found; {fix}")
    return root


def landmark_box(pt2d) -> tuple[float, float, float, float]:
    """Box of the valid landmarks (AFLW2000 marks invisible points with negative coordinates)."""
    pts = np.asarray(pt2d, dtype=np.float64)
    valid = np.all(pts >= 0, axis=0)
    if not valid.any():
        raise ValueError("no valid landmark in pt2d")
    x, y = pts[0, valid], pts[1, valid]
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def read_mat_label(mat_path: Path):
    """(yaw, pitch, roll) degrees and landmark box of one 300W-LP / AFLW2000 `.mat` file."""
    try:
        mat = scipy.io.loadmat(mat_path, variable_names=["Pose_Para", "pt2d"])
    except Exception as exc:  # scipy raises several types for corrupt files
        raise DataError(f"{mat_path}: not a readable .mat file ({exc}); re-extract the dataset") from None
    if "Pose_Para" not in mat:
        raise DataError(f"{mat_path}: no 'Pose_Para' variable; this is not a 300W-LP/AFLW2000 label file, remove it or re-extract the dataset")
    if "pt2d" not in mat:
        raise DataError(f"{mat_path}: no 'pt2d' variable (landmarks needed for the crop box); re-extract the dataset")
    pose = np.asarray(mat["Pose_Para"], dtype=np.float64).reshape(-1)
    if pose.size < 3 or not np.all(np.isfinite(pose[:3])):
        raise DataError(f"{mat_path}: Pose_Para must hold finite pitch, yaw, roll in radians, got {pose[:3]}")
    pt2d = np.asarray(mat["pt2d"], dtype=np.float64)
    if pt2d.ndim != 2 or pt2d.shape[0] != 2:
        raise DataError(f"{mat_path}: pt2d must be 2 x N (row 0 x, row 1 y), got shape {pt2d.shape}")
    try:
        box = landmark_box(pt2d)
    except ValueError:
        raise DataError(f"{mat_path}: every landmark in pt2d is marked invisible (negative); no crop box can be built") from None
    return angles.pose_para_to_ypr(pose), box


def _mat_samples(root: Path, mat_files: list[Path], group_of, images: list[Path]) -> Samples:
    """Samples of `mat_files`; `images` are the .jpg files found beside them (those without a
    .mat are counted as skipped)."""
    rows = []
    for mat_path in mat_files:
        image = mat_path.with_suffix(".jpg")
        if not image.is_file():
            raise DataError(f"{image}: image missing for label {mat_path.name}; restore it or delete the .mat")
        ypr, (x0, y0, x1, y1) = read_mat_label(mat_path)
        rel = mat_path.relative_to(root).with_suffix("").as_posix()
        sequence = mat_path.parent.name if mat_path.parent != root else ""
        rows.append((rel, str(image), *ypr, x0, y0, x1, y1, (x0 + x1) / 2, (y0 + y1) / 2, sequence, group_of(mat_path)))
    labelled = {m.with_suffix("") for m in mat_files}
    return _filtered(pd.DataFrame(rows, columns=COLUMNS), sum(i.with_suffix("") not in labelled for i in images))


def _filtered(table: pd.DataFrame, n_unlabelled: int = 0) -> Samples:
    keep = angles.within_limit(table[list(angles.ANGLES)].to_numpy()) if len(table) else np.zeros(0, bool)
    return Samples(table=table[keep].reset_index(drop=True), n_read=len(table), n_filtered=int((~keep).sum()), n_unlabelled=n_unlabelled)


def read_300w_lp(root: Path) -> Samples:
    """300W-LP: <subset>/<name>.jpg + .mat for AFW, HELEN, IBUG, LFPW and their _Flip twins."""
    root = _require_dir(root, "300W-LP", "unpack 300W_LP so that it holds AFW/, HELEN/, IBUG/, LFPW/ (and *_Flip/)")
    subsets = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name.removesuffix("_Flip") in W300_SUBSETS]
    if not subsets:
        raise DataError(f"{root}: no 300W-LP subset folder (AFW, HELEN, IBUG, LFPW); point the harness at the unpacked 300W_LP folder")
    mats = [m for d in subsets for m in sorted(d.glob("*.mat"))]
    if not mats:
        raise DataError(f"{root}: 300W-LP subset folders hold no .mat label files")
    # A flipped sample and its original share a group so a validation split never separates them.
    return _mat_samples(root, mats, group_of=lambda m: f"{m.parent.name.removesuffix('_Flip')}/{m.stem}",
                        images=[i for d in subsets for i in d.glob("*.jpg")])


def read_aflw2000(root: Path) -> Samples:
    """AFLW2000(-3D): imageNNNNN.jpg + imageNNNNN.mat in one folder."""
    root = _require_dir(root, "AFLW2000", "unpack AFLW2000-3D so that it holds imageNNNNN.jpg and .mat files")
    mats = sorted(root.glob("image*.mat"))
    if not mats:
        raise DataError(f"{root}: no imageNNNNN.mat files; point the harness at the unpacked AFLW2000 folder")
    return _mat_samples(root, mats, group_of=lambda m: m.stem, images=list(root.glob("image*.jpg")))


_POSE_RE = re.compile(r"frame_(\d+)_pose\.txt$")


def read_biwi_pose(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """BIWI `frame_XXXXX_pose.txt`: 3 rows of the rotation matrix, a blank line, the head centre (mm)."""
    try:
        values = [row.split() for row in Path(path).read_text().splitlines() if row.strip()]
        matrix = np.array(values[:3], dtype=np.float64)
        centre = np.array(values[3], dtype=np.float64)
        if matrix.shape != (3, 3) or centre.shape != (3,) or len(values) != 4:
            raise ValueError
    except (ValueError, IndexError, OSError):
        raise DataError(f"{path}: malformed BIWI pose file (expected 3 rows of 3 numbers, a blank line, then the head centre x y z in mm)") from None
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-3):
        raise DataError(f"{path}: the 3x3 matrix is not a rotation (M M^T != I); the file is corrupt")
    return matrix, centre


def read_biwi(root: Path, box_mm: float) -> Samples:
    """BIWI Kinect Head Pose `hpdb/NN/`: frame_XXXXX_rgb.png, frame_XXXXX_pose.txt, rgb.cal.

    The head box is a square of side `box_mm` (at the head's depth) around the head centre
    projected into the RGB image; no face detector is involved.
    """
    root = _require_dir(root, "BIWI hpdb", "point the harness at the unpacked hpdb/ folder holding sequences 01..24")
    seqs = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name.isdigit()]
    if not seqs:
        raise DataError(f"{root}: no sequence folders 01..24; point the harness at BIWI's hpdb/ folder")
    rows = []
    for seq in seqs:
        cal = read_cal(seq / "rgb.cal")
        focal = (cal.K[0, 0] + cal.K[1, 1]) / 2
        for pose_file in sorted(seq.glob("frame_*_pose.txt")):
            frame = _POSE_RE.search(pose_file.name).group(1)
            image = seq / f"frame_{frame}_rgb.png"
            if not image.is_file():
                raise DataError(f"{image}: RGB frame missing for {pose_file.name}; restore it or delete the pose file")
            matrix, centre = read_biwi_pose(pose_file)
            ypr = angles.biwi_euler(matrix)
            depth = (cal.R @ centre + cal.t)[2]
            if not depth > 0:
                raise DataError(f"{pose_file}: the head centre {centre.tolist()} mm lies at or behind the RGB camera "
                                f"(depth {depth:.0f} mm); the file is corrupt, or rgb.cal does not belong to this sequence")
            cx, cy = project(centre, cal)
            half = focal * box_mm / depth / 2
            rows.append((f"{seq.name}/frame_{frame}", str(image), *ypr, cx - half, cy - half, cx + half, cy + half, cx, cy, seq.name, seq.name))
    if not rows:
        raise DataError(f"{root}: sequence folders hold no frame_XXXXX_pose.txt files")
    return _filtered(pd.DataFrame(rows, columns=COLUMNS))


def read_biwi_npz(root: Path) -> tuple[Samples, np.ndarray]:
    """FSA-Net's preprocessed BIWI: one or more .npz files (or one file) holding `image`
    (N x 64 x 64 x 3 uint8, BGR) and `pose` (N x 3: yaw, pitch, roll in degrees).

    Returns the samples and their RGB images. The files carry no sequence ids, so each file's
    name (e.g. BIWI_train, BIWI_test) is its "sequence": protocols split by file.
    """
    root = Path(root)
    files = [root] if root.is_file() else sorted(root.glob("*.npz")) if root.is_dir() else []
    if not files:
        raise DataError(f"{root}: no .npz file; point the harness at FSA-Net's BIWI .npz file(s) (BIWI_train.npz, BIWI_test.npz, BIWI_noTrack.npz)")
    tables, images = [], []
    for f in files:
        try:
            with np.load(f) as npz:
                missing = [k for k in ("image", "pose") if k not in npz.files]
                if missing:
                    raise DataError(f"{f}: no {' or '.join(repr(k) for k in missing)} array; FSA-Net's BIWI files hold 'image' and 'pose'")
                image, pose = npz["image"], npz["pose"]
        except (OSError, ValueError) as exc:
            raise DataError(f"{f}: not a readable .npz ({exc.__class__.__name__}); download it again") from None
        if image.ndim != 4 or image.shape[3] != 3 or pose.shape != (len(image), 3):
            raise DataError(f"{f}: expected image N x H x W x 3 and pose N x 3, got {image.shape} and {pose.shape}")
        h, w = image.shape[1:3]
        n = len(image)
        table = pd.DataFrame({
            "sample_id": [f"{f.stem}/{i:05d}" for i in range(n)], "image": "",
            "yaw": pose[:, 0].astype(np.float64), "pitch": pose[:, 1].astype(np.float64), "roll": pose[:, 2].astype(np.float64),
            "x0": 0.0, "y0": 0.0, "x1": float(w), "y1": float(h), "cx": w / 2, "cy": h / 2, "sequence": f.stem, "group": f.stem,
        })
        tables.append(table)
        images.append(image[..., ::-1])  # BGR -> RGB
    table = pd.concat(tables, ignore_index=True)
    keep = angles.within_limit(table[list(angles.ANGLES)].to_numpy())
    samples = Samples(table=table[keep].reset_index(drop=True), n_read=len(table), n_filtered=int((~keep).sum()))
    return samples, np.concatenate(images)[keep]
