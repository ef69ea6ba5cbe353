"""The synthetic head: identity, triangle-mesh geometry, 68 + 21 landmarks, textures and a numpy
rasteriser with a depth buffer.

Frames and units. The head's own frame ("head frame") has x to the image's right at zero pose
(the subject's left), y down and z away from the camera: the nose points to -z, the crown to -y.
One head unit is 100 mm (`HEAD_UNIT_MM`); the origin, called the head centre, is in the middle of
the cranium at eye height (eyes at y = 0, nose tip at z = -1.2). With R =
`pipeline.angles.rotation_matrix(yaw, pitch, roll)` a head point p lands in the camera frame (x
right, y down, z away) at q = R @ p (relative to the head centre), and its pixel is
centre + scale * q[:2] * d / (d + q[2]) for a camera `distance` d (head units; d = inf is
orthographic, and `scale` is px per unit at the head centre's depth).

Geometry (mesh.py): MediaPipe's canonical face model, deformed per identity (face proportions,
nose, jaw, chin, brow ridge, bumps, mouth opening, smile, eyelids), continued under the jaw to
the neck, on a cranium ellipsoid with two ears and optional hair shells and hat; neck and torso
stay upright in the camera frame. The face carries a painted texture (eyes, iris, lashes,
brows, lips, nostrils, beard, make-up) in the coordinates of its frontal projection; other
parts are coloured from head-frame position (hair line, beard, ear, neck shadow). Shading is
Lambert (key + fill) + ambient with a fixed per-vertex ambient occlusion + a weak Blinn
specular, and optionally a cast shadow from the key light (shadow map).

Landmarks: 68 in the iBUG layout (0-16 jaw from image-left at zero pose, 17-26 brows, 27-35
nose, 36-47 eyes, 48-67 mouth) and 21 in the AFLW layout (6 brow, 6 eye, left ear lobe, 3 nose,
right ear lobe, 3 mouth, chin), all points of the mesh surface. A landmark is self-occluded when
a nearer surface of the head proper (face, cranium, ears; not hair, hat, neck or torso) covers
its pixel. The AFLW chin is the exception: AFLW's annotators clicked the lowest visible point of
the chin, so when a head looking down hides the menton behind the chin's front, the 21-point chin
moves up the face's midline to the lowest point still seen (`chin_path`); real AFLW2000 keeps
the chin on nearly every head looking down.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.core.angles import rotation_matrix
from pipeline.sources.synthetic import mesh as M, raster
from pipeline.sources.synthetic.mesh import CLOTH, EAR, HAIR, HAT, NECK, SKIN, Part

HEAD_UNIT_MM = 100.0
TEX = 160  # side of the face texture (px)

# The AFLW 21 points in their file order ("l" = image-left at zero pose).
AFLW21_NAMES = (
    "brow_l_outer", "brow_l_centre", "brow_l_inner", "brow_r_inner", "brow_r_centre", "brow_r_outer",
    "eye_l_outer", "eye_l_centre", "eye_l_inner", "eye_r_inner", "eye_r_centre", "eye_r_outer",
    "ear_l", "nose_l", "nose_tip", "nose_r", "ear_r", "mouth_l", "mouth_centre", "mouth_r", "chin",
)


@dataclass(frozen=True)
class Identity:
    """Shape, expression, colours and style of one person (sizes are factors around 1)."""

    width: float
    height: float
    depth: float
    jaw: float
    chin: float
    nose: float  # protrusion
    nose_len: float
    nose_w: float
    ear: float
    brow_ridge: float
    cheek: float
    mouth_w: float
    lips: float
    bumps: int  # seed of small random shape variations
    mouth_open: float  # -1 lips pressed together .. 0 the canonical face's parted lips .. 1 wide open
    smile: float  # -0.5 .. 1
    eye_open: float  # 0.3 .. 1.1
    brow_raise: float
    gaze: tuple  # iris offset: x in quarter eye widths, y in 2 texture px (camera_gaze turns angles into it)
    skin: tuple
    lip_col: tuple
    iris: tuple
    hair_col: tuple
    brow_col: tuple
    makeup: float  # eye shadow / liner strength
    hair: str  # bald | shaved | short | medium | long | fringe
    hairline: float
    beard: str  # none | stubble | moustache | goatee | full
    shirt: tuple
    tex_seed: int
    hair_volume: float = 1.0  # multiplier of the hair style's thickness (HAIR_THICKNESS)
    eye_detail: float = 0.0  # 0: painted eyes and solid brows; up to 1: lashes, brow hairs, creases, catchlights (_eye_detail)


# The shape factors of Identity and the range each is drawn from, uniformly, in this order
# (sample_identity; benchmarks.render_cues draws heads at both ends of each range)
SHAPE_RANGES = {
    "width": (0.92, 1.08), "height": (0.93, 1.07), "depth": (0.93, 1.07), "jaw": (0.85, 1.15), "chin": (0.8, 1.2),
    "nose": (0.75, 1.3), "nose_len": (0.85, 1.15), "nose_w": (0.85, 1.25), "ear": (0.85, 1.15), "brow_ridge": (0.5, 1.6),
    "cheek": (0.6, 1.4), "mouth_w": (0.88, 1.12), "lips": (0.6, 1.4),
}


@dataclass(frozen=True)
class Light:
    """Lights in the camera frame; directions point from the surface towards the light."""

    direction: tuple
    colour: tuple
    ambient: float
    ambient_colour: tuple = (1.0, 1.0, 1.0)
    fill_direction: tuple = (0.0, 0.0, -1.0)
    fill_colour: tuple = (0.0, 0.0, 0.0)
    specular: float = 0.08
    shadow: float = 0.0  # 0: no cast shadow, 1: the key light fully blocked in shadow


@dataclass
class Head:
    ident: Identity
    parts: list  # mesh.Part, head frame
    lm68: np.ndarray  # 3 x 68 head-frame landmarks
    lm21: np.ndarray  # 3 x 21
    texture: np.ndarray  # TEX x TEX x 3 float32 face albedo
    hat: tuple | None
    chin_path: np.ndarray  # 3 x CHIN_STEPS midline points from below the lower lip down to the menton


# ----------------------------------------------------------------------------------------------
# Geometry


def _smoothstep(a, b, x):
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _gauss(v, c, s):
    d = (v - np.asarray(c)) / np.asarray(s)
    return np.exp(-(d * d).sum(1))


JAW_HINGE = (0.2, 0.05)  # head-frame (y, z) of the axis the lower jaw turns about


@lru_cache(maxsize=1)
def _lip_close_angle() -> float:
    """The size of the jaw turn (radians; the turn is upwards, negative) that brings the canonical
    face's lower inner lip (vertex 14) up to its upper one (13): the canonical face has its lips
    parted by 0.055 head units (about 0.08 of the eye-to-mouth distance), where about a quarter of
    real near-frontal AFLW2000 faces have them together."""
    V, _ = _canonical()
    py, pz = JAW_HINGE
    dy, dz = V[14, 1] - py, V[14, 2] - pz
    r, phi = np.hypot(dy, dz), np.arctan2(-dz, dy)  # y(ang) = py + r cos(ang - phi)
    return float(np.arccos((V[13, 1] - py) / r) - phi)


def _deform_face(idt: Identity, V: np.ndarray) -> np.ndarray:
    """The canonical face (N x 3, head frame) reshaped for one identity."""
    v = V.copy()
    x, y, z = v.T
    # expression first, on the canonical layout: mouth opening (lower jaw turns about the ear axis)
    ym = 0.5 * (V[13, 1] + V[14, 1])
    low = _smoothstep(ym - 0.004, ym + 0.012, y) * (1 - _smoothstep(0.2, 0.6, z + 1.0) * (y < 0.5))
    ang = np.radians(14.0) * idt.mouth_open if idt.mouth_open >= 0 else _lip_close_angle() * idt.mouth_open
    py, pz = JAW_HINGE
    dy, dz = y - py, z - pz
    y2 = py + dy * np.cos(ang) - dz * np.sin(ang)
    z2 = pz + dy * np.sin(ang) + dz * np.cos(ang)
    v[:, 1] += low * (y2 - y)
    v[:, 2] += low * (z2 - z)
    # smile: mouth corners up and out
    for s, corner in ((-1, 61), (1, 291)):
        w = _gauss(V, V[corner], (0.12, 0.1, 0.4))
        v[:, 1] -= 0.035 * idt.smile * w
        v[:, 0] += s * 0.02 * idt.smile * w
    # eyelids: the upper contour towards the lower one
    for eye in (M.EYE_R, M.EYE_L):
        upper, lower = list(eye[9:]) + [eye[0]], list(eye[1:8])
        gap = V[lower, 1].mean() - V[upper, 1].mean()
        v[list(eye[10:15]), 1] += (1 - idt.eye_open) * gap * 0.9
    v[:, 1] -= idt.brow_raise * 0.025 * _gauss(V, (0, -0.2, -0.85), (0.5, 0.12, 0.5))
    # shape
    x, y, z = v.T.copy()
    nose_w = _gauss(V, (0, 0.2, -1.2), (0.16, 0.3, 0.35))
    z -= (idt.nose - 1) * 0.18 * nose_w * _smoothstep(-0.9, -1.2, V[:, 2])
    y += (idt.nose_len - 1) * 0.12 * nose_w * _smoothstep(-0.1, 0.35, V[:, 1])
    x *= 1 + (idt.nose_w - 1) * _gauss(V, (0, 0.38, -1.05), (0.2, 0.12, 0.3))
    lowface = _smoothstep(0.35, 1.0, V[:, 1])
    x *= 1 + (idt.jaw - 1) * lowface * (1 - 0.6 * _gauss(V, (0, 1.2, -0.9), (0.25, 0.3, 0.5)))
    chin = _gauss(V, (0, 1.15, -0.85), (0.32, 0.22, 0.5))
    y += (idt.chin - 1) * 0.14 * chin
    z -= (idt.chin - 1) * 0.06 * chin
    z -= (idt.brow_ridge - 1) * 0.05 * _gauss(V, (0, -0.18, -0.9), (0.6, 0.09, 0.4))
    cheek = _gauss(np.abs(V), (0.45, 0.35, 0.75), (0.18, 0.15, 0.3))
    z -= (idt.cheek - 1) * 0.05 * cheek
    x += np.sign(V[:, 0]) * (idt.cheek - 1) * 0.03 * cheek
    mouth = _gauss(V, (0, 0.66, -0.95), (0.3, 0.12, 0.5))
    x *= 1 + (idt.mouth_w - 1) * mouth
    z -= (idt.lips - 1) * 0.03 * _gauss(V, (0, 0.66, -1.0), (0.22, 0.08, 0.2))
    rng = np.random.default_rng(idt.bumps)
    for _ in range(6):
        c = V[rng.integers(len(V))]
        z -= rng.normal(0, 0.015) * _gauss(V, c, np.full(3, rng.uniform(0.12, 0.3)))
    v = np.stack([x * idt.width, y * idt.height, z * idt.depth], axis=1)
    return v


def _jaw_loft(V: np.ndarray, steps: int = 5, rn: float = 0.42, zc: float = 0.12, yn: float = 1.1):
    """Vertices and triangles continuing the face's lower rim (ear to chin to ear) to a ring inside
    the neck: the underside of the jaw."""
    ov = list(M.OVAL)
    ring = ov[ov.index(356):ov.index(127) + 1]
    r = V[ring]
    phi = np.arctan2(r[:, 0], -(r[:, 2] - zc))
    n = np.stack([rn * np.sin(phi), np.full(len(r), yn * V[M.CHIN, 1] / 1.2), zc - rn * np.cos(phi)], 1)
    front = np.cos(phi).clip(0, 1) ** 2
    c = 0.5 * (r + n) + np.stack([0.1 * r[:, 0], 0.12 * front, -0.15 * front], 1)
    ts = np.linspace(0, 1, steps + 1)[1:]
    loops = [((1 - t) ** 2) * r + (2 * t * (1 - t)) * c + (t * t) * n for t in ts]
    base, m = len(V), len(ring)
    idx = [np.array(ring)] + [base + k * m + np.arange(m) for k in range(steps)]
    tris = []
    for a, b in zip(idx[:-1], idx[1:]):
        for j in range(m - 1):
            tris += [[a[j], b[j], b[j + 1]], [a[j], b[j + 1], a[j + 1]]]
    return np.vstack(loops), _orient(np.vstack([V, *loops]), np.array(tris), (0, 0.5, 0.0))


def _orient(verts, tris, inside):
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    out = np.einsum("ij,ij->i", np.cross(b - a, c - a), (a + b + c) / 3 - np.asarray(inside)) > 0
    return np.where(out[:, None], tris, tris[:, ::-1])


def _face_depth(face_v, face_t, res=0.02):
    """Depth grid of the face seen from the front (orthographic, `res` head units per cell):
    (z grid with inf outside the face, x0, y0, res)."""
    x0, y0 = face_v[:, 0].min() - res, face_v[:, 1].min() - res
    cols = int(np.ceil((face_v[:, 0].max() - x0) / res)) + 2
    rows = int(np.ceil((face_v[:, 1].max() - y0) / res)) + 2
    fr = raster.fragments((face_v[:, 0] - x0) / res, (face_v[:, 1] - y0) / res, face_t, (0, 0, cols, rows))
    z, _ = raster.resolve(fr.pix, fr.interp(face_t, face_v[:, 2]), rows * cols)
    return z.reshape(rows, cols), x0, y0, res


def _push_behind(verts, grid, margin=0.04):
    """Move points that lie inside the face's frontal outline and in front of (or just behind) its
    surface to `margin` behind it, so that the cranium never pokes through the face."""
    z, x0, y0, res = grid
    iu = np.round((verts[:, 0] - x0) / res).astype(int)
    iv = np.round((verts[:, 1] - y0) / res).astype(int)
    ok = (iu >= 0) & (iu < z.shape[1]) & (iv >= 0) & (iv < z.shape[0])
    zf = np.full(len(verts), np.inf)
    zf[ok] = z[iv[ok], iu[ok]]
    bad = np.isfinite(zf) & (verts[:, 2] < zf + margin)
    out = verts.copy()
    out[bad, 2] = zf[bad] + margin
    return out


def hair_limit(idt: Identity, p):
    """Hair covers head-frame points with y above this limit (the hairline, dropping to the nape)."""
    x, z = p[0], p[2]
    front = (idt.hairline + 0.3 * (x / 0.78) ** 2 + 0.07 * np.exp(-((np.abs(x) - 0.36) / 0.1) ** 2)
             + 0.02 * np.sin(37 * x + 11 * z) + 0.015 * np.sin(71 * x - 5 * z))
    nape = {"long": 0.75, "medium": 0.6}.get(idt.hair, 0.5)
    lim = front + (nape - front) * _smoothstep(-0.45, 0.1, z)
    if idt.hair == "bald":  # a horseshoe at the back and sides only
        lim = np.where((z > 0.0) & (p[1] > -0.1 + 0.03 * np.sin(23 * x + 9 * z)), lim, -9.0)
    return lim


def _lumpy(verts, centre, seed, amount):
    """Radial low-frequency bumps (hair volume)."""
    rng = np.random.default_rng(seed)
    d = verts - np.asarray(centre)
    r = np.linalg.norm(d, axis=1, keepdims=True)
    u = d / r
    k = rng.normal(size=(5, 3))
    bump = sum(np.sin(u @ kk * rng.uniform(2, 6) + rng.uniform(0, 6)) for kk in k) / 5
    return np.asarray(centre) + u * (r + amount * bump[:, None])


HAIR_THICKNESS = {"short": 0.04, "medium": 0.075, "long": 0.08, "fringe": 0.06}  # head units, over the cranium


def _hair_parts(idt: Identity, cran_c, cran_a) -> list:
    if idt.hair in ("shaved", "bald"):
        return []
    vol = HAIR_THICKNESS[idt.hair] * idt.hair_volume
    keep = lambda p: p[1] < hair_limit(idt, p) - 0.03  # noqa: E731
    c = (0, cran_c[1] - 0.02, cran_c[2] + 0.02)
    v, t = M.ellipsoid_mesh(c, np.asarray(cran_a) + vol, nu=36, nv=20)
    v = _lumpy(v, c, idt.tex_seed, 0.25 * vol)
    parts = [Part(v, t, HAIR, solid=False, cull=False, clip=keep)]
    if idt.hair == "long":
        keep_long = lambda p: (p[2] > -0.1 + 0.4 * np.clip(p[1] - 0.4, 0, 1)) & (p[1] < 1.4)  # noqa: E731
        v, t = M.ellipsoid_mesh((0, 0.4, 0.25), (0.82 * idt.width + 0.06, 1.15, 0.78), nu=28, nv=16)
        v = _lumpy(v, (0, 0.4, 0.25), idt.tex_seed + 1, 0.05)
        parts.append(Part(v, t, HAIR, solid=False, cull=False, clip=keep_long))
    return parts


def _hat_parts(cran_c, cran_a) -> list:
    crown = lambda p: p[1] < -0.45 + 0.25 * np.clip(p[2], 0, None)  # noqa: E731
    brim = lambda p: p[2] < -0.1  # noqa: E731
    v, t = M.ellipsoid_mesh((0, cran_c[1] - 0.02, cran_c[2] + 0.02), np.asarray(cran_a) + 0.09, nu=32, nv=18)
    b, bt = M.ellipsoid_mesh((0, -0.5, -0.5), (0.66, 0.035, 0.62), nu=24, nv=8)
    return [Part(v, t, HAT, solid=False, cull=False, clip=crown), Part(b, bt, HAT, solid=False, cull=False, clip=brim)]


def _along(V, chain, n):
    """n points spaced evenly by arc length along the polyline of vertex indices `chain`."""
    P = V[list(chain)]
    seg = np.linalg.norm(np.diff(P, axis=0), axis=1)
    s = np.r_[0, np.cumsum(seg)]
    t = np.linspace(0, s[-1], n)
    return np.stack([np.interp(t, s, P[:, k]) for k in range(3)], axis=1)


def _landmarks(F: np.ndarray, ears: list) -> tuple[np.ndarray, np.ndarray]:
    """3 x 68 and 3 x 21 landmarks from the deformed face vertices F and the two ear meshes."""
    mid = lambda a, b: 0.5 * (F[list(a)] + F[list(b)])  # noqa: E731
    chain = [127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356]
    jaw = _along(F, chain, 17)
    brow_l = mid(M.BROW_R_UP, M.BROW_R_LO)  # image-left brow, outer to inner
    brow_r = mid(M.BROW_L_UP, M.BROW_L_LO)[::-1]  # image-right brow, inner to outer
    nose = _along(F, [168, 6, 197, 195, 5, 4, 1], 4)  # nasion to the tip (1: the lowest point of the tip's front)
    base = F[[98, 97, 2, 326, 327]]
    eye_l = F[[33, 160, 158, 133, 153, 144]]
    eye_r = F[[362, 385, 387, 263, 373, 380]]
    mouth = F[[61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91]]
    inner = F[[78, 82, 13, 312, 308, 317, 14, 87]]
    lm68 = np.vstack([jaw, brow_l, brow_r, nose, base, eye_l, eye_r, mouth, inner]).T
    eye_c_l, eye_c_r = F[list(M.EYE_R)].mean(0), F[list(M.EYE_L)].mean(0)
    lobe = []  # the lobe where it meets the face: the lowest ear point of the ear's inner half
    for e in ears:
        inner = np.abs(e.verts[:, 0]) <= np.abs(e.verts[:, 0]).mean()
        cand = e.verts[inner]
        lobe.append(cand[np.argmax(cand[:, 1] - 0.3 * cand[:, 2])])
    lm21 = np.vstack([lm68[:, [17, 19, 21, 22, 24, 26]].T, lm68[:, [36]].T, eye_c_l, lm68[:, [39, 42]].T, eye_c_r,
                      lm68[:, [45]].T, lobe[0], F[129], lm68[:, [30]].T, F[358], lobe[1], lm68[:, [48]].T,
                      0.5 * (F[13] + F[14]), lm68[:, [54]].T, lm68[:, [8]].T]).T
    return lm68, lm21


CHIN_STEPS = 9


def _chin_path(F: np.ndarray) -> np.ndarray:
    """3 x CHIN_STEPS points along the face's midline from below the lower lip to the menton."""
    return _along(F, [18, 200, 199, 175, 152], CHIN_STEPS).T


@lru_cache(maxsize=1)
def _canonical():
    V, F, _ = M.canonical_face()
    return V, F


def build_head(idt: Identity) -> Head:
    """Meshes, texture and landmarks of one identity, hatless (with_hat puts a hat on it)."""
    V0, FT = _canonical()
    FV = _deform_face(idt, V0)
    loft_v, tris = _jaw_loft(FV)
    face = Part(np.vstack([FV, loft_v]), np.vstack([FT, tris]), SKIN)
    face.uv = _face_uv(np.vstack([V0, loft_v]))
    cran_c, cran_a = _cranium(idt)
    cv, ct = M.ellipsoid_mesh(cran_c, cran_a, nu=40, nv=24)
    taper = 1 - 0.4 * _smoothstep(0.25, 0.95, cv[:, 1]) * _smoothstep(-0.3, 0.2, cv[:, 2])  # the skull's base narrows to the nape
    cv[:, 0] *= taper
    cv[:, 2] = 0.15 + (cv[:, 2] - 0.15) * taper
    grid = _face_depth(FV, FT)
    cran = Part(_push_behind(cv, grid), ct, SKIN)
    jv, jt = M.ellipsoid_mesh((0, 0.3 * idt.height, -0.08), (0.76 * idt.width * (0.9 + 0.1 * idt.jaw), 0.62 * idt.height, 0.55 * idt.depth),
                              nu=32, nv=16)
    jaw = Part(_push_behind(jv, grid), jt, SKIN)
    ears = []
    for s in (-1, 1):
        tr = FV[234 if s < 0 else 454]
        rot = M.rot_y(s * 0.3) @ M.rot_x(-0.18)
        ev, et = M.ellipsoid_mesh((tr[0] + s * 0.035, tr[1] - 0.03, tr[2] + 0.2 * idt.ear), (0.045, 0.3 * idt.ear, 0.16 * idt.ear),
                                  rot=rot, nu=16, nv=10)
        ears.append(Part(ev, et, EAR))
    lm68, lm21 = _landmarks(FV, ears)
    parts = [face, cran, jaw, *ears] + _hair_parts(idt, cran_c, cran_a)
    return Head(idt, parts, lm68, lm21, _face_texture(idt, V0), None, _chin_path(FV))


def _cranium(idt: Identity):
    """Centre and semi-axes of the cranium ellipsoid (the hair and hat shells are built over it)."""
    return np.array([0.0, -0.119 * idt.height, 0.004 * idt.depth]), np.array([0.815 * idt.width, 1.052 * idt.height, 1.012 * idt.depth])


def with_hat(head: Head, hat: tuple) -> Head:
    """A hatless head (build_head) wearing `hat`: its parts with the hat's shells over the cranium
    appended, the face, texture and landmarks shared."""
    return Head(head.ident, list(head.parts) + _hat_parts(*_cranium(head.ident)), head.lm68, head.lm21, head.texture, hat,
                head.chin_path)


EYEBALL_RADIUS = 0.12  # head units (12 mm): how far the iris centre moves per unit sine of the eye's turn
EYE_RANGE = (35.0, 25.0, 30.0)  # how far eyes turn in their sockets (deg): sideways, up, down


@lru_cache(maxsize=1)
def _eye_width() -> float:
    """Width of the painted eye opening in texture px (the same for every identity: canonical uv)."""
    xs = _face_uv(_canonical()[0])[list(M.EYE_R), 0] * TEX
    return float(xs.max() - xs.min())


def camera_gaze(R, jitter=(0.0, 0.0)) -> tuple:
    """The `Identity.gaze` of eyes looking at the camera from a head at head-to-camera rotation R,
    as subjects of photographs do: the direction to the camera (-z of the camera frame) in the head
    frame, turned `jitter` degrees more (sideways to +x, down), limited to EYE_RANGE, moves the iris
    by EYEBALL_RADIUS x sine of each turn in the texture's frontal projection."""
    d = np.asarray(R, dtype=np.float64).T @ np.array([0.0, 0.0, -1.0])
    side = np.clip(np.degrees(np.arctan2(d[0], -d[2])) + jitter[0], -EYE_RANGE[0], EYE_RANGE[0])
    down = np.clip(np.degrees(np.arctan2(d[1], -d[2])) + jitter[1], -EYE_RANGE[1], EYE_RANGE[2])
    px_x, px_y = EYEBALL_RADIUS * TEX / 1.6, EYEBALL_RADIUS * TEX / 1.9  # _face_uv's scale, texture px per head unit
    return (float(px_x * np.sin(np.radians(side)) / (0.25 * _eye_width())), float(px_y * np.sin(np.radians(down)) / 2))


def with_gaze(head: Head, gaze) -> Head:
    """The same head with its irises moved to `gaze` (only the face texture changes)."""
    ident = replace(head.ident, gaze=tuple(gaze))
    out = replace(head, ident=ident, texture=_face_texture(ident, _canonical()[0]))
    if hasattr(head, "_scene"):
        out._scene = head._scene  # the same meshes (_head_scene)
    return out


def _face_uv(V):
    """Texture coordinates of face vertices: their frontal projection on the canonical face."""
    return np.stack([(V[:, 0] + 0.8) / 1.6, (V[:, 1] + 0.62) / 1.9], axis=1).clip(0, 1)


# ----------------------------------------------------------------------------------------------
# Face texture


def _noise(rng, cells, size, channels=1):
    grid = (rng.random((cells, cells, channels)) * 255).astype(np.uint8)
    img = Image.fromarray(grid[..., 0] if channels == 1 else grid).resize((size, size), Image.BICUBIC)
    return np.asarray(img, np.float32).reshape(size, size, channels) / 255


def _face_texture(idt: Identity, V) -> np.ndarray:
    """TEX x TEX x 3 float albedo of the face in frontal-projection coordinates."""
    rng = np.random.default_rng(idt.tex_seed)
    uv = _face_uv(V) * TEX
    pt = lambda ix: [tuple(uv[i]) for i in ix]  # noqa: E731
    skin = np.asarray(idt.skin, np.float32)
    base = np.ones((TEX, TEX, 3), np.float32) * skin
    base *= (0.93 + 0.14 * _noise(rng, 12, TEX))  # blotches
    base *= (0.97 + 0.06 * _noise(rng, 40, TEX))
    img = Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8))
    d = ImageDraw.Draw(img, "RGBA")
    c8 = lambda c, a=255: tuple(int(v) for v in np.clip(np.asarray(c) * 255, 0, 255)) + (int(a),)  # noqa: E731
    # shading cues painted in: eye sockets, blush
    for eye in (M.EYE_R, M.EYE_L):
        cx, cy = uv[list(eye)].mean(0)
        r = 0.09 * TEX
        d.ellipse((cx - r * 1.2, cy - r * 0.9, cx + r * 1.2, cy + r * 0.6), fill=c8(skin * 0.7, 60 + 80 * idt.makeup))
    layer = img.filter(ImageFilter.GaussianBlur(TEX * 0.025))
    img = layer
    d = ImageDraw.Draw(img, "RGBA")
    # eyes: sclera, iris, pupil, lash line
    for eye in (M.EYE_R, M.EYE_L):
        poly = pt(eye)
        d.polygon(poly, fill=c8(np.array([0.9, 0.86, 0.82]) * rng.uniform(0.65, 0.95)))
        (cx, cy), ir = _iris(idt, uv, eye)
        iris = Image.new("L", img.size, 0)
        ImageDraw.Draw(iris).polygon(poly, fill=255)
        irl = Image.new("RGBA", img.size, (0, 0, 0, 0))
        dl = ImageDraw.Draw(irl)
        dl.ellipse((cx - ir, cy - ir, cx + ir, cy + ir), fill=c8(idt.iris))
        dl.ellipse((cx - ir * 0.45, cy - ir * 0.45, cx + ir * 0.45, cy + ir * 0.45), fill=(10, 8, 8, 255))
        img.paste(irl, (0, 0), Image.fromarray(np.minimum(np.asarray(iris), np.asarray(irl)[..., 3])))
        upper = pt(list(eye[8:]) + [eye[0]])
        d.line(upper, fill=c8(np.array([0.05, 0.04, 0.04]), 240), width=max(2, int(TEX * 0.016 * (1 + idt.makeup))))
        crease = [tuple(q) for q in uv[list(eye[8:]) + [eye[0]]] - np.array([0, 0.012 * TEX])]
        d.line(crease, fill=c8(skin * 0.55, 150), width=1)
        d.line(pt(eye[:9]), fill=c8(skin * 0.5, 120), width=1)
    # brows
    for up, lo in ((M.BROW_R_UP, M.BROW_R_LO), (M.BROW_L_UP, M.BROW_L_LO)):
        alpha = rng.integers(150, 245) * (1 - 0.45 * idt.eye_detail)  # hairs drawn over a detailed brow carry the rest
        d.polygon(pt(up) + pt(lo[::-1]), fill=c8(idt.brow_col, alpha))
    # lips and mouth interior
    d.polygon(pt(M.LIPS_OUT), fill=c8(idt.lip_col))
    d.polygon(pt(M.LIPS_IN), fill=c8(np.array([0.25, 0.06, 0.06])))
    if idt.mouth_open > 0.35 or idt.smile > 0.5:
        tu = [uv[i] for i in (80, 81, 82, 13, 312, 311, 310)]
        tl = [tuple(p + np.array([0, 0.025 * TEX])) for p in tu[::-1]]
        d.polygon([tuple(p) for p in tu] + tl, fill=c8(np.array([0.88, 0.85, 0.78]) * rng.uniform(0.8, 1.0)))
    d.line(pt(M.LIPS_IN) + [tuple(uv[M.LIPS_IN[0]])], fill=c8(np.asarray(idt.lip_col) * 0.5), width=1)
    # nostrils
    for a, b in ((98, 97), (327, 326)):
        cx, cy = 0.5 * (uv[a] + uv[b]) - np.array([0, 0.008 * TEX])
        r = 0.018 * TEX
        d.ellipse((cx - r * 1.3, cy - r * 0.7, cx + r * 1.3, cy + r * 0.7), fill=c8(skin * 0.25, 200))
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    if idt.eye_detail > 0:  # drawn after the blur: fine strokes, as a photograph down-sampled from a large face shows them
        img = Image.alpha_composite(img.convert("RGBA"), _eye_detail(idt, uv, skin)).convert("RGB")
    out = np.asarray(img, np.float32) / 255
    out.setflags(write=False)
    return out


def _iris(idt: Identity, uv, eye) -> tuple:
    """Centre (texture px) and radius of the iris of `eye` (a mesh.EYE_* ring), moved by the gaze."""
    xs, ys = uv[list(eye), 0], uv[list(eye), 1]
    return (xs.mean() + idt.gaze[0] * (xs.max() - xs.min()) * 0.25, ys.mean() + idt.gaze[1] * 2), 0.24 * (xs.max() - xs.min())


def _strokes(d, roots, directions, lengths, colour, alphas):
    for (x, y), (dx, dy), length, a in zip(roots, directions, lengths, alphas):
        d.line([(x, y), (x + dx * length, y + dy * length)], fill=colour + (int(a),), width=1)


def _at(poly: np.ndarray, t) -> np.ndarray:
    """Points at shares `t` (0..1) of a polyline's run of vertices (k x 2), linear between vertices."""
    grid = np.linspace(0, 1, len(poly))
    return np.stack([np.interp(t, grid, poly[:, k]) for k in (0, 1)], 1)


def _eye_detail(idt: Identity, uv, skin) -> Image.Image:
    """RGBA layer of the fine detail of photographed eyes and brows, `idt.eye_detail` strong: upper
    and lower lashes, a second lid crease and the fold under the eye, the iris's dark rim and a
    catchlight, and brow hairs. Its own random stream, so the rest of the texture stays as drawn."""
    rng = np.random.default_rng([idt.tex_seed, 1])
    s = idt.eye_detail
    layer = Image.new("RGBA", (TEX, TEX), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    dark = tuple(int(v * 255) for v in np.asarray(idt.brow_col) * 0.4)
    shade = tuple(int(v) for v in np.clip(skin * 0.5 * 255, 0, 255))
    for eye in (M.EYE_R, M.EYE_L):
        inner, outer = uv[eye[8]], uv[eye[0]]
        out_x = np.sign(outer[0] - inner[0])
        upper = uv[list(eye[8:]) + [eye[0]]]  # inner corner to outer corner, along the top
        lower = uv[list(eye[8:0:-1]) + [eye[0]]]  # inner corner to outer corner, along the bottom
        for lid, n, up, length, alpha in ((upper, 14 + 20 * s, -1, 0.026, (150, 240)), (lower, 5 + 8 * s, 1, 0.014, (70, 150))):
            t = np.sort(rng.uniform(0.1, 1.0, int(n)))
            roots = _at(lid, t)
            dirs = np.stack([out_x * (0.15 + 0.9 * t), np.full_like(t, up)], 1)
            dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
            _strokes(d, roots, dirs, TEX * length * (0.6 + 0.4 * s) * rng.uniform(0.6, 1.0, len(t)), dark, rng.uniform(*alpha, len(t)))
        for curve, dy, a in ((upper, -0.022, 110), (lower, 0.03, 70)):  # second crease over the lid, fold under the eye
            d.line([tuple(q) for q in curve + np.array([0, dy * TEX * rng.uniform(0.8, 1.2)])], fill=shade + (int(a * s),), width=1)
        iris = Image.new("RGBA", (TEX, TEX), (0, 0, 0, 0))
        di = ImageDraw.Draw(iris)
        (cx, cy), ir = _iris(idt, uv, eye)
        di.ellipse((cx - ir, cy - ir, cx + ir, cy + ir), outline=(15, 12, 12, int(200 * s)), width=1)
        gx, gy, gr = cx - 0.35 * ir, cy - 0.35 * ir, max(0.8, 0.14 * ir)
        di.ellipse((gx - gr, gy - gr, gx + gr, gy + gr), fill=(250, 250, 250, int(230 * s)))
        mask = Image.new("L", (TEX, TEX), 0)
        ImageDraw.Draw(mask).polygon([tuple(q) for q in uv[list(eye)]], fill=255)
        layer.paste(iris, (0, 0), Image.fromarray(np.minimum(np.asarray(mask), np.asarray(iris)[..., 3])))
    for up, lo in ((M.BROW_R_UP, M.BROW_R_LO), (M.BROW_L_UP, M.BROW_L_LO)):  # outer to inner
        n = int(60 + 80 * s)
        t, w = rng.uniform(0, 1, n), rng.uniform(-0.15, 1.15, n)
        top, bottom = _at(uv[list(up)], t), _at(uv[list(lo)], t)
        roots = bottom + (top - bottom) * w[:, None]
        along = uv[up[0]] - uv[up[-1]]  # inner to outer
        along = along / np.linalg.norm(along)
        dirs = along[None] * (0.4 + 0.6 * t[:, None]) + np.array([0.0, -1.0]) * (1.0 - 0.8 * t[:, None])  # inner hairs point up
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        colour = tuple(int(v * 255) for v in np.clip(np.asarray(idt.brow_col) * rng.uniform(0.6, 0.9), 0, 1))
        _strokes(d, roots, dirs, TEX * 0.022 * rng.uniform(0.5, 1.0, n), colour, rng.uniform(110, 230, n) * (0.5 + 0.5 * s))
    return layer


def _beard(idt: Identity, p):
    """Beard cover (0..1) of skin points p (3 x N, head frame), soft-edged."""
    x, y, z = p
    ax = np.abs(x)
    front = 1 - _smoothstep(-0.05, 0.2, z)
    cheeks = _smoothstep(-0.08, 0.08, y - 0.5 + 0.32 * np.clip(ax / 0.75, 0, 1) ** 1.5) * (1 - _smoothstep(1.2, 1.35, y))
    moust = (_smoothstep(-0.03, 0.0, 0.27 - 0.3 * (y - 0.5) - ax) * _smoothstep(0.46, 0.5, y) * (1 - _smoothstep(0.58, 0.61, y))
             * _smoothstep(-0.75, -0.85, z))
    chin = _smoothstep(-0.04, 0.0, 0.2 - ax) * _smoothstep(0.72, 0.78, y)
    region = {"full": np.maximum(cheeks, moust), "stubble": cheeks, "moustache": moust, "goatee": np.maximum(moust, chin)}[idt.beard]
    lips = (ax < 0.26) & (np.abs(y - 0.67) < 0.07) & (z < -0.85)
    amount = 0.18 if idt.beard == "stubble" else 0.85
    return region * front * ~lips * amount * (0.8 + 0.2 * _wobble(p, 60.0))


def _hair_colour(idt: Identity, p):
    az = np.arctan2(p[0], -p[2])
    streak = 0.88 + 0.07 * np.sin(70 * az + 9 * np.sin(4 * p[1] + 2 * az)) + 0.05 * np.sin(23 * az + 17 * p[1])
    return np.asarray(idt.hair_col, np.float32)[None, :] * streak[:, None] + np.float32(0.02)


def _wobble(p, f):
    return np.sin(f * p[0] * 1.7 + 0.3) * np.sin(f * p[1] * 2.3 + 1.1) * np.sin(f * p[2] * 1.3 + 2.0)


# ----------------------------------------------------------------------------------------------
# Rendering


@dataclass
class Render:
    box: tuple  # (x0, y0, x1, y1): the pixel box that rgb and alpha cover
    rgb: np.ndarray  # box-sized h x w x 3 float32 in [0, 1], premultiplied by alpha
    alpha: np.ndarray  # box-sized h x w coverage of head + body
    mask: np.ndarray  # H x W bool: the pixel shows the head (hair and hat included, body not)
    depth: np.ndarray  # H x W camera z of the nearest head point relative to the head centre (head units), inf elsewhere
    lm68: np.ndarray  # 2 x 68 pixels
    z68: np.ndarray  # 68 camera z relative to the head centre (head units, + away from the camera)
    lm21: np.ndarray  # 2 x 21
    head: Head
    R: np.ndarray
    vis_all: np.ndarray  # 89 bool: 68 then 21 landmarks not self-occluded (the AFLW chin: see the module doc)

    @cached_property
    def vis68(self) -> np.ndarray:
        return self.vis_all[:68]

    @cached_property
    def vis21(self) -> np.ndarray:
        return self.vis_all[68:]


@lru_cache(maxsize=1)
def _unit_sphere(nu=24, nv=12):
    return M.ellipsoid_mesh((0, 0, 0), (1, 1, 1), nu=nu, nv=nv)


def body_parts(R, shirt, pitch: float = 0.0) -> list:
    """Neck, shoulders and chest under the head's pivot, in head coordinates: upright in the camera
    frame, or turned about the pivot by `pitch` degrees as a head of that pitch would be (negative:
    the torso seen from above, as from a camera held above the person)."""
    v, t = _unit_sphere()
    pivot = R @ np.array([0.0, 0.5, 0.1])
    Rb = rotation_matrix(0.0, pitch, 0.0) if pitch else None
    out = []
    for c, axes, mat in ((pivot + [0, 0.65, 0.02], (0.52, 0.85, 0.5), NECK), (pivot + [0, 1.95, 0.35], (1.9, 0.8, 0.85), CLOTH),
                         (pivot + [0, 3.5, 0.4], (1.95, 2.3, 0.95), CLOTH)):
        cam, normals = v * np.asarray(axes) + c, v / np.asarray(axes)
        if Rb is not None:
            cam, normals = pivot + (cam - pivot) @ Rb.T, normals @ Rb.T
        out.append(Part(cam @ R, t, mat, solid=False, normals=normals @ R))
    return out


def _project(q, centre, scale, distance):
    k = scale if not np.isfinite(distance) else scale * distance / (distance + q[:, 2])
    return centre[0] + k * q[:, 0], centre[1] + k * q[:, 1]


@lru_cache(maxsize=1)
def _static_ao():
    """Per-vertex ambient occlusion of the canonical face (eye sockets, nostrils, under the nose
    and lips, the jaw's underside): the share of 40 directions around the normal from which a
    vertex is seen, through the rasteriser at 96 px."""
    idt = neutral_identity()
    head = build_head(idt)
    face = head.parts[0]
    solid = [p for p in head.parts if p.solid]
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(40, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    seen = np.zeros(len(face.verts))
    weight = np.zeros(len(face.verts))
    for dvec in dirs:
        R = _look(dvec)
        Vc = [p.verts @ R.T for p in solid]
        tris, off = [], 0
        for p in solid:
            tris.append(p.tris + off)
            off += len(p.verts)
        allv = np.vstack(Vc)
        u, v = 48 + 24 * allv[:, 0], 48 + 24 * allv[:, 1]
        fr = raster.fragments(u, v, np.vstack(tris), (0, 0, 96, 96))
        zb, _ = raster.resolve(fr.pix, fr.interp(np.vstack(tris), allv[:, 2]), 96 * 96)
        fc = Vc[0]
        iu = np.clip(np.round(48 + 24 * fc[:, 0]).astype(int), 0, 95)
        iv = np.clip(np.round(48 + 24 * fc[:, 1]).astype(int), 0, 95)
        vis = fc[:, 2] <= zb[iv * 96 + iu] + 0.03
        cosw = np.clip(-(face.normals @ R.T)[:, 2], 0, None)
        seen += vis * cosw
        weight += cosw
    ao = np.where(weight > 0, seen / np.maximum(weight, 1e-9), 1.0)
    return np.clip(ao / np.median(ao), 0, 1).astype(np.float32)


def _look(direction):
    """Rotation taking head-frame vectors to a camera looking at the head from `direction` (the
    camera sits at +direction, looking along -direction = camera +z)."""
    zc = -np.asarray(direction, float)
    zc /= np.linalg.norm(zc)
    up = np.array([0.0, 1.0, 0.0]) if abs(zc[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    xc = np.cross(up, zc)
    xc /= np.linalg.norm(xc)
    yc = np.cross(zc, xc)
    return np.stack([xc, yc, zc])


def neutral_identity() -> Identity:
    one = dict(width=1.0, height=1.0, depth=1.0, jaw=1.0, chin=1.0, nose=1.0, nose_len=1.0, nose_w=1.0, ear=1.0,
               brow_ridge=1.0, cheek=1.0, mouth_w=1.0, lips=1.0)
    return Identity(**one, bumps=0, mouth_open=0.0, smile=0.0, eye_open=1.0, brow_raise=0.0, gaze=(0.0, 0.0),
                    skin=(0.8, 0.6, 0.5), lip_col=(0.7, 0.3, 0.3), iris=(0.3, 0.2, 0.1), hair_col=(0.1, 0.1, 0.1),
                    brow_col=(0.1, 0.1, 0.1), makeup=0.0, hair="bald", hairline=-0.6, beard="none", shirt=(0.5, 0.5, 0.5),
                    tex_seed=0)


def _shade(normals, albedo, light: Light, spec_w, lit):
    """Lambert (key, scaled by `lit` for cast shadows, + fill) + ambient + a weak Blinn specular."""
    ld = np.asarray(light.direction, np.float32)
    fd = np.asarray(light.fill_direction, np.float32)
    key = np.clip(normals @ ld, 0, None) * lit
    diff = key[:, None] * np.asarray(light.colour, np.float32)
    diff += np.clip(normals @ fd, 0, None)[:, None] * np.asarray(light.fill_colour, np.float32)
    facing = 0.75 + 0.25 * np.clip(-normals[:, 2], 0, 1)
    amb = (light.ambient * np.asarray(light.ambient_colour, np.float32)) * facing[:, None]
    hv = ld + np.array([0.0, 0.0, -1.0], np.float32)
    hv /= np.linalg.norm(hv)
    spec = np.clip(normals @ hv, 0, None) ** 20 * (light.specular * spec_w * lit)
    return albedo * (amb + diff), spec[:, None] * np.asarray(light.colour, np.float32)


class _Scene:
    """All parts of one render concatenated: head frame P, normals N, triangles T, part of each triangle."""

    def __init__(self, parts):
        vs, ts, ns, tm, off = [], [], [], [], 0
        self.parts = parts
        for k, p in enumerate(parts):
            vs.append(p.verts)
            ns.append(p.normals)
            ts.append(p.tris + off)
            tm.append(np.full(len(p.tris), k))
            off += len(p.verts)
        self.P = np.vstack(vs)
        self.N = np.vstack(ns)
        # face texture coordinates and ambient occlusion (face only; other parts: (0, 0) and 1)
        self.extra = np.zeros((len(self.P), 3))
        self.extra[:, 2] = 1.0
        if parts and parts[0].uv is not None:
            nf = len(parts[0].verts)
            self.extra[:nf, :2] = parts[0].uv
            self.extra[:nf, 2] = _ao_all(parts)
        self.T = np.vstack(ts)
        self.part_of = np.concatenate(tm)
        self.cull = np.array([p.cull for p in parts])[self.part_of]
        self.solid = np.array([p.solid for p in parts], bool)
        self.material = np.array([p.material for p in parts])
        self.clipped = [k for k, p in enumerate(parts) if p.clip is not None]

    def __add__(self, other: "_Scene") -> "_Scene":
        """The scene of self's parts then other's: self's arrays with other's appended, as
        _Scene(self.parts + other.parts) would build them when other holds no face part."""
        if other.parts and other.parts[0].uv is not None:
            return _Scene(self.parts + other.parts)
        out = object.__new__(_Scene)
        out.parts = self.parts + other.parts
        for name in ("P", "N", "extra"):
            setattr(out, name, np.vstack([getattr(self, name), getattr(other, name)]))
        out.T = np.vstack([self.T, other.T + len(self.P)])
        out.part_of = np.concatenate([self.part_of, other.part_of + len(self.parts)])
        for name in ("cull", "solid", "material"):
            setattr(out, name, np.concatenate([getattr(self, name), getattr(other, name)]))
        out.clipped = self.clipped + [k + len(self.parts) for k in other.clipped]
        return out


def _head_scene(head: Head) -> _Scene:
    if not hasattr(head, "_scene"):
        head._scene = _Scene(list(head.parts))
    return head._scene


def render(head: Head, R, centre, scale, size, light: Light, body: bool = True, distance: float = np.inf,
           ss: int = 1, body_pitch: float = 0.0) -> Render:
    """Rasterise the head (and neck/torso, upright unless `body_pitch`: body_parts) at rotation R,
    head centre pixel `centre`, `scale` px per unit at the head centre, camera `distance` head units
    away (inf: orthographic), with ss x ss samples per pixel."""
    W, H = size
    R = np.asarray(R, dtype=np.float64)
    centre = np.asarray(centre, dtype=np.float64)
    hs_ = _head_scene(head)
    sc = hs_ + _Scene(body_parts(R, head.ident.shirt, body_pitch)) if body else hs_
    parts = sc.parts
    C = sc.P @ R.T
    u, v = _project(C, centre, scale, distance)
    nhead = len(hs_.P)
    # box: the head's vertices (and the body's), within the image
    x0, y0 = int(max(np.floor(u[:nhead].min()) - 1, 0)), int(max(np.floor(v[:nhead].min()) - 1, 0))
    x1, y1 = int(min(np.ceil(u[:nhead].max()) + 2, W)), int(min(np.ceil(v[:nhead].max()) + 2, H))
    if body:
        y1 = H  # the body continues to the bottom of the image
        x0 = int(max(min(x0, np.floor(u[nhead:].min())), 0))
        x1 = int(min(max(x1, np.ceil(u[nhead:].max()) + 1), W))
    x1, y1 = max(x1, x0), max(y1, y0)
    mask, depth = np.zeros((H, W), bool), np.full((H, W), np.inf, np.float32)
    rgb = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
    lm = np.hstack([head.lm68, head.lm21, head.chin_path]).T
    lq = lm @ R.T
    lu, lv = _project(lq, centre, scale, distance)
    vis = np.ones(len(lm), bool)
    if x1 > x0 and y1 > y0:
        a, b, c = (np.take(C, sc.T[:, k], axis=0) for k in range(3))  # np.take: fancy indexing's copy, faster
        cr = np.cross(b - a, c - a)
        if np.isfinite(distance):  # facing test towards the eye point, not along z
            facing = np.einsum("ij,ij->i", cr, a - np.array([0.0, 0.0, -distance])) < 0
        else:
            facing = cr[:, 2] < 0
        keep = facing | ~sc.cull
        T = sc.T[keep]
        tpart = sc.part_of[keep]
        fr = raster.fragments(u, v, T, (x0, y0, x1, y1), ss)
        z = fr.interp(T, C[:, 2])
        fpart = np.take(tpart, fr.tri)
        if sc.clipped:  # clipped parts (hair, hat) keep only fragments where their clip function passes
            keep = _unclipped(fr, T, sc.P, z, fpart, parts, sc.clipped, [k for k in sc.clipped if not sc.solid[k]])
            if not keep.all():
                fr, z, fpart = fr.take(keep), z[keep], fpart[keep]
        rows, cols = fr.shape
        nsamp = rows * cols
        zbuf, owner = raster.resolve(fr.pix, z, nsamp)
        solid_f = np.take(sc.solid, fpart)
        sz = np.full(nsamp, np.inf)
        np.minimum.at(sz, fr.pix[solid_f], z[solid_f])
        hit = owner >= 0
        hs = np.flatnonzero(hit)
        won = np.take(owner, hs)  # the winning fragment of every covered sample
        wf = fr.take(won)
        wpart = np.take(fpart, won)
        attrs = wf.interp(T, np.hstack([sc.N, sc.P, sc.extra]))
        n = (attrs[:, :3] @ R.T).astype(np.float32)
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        n *= np.where(n[:, 2] > 0, -1.0, 1.0).astype(np.float32)[:, None]  # two-sided parts: the side facing the camera
        p_head = attrs[:, 3:6]
        Pc = p_head @ R.T
        mats = sc.material[wpart]
        albedo, spec_w = _albedo(head, wpart, mats, p_head, Pc, R, attrs[:, 6:8])
        occl = attrs[:, 8].astype(np.float32)
        lit = _shadow(head, R, light, Pc, mats) if light.shadow > 0 else np.float32(1.0)
        diff, spec = _shade(n, albedo, light, spec_w, lit)
        col = np.zeros((nsamp, 3), np.float32)
        col[hs] = diff * occl[:, None] + spec
        is_head = np.zeros(nsamp, bool)
        is_head[hs] = (mats != NECK) & (mats != CLOTH)
        h, w = y1 - y0, x1 - x0
        if ss == 1:
            rgb = np.clip(col.reshape(h, w, 3), 0, 1)
            alpha = hit.reshape(h, w).astype(np.float32)
            mask[y0:y1, x0:x1] = is_head.reshape(h, w)
            depth[y0:y1, x0:x1] = np.where(is_head, zbuf, np.inf).reshape(h, w)
        else:  # down-sample the ss x ss samples of every pixel
            rgb = np.clip(col.reshape(h, ss, w, ss, 3).mean((1, 3)), 0, 1)
            alpha = hit.astype(np.float32).reshape(h, ss, w, ss).mean((1, 3))
            mask[y0:y1, x0:x1] = is_head.reshape(h, ss, w, ss).mean((1, 3)) >= 0.5
            zb = np.where(is_head, zbuf, np.inf).reshape(h, ss, w, ss).min((1, 3))
            depth[y0:y1, x0:x1] = np.where(mask[y0:y1, x0:x1], zb, np.inf)
        # landmark visibility: the nearest solid surface at the landmark's sample
        su = np.round((lu - x0 + 0.5) * ss - 0.5).astype(int)
        sv = np.round((lv - y0 + 0.5) * ss - 0.5).astype(int)
        inb = (su >= 0) & (su < cols) & (sv >= 0) & (sv < rows)
        near = np.full(len(lm), np.inf)
        near[inb] = _min_around(sz.reshape(rows, cols), sv[inb], su[inb])
        vis = lq[:, 2] <= near + 0.05
    lm21 = np.stack([lu[68:89], lv[68:89]])  # after the 68 and 21 landmarks: chin_path
    seen = np.flatnonzero(vis[89:])
    if not vis[88] and len(seen):  # the chin as AFLW annotates it: the lowest point of it in sight
        lm21[:, 20] = lu[89 + seen[-1]], lv[89 + seen[-1]]
        vis[88] = True
    return Render(box=(x0, y0, x1, y1), rgb=rgb, alpha=alpha, mask=mask, depth=depth,
                  lm68=np.stack([lu[:68], lv[:68]]), z68=lq[:68, 2], lm21=lm21, head=head, R=R, vis_all=vis[:89])


def _min_around(buf, r, c):
    """Largest depth among the 3 x 3 samples around (r, c) that hold a surface: a landmark on a
    silhouette edge is judged by the surface next to it, not the background behind."""
    rows, cols = buf.shape
    d = np.array([-1, 0, 1])
    val = buf[np.clip(r[:, None, None] + d[:, None], 0, rows - 1), np.clip(c[:, None, None] + d, 0, cols - 1)]
    best = np.where(np.isfinite(val), val, -np.inf).reshape(len(r), 9).max(1, initial=-np.inf)
    return np.where(np.isfinite(best), best, np.inf)


def _albedo(head: Head, wpart, mats, p, Pc, R, uv):
    """Albedo and specular weight of the winning samples (p: head frame, Pc: camera frame, uv: face texture)."""
    idt = head.ident
    nsel = len(mats)
    col = np.empty((nsel, 3), np.float32)
    spec_w = np.ones(nsel, np.float32)
    skin = np.asarray(idt.skin, np.float32)
    face = wpart == 0
    if face.any():
        tex = head.texture
        iu = np.clip((uv[face, 0] * TEX).astype(int), 0, TEX - 1)
        iv = np.clip((uv[face, 1] * TEX).astype(int), 0, TEX - 1)
        col[face] = np.take(tex.reshape(-1, 3), iv * TEX + iu, axis=0)
    other_skin = (mats == SKIN) & ~face
    if other_skin.any():
        col[other_skin] = skin * (1 + 0.04 * _wobble(p[other_skin].T, 9.0))[:, None]
    ear = mats == EAR
    if ear.any():
        col[ear] = skin * np.array([1.0, 0.88, 0.86], np.float32) * 0.95
    if idt.beard != "none" and (mats == SKIN).any():
        sel = np.flatnonzero(mats == SKIN)
        b = _beard(idt, p[sel].T)
        col[sel] = col[sel] * (1 - b[:, None]) + np.asarray(idt.hair_col, np.float32) * b[:, None]
    sk = (mats == SKIN) | ear
    if sk.any():
        ps = p[sk].T
        hair = ps[1] < hair_limit(idt, ps)
        if hair.any() and idt.hair != "bald" or (idt.hair == "bald" and hair.any()):
            amount = 0.45 if idt.hair == "shaved" else 1.0
            sub = col[sk]
            sub[hair] = sub[hair] * (1 - amount) + _hair_colour(idt, ps[:, hair]) * amount
            col[sk] = sub
            sw = spec_w[sk]
            sw[hair] = 0.4
            spec_w[sk] = sw
    hs = mats == HAIR
    if hs.any():
        col[hs] = _hair_colour(idt, p[hs].T)
        spec_w[hs] = 0.5
    nk = mats == NECK
    if nk.any():
        chin = (R @ head.lm68[:, 8])[1]
        shade = 0.45 + 0.45 * _smoothstep(chin - 0.1, chin + 0.5, Pc[nk, 1])
        col[nk] = skin * shade[:, None]
    for m, base in ((CLOTH, idt.shirt), (HAT, head.hat)):
        sel = mats == m
        if sel.any():
            col[sel] = np.asarray(base, np.float32) * (1 + 0.06 * _wobble(p[sel].T, 25.0))[:, None]
            spec_w[sel] = 0.3
    return col, spec_w


def _ao_all(parts):
    ao = _static_ao()
    n = len(parts[0].verts)
    return ao[:n] if len(ao) >= n else np.r_[ao, np.ones(n - len(ao), np.float32)]


def _shadow(head: Head, R, light: Light, Pc, mats):
    """Share of the key light reaching each sample (1 - light.shadow where a solid or hair
    surface lies between it and the light): a 128 px shadow map of the head seen from the light."""
    hs = _head_scene(head)  # every part of the head: stacked vertices, triangles, part of each triangle
    L = _look(np.asarray(light.direction))  # camera-frame vectors -> light view
    Vl = np.vstack([p.verts @ R.T for p in head.parts]) @ L.T
    T = hs.T
    S, k = 128, 40.0
    u, v = S / 2 + k * Vl[:, 0], S / 2 + k * Vl[:, 1]
    fr = raster.fragments(u, v, T, (0, 0, S, S))
    z = fr.interp(T, Vl[:, 2])
    keep = _unclipped(fr, T, hs.P, z, np.take(hs.part_of, fr.tri), head.parts, hs.clipped, hs.clipped)  # only depths count
    zb = raster.depth_buffer(fr.pix[keep], z[keep], S * S)
    q = Pc @ L.T
    iu = np.clip(np.round(S / 2 + k * q[:, 0]).astype(int), 0, S - 1)
    iv = np.clip(np.round(S / 2 + k * q[:, 1]).astype(int), 0, S - 1)
    shadowed = q[:, 2] > zb[iv * S + iu] + 0.04
    return np.where(shadowed, 1.0 - light.shadow, 1.0).astype(np.float32)


def _unclipped(fr, T, P, z, fpart, parts, clipped, skippable) -> np.ndarray:
    """Which fragments `fr` (triangles T, head-frame vertices P, depths z, part of each fpart) the
    clip functions of the `clipped` parts keep. A fragment of a `skippable` part that lies strictly
    behind the nearest fragment of the unclipped parts at its sample can neither win the depth test
    nor change the depth buffer, so it is dropped without evaluating its clip (callers name as
    skippable only parts whose fragments count for nothing else)."""
    keep = np.ones(len(z), bool)
    is_clipped = np.isin(fpart, clipped)
    if not is_clipped.any():
        return keep
    front = raster.depth_buffer(fr.pix[~is_clipped], z[~is_clipped], fr.shape[0] * fr.shape[1]) if skippable else None
    for k in clipped:
        sel = np.flatnonzero(fpart == k)
        if k in skippable:
            behind = z[sel] > front[fr.pix[sel]]
            keep[sel[behind]] = False
            sel = sel[~behind]
        if sel.size:
            keep[sel] = parts[k].clip(fr.take(sel).interp(T, P).T)
    return keep


# ----------------------------------------------------------------------------------------------
# Identities

_SKIN = np.array([(0.98, 0.84, 0.74), (0.93, 0.74, 0.61), (0.80, 0.58, 0.43), (0.64, 0.43, 0.29),
                  (0.46, 0.30, 0.20), (0.32, 0.21, 0.15)])
_HAIR = np.array([(0.05, 0.04, 0.04), (0.16, 0.10, 0.06), (0.33, 0.21, 0.12), (0.72, 0.57, 0.33),
                  (0.50, 0.21, 0.09), (0.55, 0.54, 0.52), (0.85, 0.84, 0.80)])
_IRIS = np.array([(0.25, 0.14, 0.07), (0.12, 0.07, 0.04), (0.25, 0.42, 0.6), (0.3, 0.45, 0.3), (0.42, 0.32, 0.15)])
_HAIR_STYLES = ("bald", "shaved", "short", "medium", "long", "fringe")
_BEARDS = ("none", "stubble", "moustache", "goatee", "full")


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random person: shape factors, expression, skin tone (light to dark), hair, beard and clothes."""
    u = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
    tone = (len(_SKIN) - 1) * float(rng.beta(1.3, 2.0))
    i = int(tone)
    skin = _SKIN[i] + (_SKIN[min(i + 1, len(_SKIN) - 1)] - _SKIN[i]) * (tone - i)
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 1)
    hair_col = _HAIR[rng.choice(len(_HAIR), p=[0.3, 0.25, 0.18, 0.1, 0.05, 0.07, 0.05])] * rng.uniform(0.85, 1.15)
    style = _HAIR_STYLES[rng.choice(6, p=[0.06, 0.07, 0.3, 0.22, 0.23, 0.12])]
    beard = _BEARDS[rng.choice(5, p=[0.65, 0.12, 0.07, 0.07, 0.09])]
    lip = skin * np.array([0.88, 0.66, 0.64]) * rng.uniform(0.8, 1.0) + np.array([0.05, 0.0, 0.01]) * rng.uniform(0, 1.5)
    if rng.random() < 0.15:  # lipstick
        lip = np.array([0.55, 0.1, 0.14]) * rng.uniform(0.6, 1.3)
    brow = np.clip(hair_col * rng.uniform(0.6, 1.0) + 0.02, 0, 1) if rng.random() < 0.8 else np.array([0.12, 0.09, 0.07])
    return Identity(
        **{name: u(*bounds) for name, bounds in SHAPE_RANGES.items()}, bumps=int(rng.integers(2**31)),
        mouth_open=u(0, 1) ** 3 if rng.random() < 0.5 else 0.0, smile=u(-0.4, 1.0) if rng.random() < 0.6 else 0.0, eye_open=u(0.55, 1.05),
        brow_raise=u(-0.5, 1.0), gaze=(u(-0.6, 0.6), u(-0.15, 0.15)),
        skin=tuple(skin), lip_col=tuple(np.clip(lip, 0, 1)), iris=tuple(_IRIS[rng.integers(len(_IRIS))]),
        hair_col=tuple(np.clip(hair_col, 0, 1)), brow_col=tuple(brow), makeup=u(0, 1) ** 2 if rng.random() < 0.4 else 0.0,
        hair=style, hairline=u(-0.78, -0.55) if style != "fringe" else u(-0.42, -0.3), beard=beard,
        shirt=tuple(rng.uniform(0.05, 0.9, 3)), tex_seed=int(rng.integers(2**31)),
    )
