"""Face proportions of the built-in renderer against real AFLW2000, as pitch changes: a check of
the synthetic geometry that needs no training (issue: a model trained on the built-in data reads
real frontal faces with a pitch offset).

    python -m benchmarks.face_proportions [--synthetic data/raw/aflw2000] [--real FOLDER]

Reads the `.mat` labels of both folders (the synthetic one from `dvc repro download`, the real one
params.yaml `report.real_aflw2000` by default; images are not read), keeps near-frontal yaw and
roll (|yaw| <= 20, |roll| <= 15, |pitch| <= 45), and fits, against pitch, where the 68 landmarks
(`pt3d_68`) put the face's parts: the nose tip's height between the eyes and the mouth
((nose - eyes) / (mouth - eyes), which pitch changes), and the eyes' and mouth's heights in the
21-point landmark box the crops are cut from. For each it prints the value at pitch 0 and the
slope per 10 degrees, and for the nose ratio the pitch at which the synthetic faces have the
real faces' frontal value: a model that learnt the synthetic geometry reads a real frontal face
at about that pitch.

Then it compares the mean 3D face of both folders in their label frames: each face's `pt3d_68`
(z towards the camera, as the files store it) is turned back by its labelled rotation, centred
on the eyes and scaled to one eye-mouth span, and the median of each landmark over the faces
with |yaw|, |pitch|, |roll| <= 40 is printed for both (y down, z away from the camera). Where
the two agree the renderer's head matches the real faces' geometry in the labels' own frame;
landmarks 0/16 (jaw contour) and 27 (nasion) are defined differently by the 3D face model the
real labels came from, so only their trend is comparable. Last, it fits the pitch turn that best
lays the synthetic mean face on the real one (least squares over the inner-face landmarks 17-67
but the nasion, after matching position and size): how far the renderer's head frame and the
real labels' frame (the 3D face model the real labels were fitted with) differ in pitch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.io
from scipy.optimize import minimize_scalar

from pipeline.config.params import load_params
from pipeline.core.angles import rotation_matrix
from pipeline.core.errors import DataError, cli
from pipeline.data.readers import read_mat_label
from pipeline.reporting.sections.real import real_folder


def proportions(folder: Path) -> np.ndarray:
    """Rows (pitch, nose ratio, eyes height in box, mouth height in box) of the near-frontal samples."""
    rows = []
    for mat_path in sorted(folder.glob("*.mat")):
        (yaw, pitch, roll), (x0, y0, x1, y1) = read_mat_label(mat_path)
        if abs(yaw) > 20 or abs(roll) > 15 or abs(pitch) > 45:
            continue
        y = scipy.io.loadmat(mat_path, variable_names=["pt3d_68"])["pt3d_68"][1]
        eyes, nose, mouth = y[36:48].mean(), y[30], y[48:68].mean()
        rows.append((pitch, (nose - eyes) / (mouth - eyes), (eyes - y0) / (y1 - y0), (mouth - y0) / (y1 - y0)))
    if len(rows) < 10:
        raise DataError(f"{folder}: {len(rows)} near-frontal samples with pt3d_68 labels, need 10; give a folder of AFLW2000 .mat files")
    return np.array(rows)


LANDMARKS = {8: "chin (menton)", 30: "nose tip", 33: "nose base", 51: "upper lip", 57: "lower lip", 19: "brow",
             36: "outer eye corner", 39: "inner eye corner", 27: "nasion", 0: "jaw contour start"}


def head_frame_shapes(folder: Path, limit: float = 40.0) -> np.ndarray:
    """(faces, 3, 68) landmarks of the faces with every |angle| <= limit, in the head frame of their
    labelled pose (x right, y down, z away), origin at the eyes' centroid, one unit = eye-mouth span."""
    shapes = []
    for mat_path in sorted(folder.glob("*.mat")):
        (yaw, pitch, roll), _ = read_mat_label(mat_path)
        if max(abs(yaw), abs(pitch), abs(roll)) > limit:
            continue
        p = scipy.io.loadmat(mat_path, variable_names=["pt3d_68"])["pt3d_68"].astype(float)
        q = np.stack([p[0], p[1], -p[2]])  # stored z points towards the camera
        h = rotation_matrix(yaw, pitch, roll).T @ (q - q[:, 36:48].mean(1, keepdims=True))
        shapes.append(h / (h[1, 48:68].mean() - h[1, 36:48].mean()))
    if len(shapes) < 10:
        raise DataError(f"{folder}: {len(shapes)} faces within {limit:g} deg with pt3d_68 labels, need 10")
    return np.array(shapes)


INNER_FACE = [i for i in range(17, 68) if i != 27]  # brows, nose, eyes, mouth; not the jaw contour or the nasion


def pitch_misalignment(real: np.ndarray, synthetic: np.ndarray) -> tuple[float, float, float]:
    """(pitch turn in degrees, rms before, rms after): the turn R = rotation_matrix(0, pitch, 0) of
    the synthetic 3 x 68 head-frame shape that brings its inner face closest to the real one."""
    r = real[:, INNER_FACE] - real[:, INNER_FACE].mean(1, keepdims=True)

    def rms(pitch):
        s = rotation_matrix(0.0, pitch, 0.0) @ synthetic[:, INNER_FACE]
        s = s - s.mean(1, keepdims=True)
        return float(np.sqrt((((s * r).sum() / (s * s).sum() * s - r) ** 2).sum(0).mean()))

    best = minimize_scalar(rms, bounds=(-30.0, 30.0), method="bounded")
    return float(best.x), rms(0.0), float(best.fun)


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=Path, default=Path("data/raw/aflw2000"), help="synthetic AFLW2000-style labels")
    parser.add_argument("--real", type=Path, help="real AFLW2000 labels (default: params.yaml report.real_aflw2000)")
    args = parser.parse_args(argv)
    real = args.real or real_folder(load_params().report.real_aflw2000)
    for folder, fix in ((real, "give --real FOLDER"), (args.synthetic, "run `dvc repro download` or give --synthetic FOLDER")):
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; {fix}")
    fits = {}
    for name, folder in (("real", real), ("synthetic", args.synthetic)):
        rows = proportions(folder)
        fits[name] = [np.polyfit(rows[:, 0], rows[:, k], 1) for k in (1, 2, 3)]
        print(f"{name} ({folder}, {len(rows)} near-frontal faces):")
        for (slope, at_zero), what in zip(fits[name], ("nose (nose - eyes) / (mouth - eyes)", "eyes height in the box", "mouth height in the box")):
            print(f"  {what}: {at_zero:.3f} at pitch 0, {10 * slope:+.4f} per 10 deg")
    (slope, at_zero), real_frontal = fits["synthetic"][0], fits["real"][0][1]
    print(f"the synthetic faces have the real frontal nose ratio ({real_frontal:.3f}) at pitch {(real_frontal - at_zero) / slope:+.1f} deg")
    shapes = {name: np.median(head_frame_shapes(folder), axis=0) for name, folder in (("real", real), ("synthetic", args.synthetic))}
    print("mean face in the label frame (eye-mouth spans from the eyes; y down, z away from the camera):")
    print(f"  {'landmark':<22}{'real y':>8}{'synth y':>9}{'real z':>8}{'synth z':>9}")
    for index, what in LANDMARKS.items():
        (ry, rz), (sy, sz) = shapes["real"][1:, index], shapes["synthetic"][1:, index]
        print(f"  {f'{index} {what}':<22}{ry:>+8.3f}{sy:>+9.3f}{rz:>+8.3f}{sz:>+9.3f}")
    pitch, before, after = pitch_misalignment(shapes["real"], shapes["synthetic"])
    print(f"the synthetic mean face turned by {pitch:+.2f} deg of pitch fits the real one best "
          f"(inner-face rms {before:.4f} -> {after:.4f} eye-mouth spans)")


if __name__ == "__main__":
    main()
