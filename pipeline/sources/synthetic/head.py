"""Procedural head: identity, analytic shape, 68 + 21 landmarks and a vectorised numpy ray caster.

Frames and units. The head's own frame ("head frame") has x to the image's right at zero pose
(the subject's left), y down and z away from the camera: the nose points to -z, the crown to -y.
One head unit is 100 mm (`HEAD_UNIT_MM`); the origin, called the head centre, is near the
middle of the cranium, about at eye height. With R = `pipeline.angles.rotation_matrix(yaw,
pitch, roll)` a head point p lands in the camera frame (x right, y down, z away) at
T + s * R @ p, and its pixel is (u, v) = centre + s * (R @ p)[:2]: orthographic rendering (weak
perspective when s = f * HEAD_UNIT_MM / depth), pixel i's centre at coordinate i.

The head is a union of ellipsoids (cranium, face, jaw, chin, nose, lips, ears; optional hair
shells and hat, clipped by region) plus a neck and torso that stay upright in the camera frame.
Eyes, brows, lips, nostrils, hair and beard are textures in head coordinates, placed from the
same numbers as the landmarks so that both agree. Shading is Lambert + ambient (+ a weak
specular) with normals blended across the seams of the union; only pixels inside the
figure's bounding box are traced, and the head's silhouette pixels get 4 more rays (anti-aliasing).

Landmarks: 68 in the iBUG layout (0-16 jaw from image-left at zero pose, 17-26 brows, 27-35
nose, 36-47 eyes, 48-67 mouth) and 21 in the AFLW layout (6 brow, 6 eye, left ear, 3 nose,
right ear, 3 mouth, chin), all fixed points of the head surface. A landmark is self-occluded
when the ray from it towards the camera passes through the head proper (hair, hat, neck and
torso do not count).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

HEAD_UNIT_MM = 100.0
SKIN, HAIR, CLOTH, HAT, NECK = range(5)
_FAR = 5.0  # rays start this many head units in front of the head centre

# The AFLW 21 points in their file order ("l" = image-left at zero pose).
AFLW21_NAMES = (
    "brow_l_outer", "brow_l_centre", "brow_l_inner", "brow_r_inner", "brow_r_centre", "brow_r_outer",
    "eye_l_outer", "eye_l_centre", "eye_l_inner", "eye_r_inner", "eye_r_centre", "eye_r_outer",
    "ear_l", "nose_l", "nose_tip", "nose_r", "ear_r", "mouth_l", "mouth_centre", "mouth_r", "chin",
)


@dataclass(frozen=True)
class Identity:
    """Shape, colours and style of one person (all sizes are scale factors around 1 or head units)."""

    width: float
    height: float
    depth: float
    jaw: float
    chin: float
    nose: float
    nose_len: float
    ear: float
    eye_sep: float  # half the distance between the eye centres
    eye_w: float  # eye half-width
    eye_h: float  # eye half-height
    mouth_w: float  # mouth half-width
    lips: float
    mouth_open: float
    brow_t: float
    brow_arch: float
    skin: tuple
    lip_col: tuple
    iris: tuple
    hair_col: tuple
    hair: str  # bald | shaved | short | medium | long | fringe
    hairline: float
    beard: str  # none | stubble | moustache | goatee | full
    shirt: tuple


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


@dataclass(frozen=True)
class Ellipsoid:
    centre: np.ndarray  # (3,) in the frame the rays are given in
    minv: np.ndarray  # (3, 3): minv @ (p - centre) lies on the unit sphere for surface points
    material: int
    solid: bool = True  # head proper: occludes landmarks and makes up the head mask
    blend: int = 0  # shading normals blend across the seams of parts with the same nonzero group
    clip: Callable | None = None  # keep(p (3, N)) -> bool (N,); rays pass through dropped parts


def ellipsoid(centre, axes, material=SKIN, rot=None, **kw) -> Ellipsoid:
    """Ellipsoid with semi-axes `axes` along the columns of `rot`; solid parts blend in group 1 by default."""
    kw.setdefault("blend", 1 if kw.get("solid", True) else 0)
    q = np.eye(3) if rot is None else np.asarray(rot, dtype=np.float64)
    return Ellipsoid(np.asarray(centre, np.float64), np.diag(1.0 / np.asarray(axes, np.float64)) @ q.T, material, **kw)


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _hits(e: Ellipsoid, o, d):
    """Near and far ray parameters of rays o + t d (o: 3 x N, d: 3 or 3 x N); inf where missed."""
    oo = e.minv @ (o - e.centre[:, None])
    dd = e.minv @ d
    if dd.ndim == 1:
        a, b = dd @ dd, dd @ oo
    else:
        a, b = np.einsum("ij,ij->j", dd, dd), np.einsum("ij,ij->j", dd, oo)
    c = np.einsum("ij,ij->j", oo, oo) - 1.0
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    miss = disc < 0
    t1 = np.where(miss, np.inf, (-b - sq) / a)
    t2 = np.where(miss, np.inf, (-b + sq) / a)
    return t1, t2


def _first_hit(e: Ellipsoid, o, d):
    """Parameter of the first visible hit (clipped parts are see-through), inf where none."""
    t1, t2 = _hits(e, o, d)
    t1 = np.where(t1 > 0, t1, np.inf)
    if e.clip is None:
        return t1
    d = np.broadcast_to(d.reshape(3, -1), o.shape)
    out = np.full(t1.shape, np.inf)
    for t in (t1, t2):
        cand = np.flatnonzero(np.isinf(out) & np.isfinite(t) & (t > 0))
        keep = cand[e.clip(o[:, cand] + t[cand] * d[:, cand])]
        out[keep] = t[keep]
    return out


def cast(prims, o, d):
    """First hit (parameter, primitive index) of rays o + t d against a list of ellipsoids."""
    best = np.full(o.shape[1], np.inf)
    idx = np.full(o.shape[1], -1)
    for k, e in enumerate(prims):
        t = _first_hit(e, o, d)
        better = t < best
        best[better], idx[better] = t[better], k
    return best, idx


def _smoothstep(a, b, x):
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


# ----------------------------------------------------------------------------------------------
# Face layout: the same curves place the textures and the landmarks.


@dataclass
class Head:
    ident: Identity
    prims: list  # Ellipsoids in head coordinates
    lm68: np.ndarray  # 3 x 68 head-frame landmarks
    lm21: np.ndarray  # 3 x 21
    layout: dict  # feature positions (_layout) and the hat colour


def _layout(idt: Identity) -> dict:
    """Heights and sizes of the facial features in head units (eyes at y = 0)."""
    ey = 0.0
    nb = ey + 0.42 * idt.nose_len  # nose base (subnasale) height
    my = nb + 0.2 + 0.04 * (idt.chin - 1)  # mouth line
    return dict(ey=ey, ex=idt.eye_sep, ew=idt.eye_w, eh=idt.eye_h, by=ey - 0.17 - 0.02 * idt.brow_arch,
                nb=nb, tip=nb - 0.075 * idt.nose, my=my, mw=idt.mouth_w, ul=0.045 * idt.lips,
                ll=0.055 * idt.lips, mo=0.03 * idt.mouth_open, nw=0.085 * idt.nose)


def _lids(L, t):
    """Upper and lower eyelid offsets (y) at normalised position t in [-1, 1] across the eye."""
    w = np.clip(1 - t * t, 0, None)
    return -L["eh"] * w ** 0.6 * (1 + 0.12 * t), 0.7 * L["eh"] * w ** 0.8


def _brow(L, xr):
    """Brow centre line y and thickness at xr in [0, 1] from its inner to its outer end."""
    return L["by"] - L["arch"] * (1 - ((xr - 0.6) / 0.7) ** 2), L["bt"] * (1 - 0.45 * xr)


def _brow_x(L, side, xr):
    """Head-frame x of the brow at xr (side -1: image-left brow)."""
    return side * (L["ex"] - 0.15 + 0.36 * xr)


def _lips(L, x):
    """Upper-lip top, lower-lip bottom and half-opening (y offsets from the mouth line) at x."""
    t = np.clip(x / L["mw"], -1, 1)
    w = np.clip(1 - t * t, 0, None)
    top = -L["ul"] * w ** 0.5 * (1 - 0.3 * np.exp(-(t / 0.12) ** 2)) - 0.006
    bottom = L["ll"] * w ** 0.6 + 0.004
    ti = np.clip(x / (0.85 * L["mw"]), -1, 1)
    return top, bottom, L["mo"] * np.clip(1 - ti * ti, 0, None)


def _surface(prims, target, away):
    """First surface point met by rays travelling towards `target` (3 x N) from direction `away`."""
    away = away / np.linalg.norm(away, axis=0, keepdims=True)
    o = target + 3.0 * away
    t, _ = cast(prims, o, -away)
    if not np.all(np.isfinite(t)):
        raise ValueError("landmark ray missed the head")
    return o - t * away


def _front_z(prims, x, y):
    """z of the frontmost surface point at head-frame (x, y) (rays along +z)."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    pts = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    return _surface(prims, pts, np.array([[0.0], [0.0], [-1.0]]))[2].reshape(x.shape)


def _landmarks(prims, L, idt, ear_x, ear_cy):
    """3 x 68 iBUG and 3 x 21 AFLW landmarks on the solid surface."""
    # Jaw: rays aimed at a point inside the lower head, from the ear (0) round the chin (8) to 16.
    th = (np.arange(17) / 16 - 0.5) * np.pi * 0.88
    beta = np.radians(-5 + 55 * (1 - np.abs(np.sin(th)) ** 1.5))  # elevation below the horizontal
    away = np.stack([np.sin(th) * np.cos(beta), np.sin(beta), -np.cos(th) * np.cos(beta)])
    targets, aways = [np.tile([[0.0], [L["ey"] + 0.3], [-0.15]], (1, 17))], [away]
    xr = np.concatenate([np.linspace(1, 0, 5), np.linspace(0, 1, 5)])
    side = np.repeat([-1.0, 1.0], 5)
    xs, ys = [_brow_x(L, side, xr)], [_brow(L, xr)[0]]
    xs += [np.zeros(4), np.linspace(-1, 1, 5) * L["nw"] * 0.9]
    ys += [np.linspace(L["ey"] - 0.02, L["tip"], 4), L["nb"] - 0.012 * np.abs(np.linspace(-1, 1, 5)) * 0.9]
    # eyes, iBUG order: left corner, two upper points, right corner, two lower points
    tt = np.tile([-1, -1 / 3, 1 / 3, 1, 1 / 3, -1 / 3], 2)
    side = np.repeat([-1.0, 1.0], 6)
    up, lo = _lids(L, side * tt)
    which = np.tile([0, 1, 1, 0, 2, 2], 2)
    xs.append(side * L["ex"] + tt * L["ew"])
    ys.append(L["ey"] + np.choose(which, [0 * up, up, lo]))
    mw, my = L["mw"], L["my"]
    tt = np.array([-1, -0.6, -0.28, 0, 0.28, 0.6, 1, 0.6, 0.28, 0, -0.28, -0.6])
    top, bot, _ = _lips(L, tt * mw)
    xs.append(tt * mw)
    ys.append(my + np.choose(np.r_[0, [1] * 5, 0, [2] * 5], [0 * top, top, bot]))
    tt = np.array([-0.85, -0.35, 0, 0.35, 0.85, 0.35, 0, -0.35])
    op = _lips(L, tt * mw)[2]
    xs.append(tt * mw)
    ys.append(my + np.r_[0, -1, -1, -1, 0, 1, 1, 1] * op)
    # AFLW extras: eye centres, nose wings, mouth centre
    xs.append([-L["ex"], L["ex"], -L["nw"] * 1.05, L["nw"] * 1.05, 0.0])
    ys.append([L["ey"], L["ey"], L["nb"] - 0.035, L["nb"] - 0.035, my])
    xy = np.vstack([np.concatenate(xs), np.concatenate(ys)])
    targets.append(np.vstack([xy, np.zeros(xy.shape[1])]))
    aways.append(np.tile([[0.0], [0.0], [-1.0]], (1, xy.shape[1])))
    # Ears: the lower front of each ear, reached from 55 degrees off the front.
    ang = np.radians([-55.0, 55.0])
    targets.append(np.stack([np.array([-1.0, 1.0]) * ear_x, np.full(2, ear_cy + 0.12 * idt.ear), np.full(2, 0.12)]))
    aways.append(np.stack([np.sin(ang), np.zeros(2), -np.cos(ang)]))
    pts = _surface(prims, np.hstack(targets), np.hstack(aways))
    lm68, extra, ears = pts[:, :68], pts[:, 68:73], pts[:, 73:]
    i68 = lambda *ix: lm68[:, list(ix)]  # noqa: E731
    lm21 = np.hstack([i68(17, 19, 21, 22, 24, 26), i68(36), extra[:, [0]], i68(39, 42), extra[:, [1]], i68(45),
                      ears[:, [0]], extra[:, [2]], i68(30), extra[:, [3]], ears[:, [1]],
                      i68(48), extra[:, [4]], i68(54, 8)])
    return lm68, lm21


def build_head(idt: Identity, hat: tuple | None = None) -> Head:
    """Ellipsoids, textures' layout and landmarks of one identity (optionally wearing a hat)."""
    w, h, dp = idt.width, idt.height, idt.depth
    L = _layout(idt)
    L.update(arch=0.03 * idt.brow_arch, bt=0.06 * idt.brow_t, hat_col=hat)
    fw = 0.67 * w * (0.92 + 0.08 * idt.jaw)
    cran = ellipsoid((0, -0.22, 0.1), (0.74 * w, 0.88 * h, 0.98 * dp))
    face = ellipsoid((0, 0.15, -0.14), (fw, 0.8, 0.7 * dp))
    jaw = ellipsoid((0, L["my"] - 0.02, -0.3), (0.5 * idt.jaw, 0.46 * idt.chin, 0.54))
    chin = ellipsoid((0, L["my"] + 0.24 * idt.chin, -0.56), (0.2, 0.17 * idt.chin, 0.22))
    base = [cran, face, jaw, chin]
    # Nose: a ridge from between the eyes to the tip, a tip ball and flat wings.
    n = idt.nose
    y_top = L["ey"] - 0.04
    z_top, z_tip, zm = _front_z(base, 0.0, [y_top, L["tip"], L["my"]]) + [0.02, -0.16 * n, 0.0]
    r_tip = 0.06 * n
    a = np.array([0.0, y_top, z_top])
    b = np.array([0.0, L["tip"], z_tip + r_tip])
    ax = (b - a) / np.linalg.norm(b - a)
    q = np.stack([[1.0, 0, 0], ax, np.cross([1.0, 0, 0], ax)], axis=1)
    bridge = ellipsoid((a + b) / 2 + 0.06 * q[:, 2], (0.07 * n, np.linalg.norm(b - a) / 2 + 0.02, 0.095 * n), rot=q)
    tip = ellipsoid((0, L["tip"], z_tip + r_tip), (r_tip * 1.05, r_tip, r_tip))
    wings = ellipsoid((0, L["nb"] - 0.04, z_tip + 0.11 * n), (L["nw"] * 1.1, 0.05 * n, 0.08 * n))
    lips = [ellipsoid((0, L["my"] - 0.03, zm + 0.05), (L["mw"] * 0.95, 0.055 * idt.lips, 0.08)),
            ellipsoid((0, L["my"] + 0.04, zm + 0.055), (L["mw"] * 0.8, 0.055 * idt.lips, 0.08))]
    solid = base + [bridge, tip, wings, *lips]
    # Ears on the sides, just outside the widest solid part at their height.
    ear_cy = L["ey"] + 0.08
    ear_x = 0.74 * w * np.sqrt(max(1 - ((ear_cy + 0.22) / (0.88 * h)) ** 2, 0)) - 0.01
    solid += [ellipsoid((s * ear_x, ear_cy, 0.12), (0.07, 0.28 * idt.ear, 0.16 * idt.ear), rot=_rot_y(s * 0.35), blend=0)
              for s in (-1, 1)]
    lm68, lm21 = _landmarks(solid, L, idt, ear_x, ear_cy)
    prims = solid + _hair_shells(idt, L) + (_hat() if hat is not None else [])
    return Head(idt, prims, lm68, lm21, L)


def _hair_limit(idt: Identity, p):
    """Hair covers head-frame points with y above this limit (the hairline, dropping to the nape)."""
    x, z = p[0], p[2]
    front = (idt.hairline + 0.28 * (x / 0.75) ** 2 + 0.07 * np.exp(-((np.abs(x) - 0.33) / 0.1) ** 2)
             + 0.02 * np.sin(37 * x + 11 * z) + 0.015 * np.sin(71 * x - 5 * z))
    nape = {"long": 0.75, "medium": 0.6}.get(idt.hair, 0.5)
    lim = front + (nape - front) * _smoothstep(-0.45, 0.1, z)
    if idt.hair == "bald":  # a horseshoe at the back and sides only
        lim = np.where((z > 0.0) & (p[1] > -0.1 + 0.03 * np.sin(23 * x + 9 * z)), lim, -9.0)
    return lim


def _hair_shells(idt: Identity, L) -> list:
    if idt.hair in ("shaved", "bald"):
        return []
    vol = {"short": 0.04, "medium": 0.07, "long": 0.07, "fringe": 0.06}[idt.hair]
    keep = lambda p: p[1] < _hair_limit(idt, p) - 0.03  # noqa: E731
    shells = [ellipsoid((0, -0.24, 0.1), (0.74 * idt.width + vol, 0.88 * idt.height + vol, 0.98 * idt.depth + vol),
                        HAIR, solid=False, clip=keep)]
    if idt.hair == "long":
        keep_long = lambda p: (p[2] > -0.1 + 0.4 * np.clip(p[1] - 0.4, 0, 1)) & (p[1] < 1.3)  # noqa: E731
        shells.append(ellipsoid((0, 0.35, 0.25), (0.8 * idt.width + 0.04, 1.15, 0.75), HAIR, solid=False, clip=keep_long))
    return shells


def _hat() -> list:
    crown = lambda p: p[1] < -0.42 + 0.25 * np.clip(p[2], 0, None)  # noqa: E731
    brim = lambda p: p[2] < -0.1  # noqa: E731
    return [ellipsoid((0, -0.25, 0.1), (0.84, 0.95, 1.06), HAT, solid=False, clip=crown),
            ellipsoid((0, -0.44, -0.45), (0.62, 0.035, 0.6), HAT, solid=False, clip=brim)]


def body_prims(R, shirt) -> list:
    """Neck, shoulders and chest, upright in the camera frame under the head's pivot, in head coordinates."""
    pivot = R @ np.array([0.0, 0.5, 0.2])
    cam = [(pivot + [0, 0.6, 0.0], (0.5, 0.8, 0.48), NECK), (pivot + [0, 1.9, 0.35], (1.9, 0.8, 0.8), CLOTH),
           (pivot + [0, 3.5, 0.4], (1.95, 2.3, 0.95), CLOTH)]
    out = []
    for c, axes, mat in cam:
        out.append(Ellipsoid(R.T @ np.asarray(c), np.diag(1.0 / np.asarray(axes)) @ R, mat, solid=False, blend=2))
    return out


# ----------------------------------------------------------------------------------------------
# Textures


def _wobble(p, f):
    return np.sin(f * p[0] * 1.7 + 0.3) * np.sin(f * p[1] * 2.3 + 1.1) * np.sin(f * p[2] * 1.3 + 2.0)


def _mix(col, mask, target, amount=1.0):
    """In place: col[mask] = col[mask] * (1 - a) + target * a (a: scalar or per-point)."""
    if not np.any(mask):
        return
    a = amount[mask] if np.ndim(amount) else amount
    a = np.asarray(a, dtype=np.float32)[..., None] if np.ndim(a) else np.float32(a)
    col[mask] = col[mask] * (1 - a) + np.asarray(target, dtype=np.float32) * a


def _skin_albedo(head: Head, p):
    """Colour of solid surface points p (3 x N): skin with eyes, brows, lips, nostrils, hair, beard."""
    idt, L = head.ident, head.layout
    y, z = p[1], p[2]
    col = np.empty((p.shape[1], 3), np.float32)
    col[:] = idt.skin
    col *= (1 + 0.04 * _wobble(p, 9.0))[:, None]
    fi = np.flatnonzero((z < -0.25) & (y > L["by"] - 0.12) & (y < L["my"] + 0.1))
    if fi.size:
        col[fi] = _face_features(head, p[:, fi], col[fi])
    _beard(head, p, col)
    hair = y < _hair_limit(idt, p)
    if np.any(hair):
        _mix(col, hair, _hair_colour(idt, p[:, hair]), 0.45 if idt.hair == "shaved" else 1.0)
    return col


def _face_features(head: Head, p, col):
    """Blush, eye sockets, eyes, brows, lips and nostrils on front-facing points p (3 x N)."""
    idt, L = head.ident, head.layout
    x, y, z = p
    ax = np.abs(x)
    skin = np.asarray(idt.skin, np.float32)
    blush = np.exp(-(((ax - 0.36) / 0.13) ** 2 + ((y - L["ey"] - 0.25) / 0.12) ** 2))
    _mix(col, blush > 0.05, skin * np.array([1.03, 0.8, 0.78], np.float32), 0.35 * blush)
    sock = np.exp(-(((ax - L["ex"]) / 0.17) ** 2 + ((y - L["ey"] + 0.03) / 0.1) ** 2))
    _mix(col, sock > 0.05, skin * 0.72, 0.5 * sock)
    box = (np.abs(ax - L["ex"]) < L["ew"] * 1.3) & (np.abs(y - L["ey"]) < L["eh"] * 1.8)
    if np.any(box):
        xi, yi = ax[box] - L["ex"], y[box] - L["ey"]
        t = xi / L["ew"]  # -1 at the inner corner
        up, lo = _lids(L, t)
        inside = (np.abs(t) < 1) & (yi > up) & (yi < lo)
        ec = np.tile(np.array([0.97, 0.95, 0.92], np.float32), (xi.size, 1))
        r = np.hypot(xi, yi - 0.1 * L["eh"])
        ir = 0.45 * L["ew"]
        ec[r < ir] = np.asarray(idt.iris) * (0.75 + 0.5 * (r[r < ir, None] / ir))
        ec[r < 0.4 * ir] = (0.03, 0.02, 0.02)
        lash = (np.abs(t) < 1.1) & (yi > up - 0.02) & (yi <= up + 0.007)
        crease = (np.abs(t) < 0.9) & (np.abs(yi - up + 0.04) < 0.007)
        sub = col[box]
        sub[inside] = ec[inside]
        sub[crease] = sub[crease] * 0.8
        sub[lash] = (0.04, 0.03, 0.03)
        col[box] = sub
    bx = (y < L["ey"] - 0.05) & (y > L["by"] - 0.12)
    if np.any(bx):
        xr = (ax[bx] - (L["ex"] - 0.15)) / 0.36
        yc, th = _brow(L, xr)
        inb = (xr > -0.05) & (xr < 1.05) & (np.abs(y[bx] - yc) < th / 2)
        sub = col[bx]
        sub[inb] = sub[inb] * 0.25 + (np.asarray(idt.hair_col) * 0.8 + 0.03) * 0.75
        col[bx] = sub
    mx = (ax < L["mw"] * 1.05) & (np.abs(y - L["my"]) < 0.1)
    if np.any(mx):
        top, bot, op = _lips(L, x[mx])
        dy = y[mx] - L["my"]
        lip = (dy > top) & (dy < bot) & (ax[mx] < L["mw"])
        hole = np.abs(dy) < op
        sub = col[mx]
        sub[lip] = np.asarray(idt.lip_col) * (1 + 0.05 * _wobble(p[:, mx][:, lip], 40.0))[:, None]
        line = lip & (np.abs(dy) < 0.008)
        sub[line] = sub[line] * 0.45
        teeth = hole & (dy < 0) & (dy > -op * 0.9)
        sub[hole] = (0.12, 0.03, 0.03)
        sub[teeth] = (0.85, 0.82, 0.75)
        col[mx] = sub
    nos = (np.abs(ax - 0.045 * idt.nose) < 0.03 * idt.nose) & (np.abs(y - L["nb"] + 0.012) < 0.014) & (z < -0.7)
    col[nos] *= 0.3
    return col


def _beard(head: Head, p, col):
    idt, L = head.ident, head.layout
    if idt.beard == "none":
        return
    x, y, z = p
    ax = np.abs(x)
    top, _, _ = _lips(L, x)
    below = (y > L["my"] + 0.07) | ((y > L["nb"] + 0.05) & (ax > L["mw"] + 0.04))
    regions = {
        "moustache": (y > L["nb"] + 0.015 + 0.05 * (ax / L["mw"]) ** 2) & (y < L["my"] + top + 0.03 * (ax / L["mw"]) ** 2)
        & (ax < L["mw"] + 0.03),
        "goatee": (y > L["my"] + 0.07) & (ax < L["mw"] * 0.8),
        "stubble": below & (y > L["ey"] + 0.2),
        "full": below & (y > L["ey"] + 0.2) | ((y > L["nb"] + 0.01) & (y < L["my"]) & (ax < L["mw"] + 0.06)),
    }
    m = regions[idt.beard] & (z < 0.1)
    if idt.beard in ("goatee", "moustache"):
        m |= regions["moustache"] & (z < 0.1)
    amount = 0.35 if idt.beard == "stubble" else 0.85
    _mix(col, m, np.asarray(idt.hair_col), amount * (0.9 + 0.1 * _wobble(p, 60.0)))


def _hair_colour(idt: Identity, p):
    az = np.arctan2(p[0], -p[2])
    streak = 0.9 + 0.06 * np.sin(70 * az + 9 * np.sin(4 * p[1] + 2 * az)) + 0.04 * np.sin(23 * az + 17 * p[1])
    return np.asarray(idt.hair_col, np.float32)[None, :] * streak[:, None] + np.float32(0.02)


def _albedo(head: Head, p, mats, P, R):
    """Albedo of hit points: p in head coordinates, P in (centred) camera coordinates."""
    col = np.empty((p.shape[1], 3), np.float32)
    idt = head.ident
    for m in range(5):
        sel = mats == m
        if not np.any(sel):
            continue
        if m == SKIN:
            col[sel] = _skin_albedo(head, p[:, sel])
        elif m == HAIR:
            col[sel] = _hair_colour(idt, p[:, sel])
        elif m == NECK:  # darker, and shadowed under the chin
            chin = (R @ head.lm68[:, 8])[1]
            shade = 0.5 + 0.35 * _smoothstep(chin - 0.15, chin + 0.45, P[1, sel])
            col[sel] = np.asarray(idt.skin, np.float32) * shade[:, None]
        else:
            base = head.layout["hat_col"] if m == HAT else idt.shirt
            col[sel] = np.asarray(base, np.float32) * (1 + 0.05 * _wobble(p[:, sel], 25.0))[:, None]
    return col


# ----------------------------------------------------------------------------------------------
# Rendering


@dataclass
class Render:
    box: tuple  # (x0, y0, x1, y1): the pixel box that rgb and alpha cover
    rgb: np.ndarray  # box-sized h x w x 3 float32 in [0, 1], premultiplied by alpha
    alpha: np.ndarray  # box-sized h x w coverage of head + body
    mask: np.ndarray  # H x W bool: the pixel centre's ray first meets the head (hair and hat included, body not)
    depth: np.ndarray  # H x W camera z of that head point relative to the head centre (head units), inf elsewhere
    lm68: np.ndarray  # 2 x 68 pixels
    z68: np.ndarray  # 68 camera z relative to the head centre (head units, + away from the camera)
    lm21: np.ndarray  # 2 x 21
    head: Head
    R: np.ndarray

    @cached_property
    def _visible(self):
        return visible(self.head, self.R, np.hstack([self.head.lm68, self.head.lm21]))

    @property
    def vis68(self) -> np.ndarray:
        """68 bool: not self-occluded (computed on first use)."""
        return self._visible[:68]

    @property
    def vis21(self) -> np.ndarray:
        return self._visible[68:]


def visible(head: Head, R, pts):
    """Self-occlusion test of head-frame points: no solid part between them and the camera."""
    towards = -R[2]  # camera's -z in head coordinates
    occluded = np.zeros(pts.shape[1], bool)
    for e in head.prims:
        if e.solid:
            _, t2 = _hits(e, pts, towards)
            occluded |= np.isfinite(t2) & (t2 > 1e-3)
    return ~occluded


def _shade(normals, albedo, light: Light, mats):
    """Lambert (key + fill) + ambient + a weak Blinn specular; normals in the camera frame."""
    ld = np.asarray(light.direction, np.float32)
    fd = np.asarray(light.fill_direction, np.float32)
    diff = np.clip(ld @ normals, 0, None)[:, None] * np.asarray(light.colour, np.float32)
    diff += np.clip(fd @ normals, 0, None)[:, None] * np.asarray(light.fill_colour, np.float32)
    facing = 0.75 + 0.25 * np.clip(-normals[2], 0, 1)
    amb = (light.ambient * np.asarray(light.ambient_colour, np.float32)) * facing[:, None]
    hv = ld + np.array([0.0, 0.0, -1.0], np.float32)
    hv /= np.linalg.norm(hv)
    gloss = light.specular * np.select([mats == CLOTH, mats == HAIR], [0.3, 0.5], 1.0).astype(np.float32)
    spec = np.clip(hv @ normals, 0, None) ** 24 * gloss
    return albedo * (amb + diff) + spec[:, None] * np.asarray(light.colour, np.float32)


def _depths(C, Q, X, Y):
    """Near and far camera depths where rays at (X, Y) meet quadrics (P - C)^T Q (P - C) = 1 (nan: miss).
    C[..., i] and Q[..., i, j] broadcast against X and Y (offsets from the centres)."""
    b = Q[..., 0, 2] * X + Q[..., 1, 2] * Y
    c = (2 * Q[..., 0, 1] * X) * Y
    c += Q[..., 0, 0] * X * X
    c += Q[..., 1, 1] * Y * Y - 1
    c *= Q[..., 2, 2]
    disc = b * b
    disc -= c
    with np.errstate(invalid="ignore"):
        sq = np.sqrt(disc, out=disc)
    inv = 1 / Q[..., 2, 2]
    near = b + sq
    near *= -inv
    near += C[..., 2]
    sq -= b
    sq *= inv
    sq += C[..., 2]
    return near, sq


class _Screen:
    """The primitives in the camera frame, relative to the head centre, in head units:
    centres C (K x 3) and Q (K x 3 x 3) with (P - C)^T Q (P - C) = 1 on the surface, and (du, dv) boxes."""

    def __init__(self, prims, R):
        self.prims, self.R = prims, R
        mc = np.stack([e.minv for e in prims]) @ R.T
        c = np.stack([e.centre for e in prims]) @ R.T
        half = np.linalg.norm(np.linalg.inv(mc)[:, :2], axis=2)
        self.C = c.astype(np.float32)
        self.Q = (mc.transpose(0, 2, 1) @ mc).astype(np.float32)
        self.lo, self.hi = c[:, :2] - half, c[:, :2] + half
        self.clipped = [k for k, e in enumerate(prims) if e.clip is not None]
        self.group = np.array([e.blend for e in prims])

    def _visible_depth(self, k, U, V, w1, w2, best):
        """Depth at which rays see primitive k where that beats `best`: clipped parts are see-through,
        so the near hit if kept, else the far hit if kept (nan: not seen)."""
        clip = self.prims[k].clip
        if clip is None:
            return w1
        U, V, w1, w2 = np.broadcast_arrays(U, V, w1, w2)
        out = np.full(w1.shape, np.nan, np.float32)
        for w in (w1, w2):
            cand = np.isnan(out) & (w < best)  # False where w is nan
            if np.any(cand):
                keep = clip(self.R.T @ np.stack([U[cand], V[cand], w[cand]]))
                idx = tuple(i[keep] for i in np.nonzero(cand))
                out[idx] = w[idx]
        return out

    def trace_grid(self, du, dv):
        """Nearest depth and primitive (-1: none) of the rays of a pixel grid (du: columns, dv: rows)."""
        best = np.full((dv.size, du.size), np.inf, np.float32)
        pid = np.full(best.shape, -1, np.int16)
        for k in range(len(self.prims)):
            i0, i1 = np.searchsorted(du, [self.lo[k, 0], self.hi[k, 0]])
            j0, j1 = np.searchsorted(dv, [self.lo[k, 1], self.hi[k, 1]])
            if i1 <= i0 or j1 <= j0:
                continue
            U, V = du[None, i0:i1], dv[j0:j1, None]
            sub_b, sub_p = best[j0:j1, i0:i1], pid[j0:j1, i0:i1]
            w1, w2 = _depths(self.C[k], self.Q[k], U - self.C[k, 0], V - self.C[k, 1])
            w1 = self._visible_depth(k, U, V, w1, w2, sub_b)
            better = w1 < sub_b
            sub_b[better] = w1[better]
            sub_p[better] = k
        return best, pid

    def trace_rays(self, du, dv):
        """Nearest primitive (-1: none) of single rays, all unclipped primitives at once."""
        U, V = du[None, :], dv[None, :]
        w1, w2 = _depths(self.C[:, None], self.Q[:, None], U - self.C[:, 0:1], V - self.C[:, 1:2])
        near = w1.copy()
        w1[self.clipped] = np.nan
        w1[np.isnan(w1)] = np.inf
        pid = np.argmin(w1, axis=0)
        best = w1[pid, np.arange(du.size)]
        for k in self.clipped:
            w = self._visible_depth(k, du, dv, near[k], w2[k], best)
            better = w < best
            best[better], pid[better] = w[better], k
        return np.where(np.isfinite(best), pid, -1)

    def normals(self, pid, P, widths=(0.0, 0.035, 0.25)):
        """Unit camera-frame normals at hit points P (3 x N); on the head proper they are blended
        over the parts of its blend group (weights exp(-distance / width)) so that seams do not show."""
        n = np.empty_like(P)
        group = self.group[pid]
        for gr in np.unique(group[group > 0]):
            idx = np.flatnonzero(group == gr)
            ks = np.flatnonzero(self.group == gr)
            D = P.take(idx, axis=1)[None] - self.C[ks, :, None]  # K x 3 x N
            g = self.Q[ks] @ D
            gn = np.sqrt(np.einsum("kin,kin->kn", g, g)) + 1e-12
            dist = np.maximum((np.einsum("kin,kin->kn", D, g) - 1) / (2 * gn), 0)
            n[:, idx] = np.einsum("kin,kn->in", g, np.exp(-dist / widths[gr]) / gn)
        idx = np.flatnonzero(group == 0)
        if idx.size:  # other parts: their own gradient Q (P - C)
            k = pid[idx]
            D = P.take(idx, axis=1) - self.C[k].T
            Qk = self.Q[k]
            n[:, idx] = np.stack([(Qk[:, i] * D.T).sum(1) for i in range(3)])
        n /= np.linalg.norm(n, axis=0, keepdims=True) + 1e-12
        return n * np.where(n[2] > 0, -1.0, 1.0).astype(np.float32)  # inner sides of shells face the camera


def render(head: Head, R, centre, scale, size, light: Light, body: bool = True) -> Render:
    """Ray-cast the head (and upright neck/torso) at rotation R, head centre pixel `centre`, `scale` px per unit.

    Pixel centres are traced once; pixels on the head's silhouette get 4 more rays for their coverage (anti-aliasing).
    """
    W, H = size
    R = np.asarray(R, dtype=np.float64)
    prims = list(head.prims) + (body_prims(R, head.ident.shirt) if body else [])
    scr = _Screen(prims, R)
    lo = scr.lo.min(axis=0) * scale + centre
    hi = scr.hi.max(axis=0) * scale + centre
    x0, y0 = np.maximum(np.floor(lo).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hi).astype(int) + 1, [W, H])
    x1, y1 = max(x1, x0), max(y1, y0)
    rgb, alpha = np.zeros((y1 - y0, x1 - x0, 3), np.float32), np.zeros((y1 - y0, x1 - x0), np.float32)
    mask, depth = np.zeros((H, W), bool), np.full((H, W), np.inf, np.float32)
    if x1 > x0 and y1 > y0:
        hh, ww = y1 - y0, x1 - x0
        du = ((np.arange(x0, x1) - centre[0]) / scale).astype(np.float32)
        dv = ((np.arange(y0, y1) - centre[1]) / scale).astype(np.float32)
        w, pid = scr.trace_grid(du, dv)
        hit = pid >= 0
        P = np.stack([np.broadcast_to(du[None, :], hit.shape)[hit], np.broadcast_to(dv[:, None], hit.shape)[hit], w[hit]])
        mats = np.array([e.material for e in prims])[pid[hit]]
        col = np.zeros((hh, ww, 3), np.float32)
        col[hit] = _shade(scr.normals(pid[hit], P), _albedo(head, (R.T @ P).astype(np.float32), mats, P, R), light, mats)
        a = hit.astype(np.float32)
        head_px = np.array([e.material not in (NECK, CLOTH) for e in prims] + [False])[pid]
        # Silhouette pixels of the head: coverage from 4 more rays; a missed centre borrows its hit
        # neighbours' colour. (The body's outline and the box border are left as they are.)
        g, gh = np.pad(hit, 1, mode="edge"), np.pad(head_px, 1, mode="edge")
        shifts = ((0, 1), (2, 1), (1, 0), (1, 2))
        edge = np.zeros_like(hit)
        for sy, sx in shifts:
            edge |= (hit != g[sy:sy + hh, sx:sx + ww]) & (head_px | gh[sy:sy + hh, sx:sx + ww])
        ej, ei = np.nonzero(edge)
        if ej.size:
            off = np.array([[-0.25, -0.25], [0.25, -0.25], [-0.25, 0.25], [0.25, 0.25]], np.float32) / scale
            su = (du[ei][:, None] + off[:, 0]).ravel()
            sv = (dv[ej][:, None] + off[:, 1]).ravel()
            spid = scr.trace_rays(su, sv)
            a[ej, ei] = ((spid >= 0).reshape(-1, 4).sum(1) + a[ej, ei]) / 5
            miss = ~hit[ej, ei]
            bj, bi = ej[miss], ei[miss]
            cp = np.pad(col, ((1, 1), (1, 1), (0, 0)))
            nb = sum(cp[bj + sy, bi + sx] for sy, sx in shifts)
            cnt = sum(g[bj + sy, bi + sx].astype(np.float32) for sy, sx in shifts)
            col[bj, bi] = nb / np.maximum(cnt, 1)[:, None]
        rgb = np.clip(col, 0, 1) * a[..., None]
        alpha = a
        mask[y0:y1, x0:x1] = head_px
        depth[y0:y1, x0:x1] = np.where(head_px, w, np.inf)
    cam68, cam21 = R @ head.lm68, R @ head.lm21
    c = np.asarray(centre, dtype=np.float64)[:, None]
    return Render(box=(int(x0), int(y0), int(x1), int(y1)), rgb=rgb, alpha=alpha, mask=mask, depth=depth,
                  lm68=c + scale * cam68[:2], z68=cam68[2], lm21=c + scale * cam21[:2], head=head, R=R)


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
    """A random person: shape factors, skin tone (light to dark), hair, beard and clothes."""
    u = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
    tone = (len(_SKIN) - 1) * float(rng.beta(1.3, 2.0))
    i = int(tone)
    skin = _SKIN[i] + (_SKIN[min(i + 1, len(_SKIN) - 1)] - _SKIN[i]) * (tone - i)
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 1)
    hair_col = _HAIR[rng.choice(len(_HAIR), p=[0.3, 0.25, 0.18, 0.1, 0.05, 0.07, 0.05])] * rng.uniform(0.85, 1.15)
    style = _HAIR_STYLES[rng.choice(6, p=[0.08, 0.07, 0.33, 0.2, 0.2, 0.12])]
    beard = _BEARDS[rng.choice(5, p=[0.6, 0.14, 0.08, 0.08, 0.1])]
    lip = skin * np.array([0.8, 0.45, 0.45]) + np.array([0.12, 0.02, 0.03]) * rng.uniform(0.3, 1.5)
    return Identity(
        width=u(0.9, 1.1), height=u(0.93, 1.07), depth=u(0.92, 1.08), jaw=u(0.8, 1.2), chin=u(0.85, 1.15),
        nose=u(0.8, 1.25), nose_len=u(0.88, 1.12), ear=u(0.8, 1.2), eye_sep=u(0.3, 0.35), eye_w=u(0.13, 0.155),
        eye_h=u(0.05, 0.068), mouth_w=u(0.2, 0.27), lips=u(0.7, 1.3), mouth_open=u(0, 1) ** 3,
        brow_t=u(0.8, 1.4), brow_arch=u(0.4, 1.6), skin=tuple(skin), lip_col=tuple(np.clip(lip, 0, 1)),
        iris=tuple(_IRIS[rng.integers(len(_IRIS))]), hair_col=tuple(np.clip(hair_col, 0, 1)), hair=style,
        hairline=u(-0.72, -0.5) if style != "fringe" else u(-0.4, -0.3), beard=beard,
        shirt=tuple(rng.uniform(0.05, 0.9, 3)),
    )
