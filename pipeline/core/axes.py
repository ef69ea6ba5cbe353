"""Pose axes in the image plane, in the harness convention (pipeline.core.angles.rotation_matrix:
head-to-camera rotation, x right, y down, z away from the camera), projected orthographically
from the head centre: red = the head's x axis (its left-to-right), green = up (-y), blue = the
facing direction (-z). The report's pictures (pipeline.reporting.visuals) and the annotated
photos and video of `python -m pipeline.predict` both draw these."""
from __future__ import annotations

import numpy as np

from pipeline.core.angles import rotation_matrix

AXES = ((0, 1.0, "red"), (1, -1.0, "green"), (2, -1.0, "blue"))  # (column of R, sign, colour)


def axis_segments(ypr, centre, length: float) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """Image-plane end points (start, end, colour) of the three drawn axes for one pose."""
    r = rotation_matrix(*ypr)
    start = np.asarray(centre, dtype=float)
    return [(start, start + sign * length * r[:2, col], colour) for col, sign, colour in AXES]
