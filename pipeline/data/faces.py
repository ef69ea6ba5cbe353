"""Faces in photos and video frames: the face detector, and the crop a checkpoint's own crop rule
makes around a detected face.

Detector: YuNet, the network of libfacedetection (Shiqi Yu et al.), through the `yuface` package:
its wheel holds the network compiled into a C++ library, so nothing is downloaded at run time.
Code and weights are under libfacedetection's 3-clause BSD licence. It was chosen over MTCNN
(facenet-pytorch, MIT) after both ran on the 400 real AFLW2000 images of
../shared/datasets/AFLW2000-dev: YuNet found the face in 396 (60 of the 61 with |yaw| 60-99
degrees), MTCNN in 382 (51 of 61), and YuNet took half the time (107 against 244 ms an image on
one core). It runs on the CPU; only the pose model moves to a GPU.

Crop. The checkpoint's crop rule (pipeline.data.croprules: HopeNet's margins, or FSA-Net's
padding) was defined on the box of the 68 landmarks, and the training crops (300W-LP) and the
evaluate path (AFLW2000) apply it to that box. A detector's box is another box: YuNet's reaches
up to the forehead, while the landmark box starts at the eyebrows. So a detected box is first
mapped to the landmark box it comes with on average (`landmark_box`, offsets below), and the
checkpoint's rule with its test margin (crop.rule, crop.test_k) is applied to that, exactly as
the evaluate path applies it to a true landmark box. The crop then encloses a detected face as
the training and test crops enclose a labelled one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config.params import Crop
from pipeline.data import croprules

DETECTOR = "YuNet (libfacedetection, via the yuface package)"
MIN_SCORE = 0.5  # yuface's default; every true face of the 400 AFLW2000 images scored >= 0.49, 95% >= 0.84
MAX_SIDE = 960  # yuface warns that larger images detect worse: frames are shrunk to this side first

# Landmark box from a YuNet box (x0, y0, x1, y1), as fractions of the detected box's width and
# height: the median over the 397 faces YuNet found on the 400 AFLW2000 images (confidence >= 0.3)
# of (landmark box - detected box) / detected size; interquartile ranges 0.10, 0.07, 0.12, 0.04.
# The top edge moves down by a quarter (the forehead), the sides come in a little.
LANDMARK_OFFSETS = (0.05, 0.26, -0.03, -0.02)


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # detector box, x0 y0 x1 y1 in image pixels
    score: float  # detector confidence, 0..1


def detect(image: np.ndarray, min_score: float = MIN_SCORE) -> list[Face]:
    """Faces in an RGB uint8 image (H x W x 3), most confident first."""
    import yuface  # imported here: the rest of the harness runs without it

    h, w = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    if scale < 1.0:
        from PIL import Image

        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    scores, boxes, _ = yuface.detect(bgr, conf=min_score)
    faces = [Face(tuple(float(v) / scale for v in (x, y, x + bw, y + bh)), float(s) / 100.0)
             for s, (x, y, bw, bh) in zip(scores, boxes.astype(np.float64))]
    return sorted(faces, key=lambda f: -f.score)


def landmark_box(box) -> tuple[float, float, float, float]:
    """The 68-landmark box a YuNet box comes with on average (LANDMARK_OFFSETS)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    a, b, c, d = LANDMARK_OFFSETS
    return x0 + a * w, y0 + b * h, x1 + c * w, y1 + d * h


def crop_box(box, crop: Crop) -> tuple[float, float, float, float]:
    """The region cut out for a detected face: the checkpoint's rule and test margin applied to
    the landmark box of the detection, as the evaluate path applies them to a labelled one."""
    return croprules.crop_box(landmark_box(box), crop.rule, crop.test_k)
