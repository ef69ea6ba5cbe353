"""Head geometry as triangle meshes: a real face shape on a procedural head.

The face is MediaPipe's canonical face model (assets/canonical_face_model.obj, 468 vertices,
898 triangles; Apache-2.0, see assets/README.md), an average adult face measured in
centimetres. It is moved into the head frame of head.py (x to the image's right at zero pose, y
down, z away from the camera, 1 unit = 100 mm, eyes at y = 0) and deformed per identity (face
width, height and depth, nose, jaw, chin, brow ridge, smooth random bumps, mouth opening and
smile). Around it: a cranium ellipsoid whose front passes through the face model's outer rim
(so that skin continues from face to skull), a filler under the jaw, two ears, and the hair
shells; neck and torso are added per pose (head.body_parts).

Every part is a `Part`: vertices (N x 3, head frame), triangles (T x 3, counter-clockwise seen
from outside), vertex normals, a material, and flags: `solid` parts are the head proper (they
hide landmarks and make the head mask), `cull` parts drop triangles facing away from the camera,
and a part with `clip` keeps only the fragments whose head-frame point passes it (hair shells).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

ASSETS = Path(__file__).parent / "assets"
SKIN, HAIR, CLOTH, HAT, NECK, EAR = range(6)
MP_EYE_Y = 2.62  # canonical model: height of the eye corners (cm)
MP_CENTRE_Z = -4.5  # canonical model: depth of the head centre (cm), about mid-cranium

# Index lists on the canonical face model (checked against its picture): contours in order.
EYE_R = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)  # image-left eye
EYE_L = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
LIPS_OUT = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_IN = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
BROW_R_UP, BROW_R_LO = (70, 63, 105, 66, 107), (46, 53, 52, 65, 55)  # outer to inner
BROW_L_UP, BROW_L_LO = (300, 293, 334, 296, 336), (276, 283, 282, 295, 285)
OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149,
        150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
NOSE_RIDGE = (168, 6, 197, 195, 5, 4, 1)
NOSE_TIP = 1
CHIN = 152


@dataclass
class Part:
    verts: np.ndarray  # (N, 3) head frame
    tris: np.ndarray  # (T, 3)
    material: int
    solid: bool = True
    cull: bool = True
    clip: Callable | None = None
    uv: np.ndarray | None = None  # (N, 2) face texture coordinates, face part only
    normals: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.normals is None:
            self.normals = vertex_normals(self.verts, self.tris)


def vertex_normals(verts, tris):
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    fn = np.cross(b - a, c - a)  # area-weighted, outward for counter-clockwise-from-outside triangles
    if fn.dtype == np.float64:  # per vertex, the sum of its triangles' normals over corners 0, 1, 2 in
        # triangle order: bincount adds its weights in input order, so these are np.add.at's sums
        idx = np.asarray(tris).T.ravel()
        n = np.stack([np.bincount(idx, np.tile(fn[:, j], 3), minlength=len(verts)) for j in range(3)], 1)
    else:
        n = np.zeros_like(verts)
        for k in range(3):
            np.add.at(n, tris[:, k], fn)
    return n / (np.linalg.norm(n, axis=1, keepdims=True) + 1e-12)


@lru_cache(maxsize=1)
def canonical_face():
    """(vertices in head units, head frame; triangles oriented outward; uv) of the canonical model."""
    v, vt, f = [], [], []
    for line in (ASSETS / "canonical_face_model.obj").read_text().splitlines():
        t = line.split()
        if not t:
            continue
        if t[0] == "v":
            v.append([float(x) for x in t[1:4]])
        elif t[0] == "vt":
            vt.append([float(x) for x in t[1:3]])
        elif t[0] == "f":
            f.append([int(x.split("/")[0]) - 1 for x in t[1:4]])
    v, f = np.array(v), np.array(f, dtype=np.int64)
    head = np.stack([v[:, 0], -(v[:, 1] - MP_EYE_Y), -(v[:, 2] - MP_CENTRE_Z)], axis=1) / 10.0
    # orient triangles so that their normals point away from the head centre (towards -z on the face)
    a, b, c = head[f[:, 0]], head[f[:, 1]], head[f[:, 2]]
    fn = np.cross(b - a, c - a)
    outward = np.einsum("ij,ij->i", fn, (a + b + c) / 3 - np.array([0.0, 0.1, 0.3])) > 0
    f = np.where(outward[:, None], f, f[:, ::-1])
    uv = np.array(vt)
    return head, f, uv


@lru_cache(maxsize=16)
def unit_sphere(nu: int = 32, nv: int = 20):
    """UV sphere (vertices on the unit sphere, triangles counter-clockwise seen from outside)."""
    th = np.linspace(0, np.pi, nv + 1)  # polar angle from -y (top)
    ph = np.linspace(0, 2 * np.pi, nu, endpoint=False)
    T, P = np.meshgrid(th[1:-1], ph, indexing="ij")
    pts = np.stack([np.sin(T) * np.sin(P), -np.cos(T), -np.sin(T) * np.cos(P)], -1).reshape(-1, 3)
    pts = np.vstack([[0, -1, 0], pts, [0, 1, 0]])
    rows = nv - 1
    c = np.arange(nu)
    idx = lambda r, cc: 1 + r * nu + (cc % nu)  # noqa: E731
    tris = [np.stack([np.zeros(nu, int), idx(0, c + 1), idx(0, c)], 1)]
    for r in range(rows - 1):
        tris += [np.stack([idx(r, c), idx(r, c + 1), idx(r + 1, c + 1)], 1), np.stack([idx(r, c), idx(r + 1, c + 1), idx(r + 1, c)], 1)]
    tris.append(np.stack([np.full(nu, len(pts) - 1), idx(rows - 1, c), idx(rows - 1, c + 1)], 1))
    tris = np.vstack(tris).astype(np.int64)
    a, b, cc = pts[tris[:, 0]], pts[tris[:, 1]], pts[tris[:, 2]]
    if np.einsum("ij,ij->i", np.cross(b - a, cc - a), (a + b + cc) / 3).mean() < 0:
        tris = tris[:, ::-1].copy()
    pts.setflags(write=False)
    tris.setflags(write=False)
    return pts, tris


def ellipsoid_mesh(centre, axes, rot=None, nu=32, nv=20):
    """Ellipsoid with semi-axes `axes` along the columns of `rot`: vertices (N, 3), triangles
    counter-clockwise seen from outside."""
    pts, tris = unit_sphere(nu, nv)
    q = np.eye(3) if rot is None else np.asarray(rot, float)
    return (pts * np.asarray(axes, float)) @ q.T + np.asarray(centre, float), tris


def rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
