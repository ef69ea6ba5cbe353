"""Checks on the 400 real AFLW2000 images in ../shared/datasets or $AFLW2000_DEV (skipped, with the reason
printed, where that folder is absent). The images are read in place, never copied."""

import numpy as np
import pytest
import scipy.io
from scipy.stats import spearmanr

from pipeline.core import angles
from pipeline.data import readers

from tests.support import REAL_AFLW2000 as REAL
from tests.support import needs_real_aflw2000 as needs_real


@needs_real
def test_reader_keeps_exactly_the_samples_within_99_degrees():
    mats = sorted(REAL.glob("image*.mat"))
    # Independent count straight from the .mat files.
    expected = sum(np.all(np.abs(np.degrees(scipy.io.loadmat(m)["Pose_Para"][0, :3])) <= 99) for m in mats)
    s = readers.read_aflw2000(REAL)
    assert s.n_read == len(mats) == 400
    assert len(s.table) == expected and s.n_filtered == 400 - expected


@needs_real
def test_visual_convention_matches_real_labels():
    """pipeline.core.angles' convention, measured on the fitted 68 landmarks of real images:
    positive yaw moves the nose to the image's left, positive pitch moves it up towards the
    eyes, positive roll turns the eye line clockwise (image y points down)."""
    rows = []
    for m in sorted(REAL.glob("image*.mat")):
        mat = scipy.io.loadmat(m)
        ypr = angles.pose_para_to_ypr(mat["Pose_Para"])
        pts = mat["pt3d_68"][:2]
        eyes = (pts[:, 36] + pts[:, 45]) / 2
        face = np.linalg.norm(pts[:, 8] - (pts[:, 19] + pts[:, 24]) / 2)
        eye_line = np.degrees(np.arctan2(pts[1, 45] - pts[1, 36], pts[0, 45] - pts[0, 36]))
        rows.append((*ypr, (pts[0, 30] - eyes[0]) / face, (pts[1, 30] - eyes[1]) / face, eye_line))
    r = np.array(rows)
    moderate = np.all(np.abs(r[:, :3]) < 60, axis=1) & (np.abs(r[:, 0]) < 30)
    assert spearmanr(r[moderate, 0], r[moderate, 3])[0] < -0.5  # yaw: nose x decreases
    assert spearmanr(r[moderate, 1], r[moderate, 4])[0] < -0.5  # pitch: nose y decreases (up)
    assert spearmanr(r[moderate, 2], r[moderate, 5])[0] > 0.5  # roll: eye line turns clockwise
