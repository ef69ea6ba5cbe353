"""Everything around the head: poses, lighting, backgrounds, occluders and image degradation,
sampled per domain.

Domains: "train" (300W-LP-style: photograph-like backgrounds - crops of two bundled photos,
studio gradients, blurred scenery, clutter - white to coloured light with cast shadows, some
occluders), "test" (AFLW2000-style, a shifted distribution: smooth scenery backgrounds with
bokeh, harder coloured lighting, more occluders, stronger blur and JPEG) and "biwi" (a fixed
room and fixed indoor light per sequence, PNG frames with mild sensor noise). Both photo-style
domains turn a share of images grey (as about 15% of real AFLW2000 is), vary saturation and
contrast, and view the head through a perspective camera at a random distance.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.sources.synthetic.head import Light, Render

DOMAINS = {
    "train": dict(bg="photo", occluder=0.22, hat=0.06, blur=0.35, down=0.15, noise=0.02, jpeg=(60, 96), gain=0.05,
                  extreme=0.02, yaw_sd=None, pitch_sd=20.0, roll_sd=15.0, gray=0.15, shadow=0.5, photo=True),
    "test": dict(bg="scenery", occluder=0.45, hat=0.12, blur=0.5, down=0.3, noise=0.03, jpeg=(30, 96), gain=0.08,
                 extreme=0.012, yaw_sd=35.0, pitch_sd=18.0, roll_sd=12.0, gray=0.15, shadow=0.5, photo=True),
    "biwi": dict(bg="room", occluder=0.0, hat=0.0, blur=0.0, down=0.0, noise=0.012, jpeg=(0, 1), gain=0.02, gray=0.0,
                 shadow=0.0, photo=False),
}
OVERHEAD = 0.6  # share of training key lights drawn from high above
OCCLUDERS = ("hand", "bar", "sunglasses", "mask", "patch")


@dataclass(frozen=True)
class Look:
    """Everything about one image besides the head and its pose."""

    light: Light
    background: tuple  # (family, seed)
    occluders: tuple  # ((kind, seed), ...)
    hat: tuple | None  # hat colour, or None
    blur: float  # Gaussian blur radius as a share of the image side (0: none)
    down: float  # down- then up-sampling factor (1: none)
    noise: float  # std of additive pixel noise
    gain: tuple  # per-channel colour gain
    gamma: float
    jpeg: int  # JPEG quality (0 for PNG output)
    gray: bool = False  # a black-and-white photograph
    saturation: float = 1.0  # colour saturation factor
    contrast: float = 1.0  # contrast about mid-grey
    distance: float = float("inf")  # camera distance (head units) of the perspective camera; inf: orthographic
    body_pitch: float = 0.0  # the torso's pitch (deg, head.body_parts); 0, upright, in every drawn image


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return tuple(v / np.linalg.norm(v))


def light_direction(azimuth, elevation):
    """Unit vector from the head towards a light `azimuth` degrees to the image's right of the camera
    and `elevation` degrees above it (camera frame: x right, y down, the camera at -z)."""
    az, el = np.radians([azimuth, elevation])
    return _unit([np.sin(az) * np.cos(el), -np.sin(el), -np.cos(az) * np.cos(el)])


def _tint(rng, strength):
    """A random colour of unit mean, `strength` away from white."""
    hue = rng.uniform(0, 2 * np.pi)
    c = 1 + strength * np.cos(hue - np.array([0, 2.09, 4.19]))
    return c / c.mean()


def sample_light(rng: np.random.Generator, domain: str) -> Light:
    u = rng.uniform
    if domain == "test":  # harder: side light, low ambient, coloured key and fill
        key = _tint(rng, u(0.1, 0.3)) * u(0.55, 1.0)
        shadow = float(u(0.4, 0.9)) if rng.random() < DOMAINS["test"]["shadow"] else 0.0
        return Light(light_direction(u(-85, 85), u(-35, 60)), tuple(key), u(0.15, 0.4), tuple(_tint(rng, u(0, 0.3))),
                     light_direction(u(-90, 90), u(-30, 30)), tuple(_tint(rng, u(0.2, 0.6)) * u(0.1, 0.35)), u(0.04, 0.15), shadow)
    if domain == "biwi":  # indoor ceiling light
        return Light(light_direction(u(-40, 40), u(15, 45)), tuple(_tint(rng, u(0, 0.08)) * u(0.45, 0.65)), u(0.42, 0.58),
                     specular=0.05)
    shadow = float(u(0.4, 0.9)) if rng.random() < DOMAINS["train"]["shadow"] else 0.0
    harsh = rng.random() < 0.35  # a strong key light and little ambient: deep shade on one side
    key = u(0.75, 1.1) if harsh else u(0.55, 0.9)
    amb = u(0.12, 0.3) if harsh else u(0.3, 0.6)
    # photographs are mostly lit from above (sun, ceiling lights): most key lights come from 25-85 deg
    # above the camera, the rest from anywhere between 30 below and 60 above
    elevation = u(25, 85) if rng.random() < OVERHEAD else u(-30, 60)
    return Light(light_direction(u(-80, 80), elevation), tuple(_tint(rng, u(0, 0.2)) * key), amb,
                 tuple(_tint(rng, u(0, 0.15))), light_direction(u(-80, 80), u(-10, 30)), tuple(np.full(3, u(0, 0.2))), u(0.03, 0.15),
                 shadow)


def sample_look(rng: np.random.Generator, domain: str, distance: tuple = (5.0, 40.0)) -> Look:
    """A photograph's look; `distance`: the nearest and farthest camera (head units), drawn
    uniformly in 1 / distance (params.yaml data.synthetic.camera_distance; BIWI's camera is fixed)."""
    d = DOMAINS[domain]
    light = sample_light(rng, domain)
    background = (d["bg"], int(rng.integers(2**62)))
    occ = ()
    if rng.random() < d["occluder"]:
        n = 1 + int(rng.random() < 0.25)
        occ = tuple((OCCLUDERS[rng.choice(5, p=[0.3, 0.2, 0.2, 0.12, 0.18])], int(rng.integers(2**62))) for _ in range(n))
    hat = tuple(rng.uniform(0.05, 0.85, 3)) if rng.random() < d["hat"] else None
    blur = float(rng.uniform(0.002, 0.012)) if rng.random() < d["blur"] else 0.0
    down = float(rng.uniform(0.35, 0.7)) if rng.random() < d["down"] else 1.0
    look = Look(light, background, occ, hat, blur, down, float(rng.uniform(0, d["noise"])),
                tuple(rng.normal(1, d["gain"], 3)), float(rng.uniform(0.85, 1.15)), int(rng.integers(*d["jpeg"])))
    if not d["photo"]:
        return look
    from dataclasses import replace  # noqa: PLC0415
    return replace(look, gray=bool(rng.random() < d["gray"]), saturation=float(rng.uniform(0.5, 1.3)),
                   contrast=float(rng.uniform(0.75, 1.3)), distance=float(1.0 / rng.uniform(1 / distance[1], 1 / distance[0])))


# ----------------------------------------------------------------------------------------------
# Poses


def ypr_of_matrix(R) -> np.ndarray:
    """(yaw, pitch, roll) degrees of a head-to-camera rotation: the inverse of
    `pipeline.core.angles.rotation_matrix` for |yaw| < 90."""
    yaw = np.degrees(np.arcsin(np.clip(R[0, 2], -1.0, 1.0)))
    pitch = -np.degrees(np.arctan2(-R[1, 2], R[2, 2]))
    roll = np.degrees(np.arctan2(-R[0, 1], R[0, 0]))
    return np.array([yaw, pitch, roll])


def _image_roll(deg):
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def sample_pose(rng: np.random.Generator, domain: str) -> np.ndarray:
    """(yaw, pitch, roll) in degrees. A domain's `extreme` share has yaw or pitch at 100-110 degrees.

    The head turns (yaw), nods about the camera's horizontal axis (pitch), then tilts in the
    image plane (roll_sd), and the label is that rotation's angles in the harness convention. For
    a frontal head this is about the same as drawing the three angles independently; for a turned
    head an image-plane tilt becomes a large pitch and roll of opposite sign, as in real
    300W-LP/AFLW2000 labels (a profile tilted 20 deg reads about (-68, -63, 65)); drawing the angles
    independently never shows the network those."""
    d = DOMAINS[domain]
    if d["yaw_sd"] is None:
        yaw = rng.uniform(-90, 90)
    else:  # frontal-heavy, still reaching +-90
        yaw = rng.normal(0, d["yaw_sd"]) if rng.random() < 0.85 else rng.uniform(-90, 90)
    pitch = np.clip(rng.normal(0, d["pitch_sd"]), -60, 60)
    tilt = np.clip(rng.normal(0, d["roll_sd"]), -50, 50)
    from pipeline.core.angles import rotation_matrix  # noqa: PLC0415

    ypr = ypr_of_matrix(_image_roll(tilt) @ rotation_matrix(np.clip(yaw, -90, 90), pitch, 0.0))
    if rng.random() < d["extreme"]:
        ypr[0 if rng.random() < 0.6 else 1] = rng.choice([-1, 1]) * rng.uniform(100, 110)
    return ypr


def smooth_path(rng: np.random.Generator, n: int, waves: int = 3) -> np.ndarray:
    """A smooth curve over n frames: a sum of low-frequency sinusoids, scaled to max |value| = 1."""
    t = np.linspace(0, 1, n)
    freq = rng.uniform(0.3, 2.0, waves)
    amp = rng.uniform(0.4, 1.0, waves)
    phase = rng.uniform(0, 2 * np.pi, waves)
    x = (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])).sum(0)
    return x / max(np.abs(x).max(), 1e-9)


def biwi_trajectory(rng: np.random.Generator, n: int) -> np.ndarray:
    """n x 3 smooth (yaw, pitch, roll) covering about +-75, +-60, +-50 degrees."""
    return np.stack([smooth_path(rng, n) * lim * rng.uniform(0.85, 1.0) for lim in (75, 60, 50)], axis=1)


# ----------------------------------------------------------------------------------------------
# Backgrounds


def _noise(rng, size, cells, channels=3):
    """Smooth value noise in [0, 1], H x W x channels, from a cells x cells random grid."""
    grid = (rng.random((cells, cells, channels)) * 255).astype(np.uint8)
    img = Image.fromarray(grid[..., 0] if channels == 1 else grid).resize(size, Image.BICUBIC)
    return np.asarray(img, dtype=np.float32).reshape(size[1], size[0], channels) / 255


def _gradient(rng, size):
    W, H = size
    a = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:H, 0:W]
    t = ((x - W / 2) * np.cos(a) + (y - H / 2) * np.sin(a)) / max(W, H) + 0.5
    c0, c1 = _rgb(rng), _rgb(rng)
    return (c0 + (c1 - c0) * np.clip(t, 0, 1)[..., None]).astype(np.float32)


def _rgb(rng, sat=(0.15, 0.85)):
    """A random colour (0-1), pulled towards grey by a random saturation factor."""
    c = rng.random(3)
    return c.mean() + (c - c.mean()) * rng.uniform(*sat)


def _fill(rng, alpha=(90, 255)):
    return tuple(int(v) for v in _rgb(rng) * 255) + (int(rng.integers(*alpha)),)


def _clutter(rng, size):
    """Gradient + many random flat shapes, lines and stripes, a fine texture, slight defocus."""
    W, H = size
    img = Image.fromarray((_gradient(rng, size) * 255).astype(np.uint8))
    d = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(12, 30))):
        x, y = rng.uniform(-0.1, 1.1) * W, rng.uniform(-0.1, 1.1) * H
        w, h = rng.uniform(0.05, 0.6) * W, rng.uniform(0.05, 0.6) * H
        kind = rng.integers(5)
        if kind == 0:
            d.rectangle((x, y, x + w, y + h), fill=_fill(rng))
        elif kind == 1:
            d.ellipse((x, y, x + w, y + h), fill=_fill(rng))
        elif kind == 2:
            pts = [(x + rng.uniform(-w, w), y + rng.uniform(-h, h)) for _ in range(int(rng.integers(3, 7)))]
            d.polygon(pts, fill=_fill(rng))
        elif kind == 3:
            d.line((x, y, x + rng.uniform(-W, W), y + rng.uniform(-H, H)), fill=_fill(rng), width=int(rng.integers(1, max(2, W // 20))))
        else:
            step = int(rng.integers(3, max(4, W // 10)))
            col = _fill(rng, (60, 160))
            for k in range(int(x), int(x + w), 2 * step):
                d.rectangle((k, y, k + step, y + h), fill=col)
    out = np.asarray(img, dtype=np.float32) / 255
    out *= 0.85 + 0.3 * _noise(rng, size, int(rng.integers(8, 40)))
    return out, rng.uniform(0, 0.012)


def _scenery(rng, size):
    """Multi-octave colour noise through a random palette, bokeh discs and a few frames (windows, doors)."""
    W, H = size
    v = sum(_noise(rng, size, c, 1)[..., 0] * w for c, w in ((3, 0.5), (7, 0.3), (17, 0.15), (41, 0.05)))
    t = np.linspace(0, 1, 256)[:, None]
    pal = np.stack([_rgb(rng, (0.2, 1.0)) for _ in range(3)])
    lut = np.where(t < 0.5, pal[0] + (pal[1] - pal[0]) * t * 2, pal[1] + (pal[2] - pal[1]) * (t * 2 - 1))
    lo, hi = v.min(), v.max()
    out = lut[((v - lo) * (255 / (hi - lo + 1e-6))).astype(np.uint8)]
    img = Image.fromarray((out * 255).astype(np.uint8))
    d = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.uniform(-0.2, 0.9) * W, rng.uniform(-0.2, 0.9) * H
        x1, y1 = x0 + rng.uniform(0.2, 0.7) * W, y0 + rng.uniform(0.3, 1.0) * H
        d.rectangle((x0, y0, x1, y1), outline=_fill(rng, (150, 255)), width=int(rng.integers(2, max(3, W // 25))),
                    fill=_fill(rng, (20, 120)))
    for _ in range(int(rng.integers(0, 25))):
        x, y, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(0.01, 0.08) * W
        c = rng.uniform(150, 256, 3).astype(int)
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(c) + (int(rng.integers(40, 140)),))
    return np.asarray(img, dtype=np.float32) / 255, rng.uniform(0.004, 0.02)


def _room(rng, size):
    """A wall with a window, a shelf of books, a poster and a desk: BIWI-like office background."""
    W, H = size
    wall = rng.uniform(0.45, 0.85, 3)
    y = np.linspace(0, 1, H)[:, None, None]
    out = (wall * (1.05 - 0.25 * y)) * np.ones((H, W, 3))
    img = Image.fromarray((np.clip(out, 0, 1) * 255).astype(np.uint8))
    d = ImageDraw.Draw(img, "RGBA")
    wx, wy = rng.uniform(0, 0.6) * W, rng.uniform(0, 0.2) * H
    ww, wh = rng.uniform(0.2, 0.4) * W, rng.uniform(0.25, 0.45) * H
    d.rectangle((wx, wy, wx + ww, wy + wh), fill=(215, 225, 235, 255), outline=(90, 90, 90, 255), width=max(2, W // 80))
    d.line((wx + ww / 2, wy, wx + ww / 2, wy + wh), fill=(90, 90, 90, 255), width=max(2, W // 100))
    sx, sy = rng.uniform(0, 0.7) * W, rng.uniform(0.05, 0.35) * H
    sw, sh = rng.uniform(0.2, 0.35) * W, rng.uniform(0.3, 0.5) * H
    d.rectangle((sx, sy, sx + sw, sy + sh), fill=_fill(rng, (255, 256)))
    for shelf in range(3):
        top = sy + shelf * sh / 3
        x = sx + 2
        while x < sx + sw - 4:
            bw = rng.uniform(0.008, 0.025) * W
            d.rectangle((x, top + rng.uniform(0.02, 0.08) * sh, x + bw, top + sh / 3 - 2), fill=_fill(rng, (255, 256)))
            x += bw + 1
    px, py = rng.uniform(0.5, 0.85) * W, rng.uniform(0.05, 0.3) * H
    d.rectangle((px, py, px + 0.12 * W, py + 0.18 * H), fill=_fill(rng, (255, 256)))
    desk = rng.uniform(0.7, 0.85) * H
    d.rectangle((0, desk, W, H), fill=tuple(int(v) for v in rng.uniform(60, 160, 3)) + (255,))
    out = np.asarray(img, dtype=np.float32) / 255
    return out * (0.95 + 0.1 * _noise(rng, size, 30, 1)), 0.006


PHOTOS = ("china.jpg", "flower.jpg")  # assets/: scikit-learn's sample photographs, CC BY 2.0 (assets/README.md)


@lru_cache(maxsize=2)
def _photo(name: str) -> np.ndarray:
    from pipeline.sources.synthetic.mesh import ASSETS  # noqa: PLC0415

    with Image.open(ASSETS / name) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255


def _desaturate(img, rng, lo=0.3, hi=0.9):
    grey = img.mean(2, keepdims=True)
    return grey + (img - grey) * rng.uniform(lo, hi)


def _photo_crop(rng, size):
    """A random region of a bundled photograph, flipped, re-coloured and resized."""
    W, H = size
    src = _photo(PHOTOS[int(rng.integers(len(PHOTOS)))])
    sh, sw = src.shape[:2]
    side = int(rng.uniform(0.15, 0.9) * min(sh, sw))
    y, x = int(rng.integers(0, sh - side + 1)), int(rng.integers(0, sw - side + 1))
    crop = src[y:y + side, x:x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    mix = np.eye(3) + rng.normal(0, 0.25, (3, 3))  # colour mixing: new hues from the same picture
    crop = np.clip(crop @ (mix / mix.sum(0, keepdims=True)).T, 0, 1)
    out = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((W, H), Image.BILINEAR), np.float32) / 255
    return _desaturate(out, rng, 0.5, 1.1) * rng.uniform(0.5, 1.2)


def _studio(rng, size):
    """A smooth backdrop: a soft gradient with a vignette and a little texture."""
    W, H = size
    g = _gradient(rng, size)
    y, x = np.mgrid[0:H, 0:W]
    r = np.hypot((x - W / 2) / W, (y - H / 2) / H)
    vig = 1 - rng.uniform(0, 0.6) * r[..., None]
    return _desaturate(g * vig * (0.95 + 0.1 * _noise(rng, size, 20)), rng, 0.1, 0.8) * rng.uniform(0.4, 1.2)


def _photo_like(rng, size):
    """Backgrounds that look like photographs: a crop of a real photo, a studio backdrop, blurred
    scenery or clutter (both desaturated); a random defocus on top."""
    k = rng.choice(4, p=[0.4, 0.25, 0.2, 0.15])
    if k == 0:
        img = _photo_crop(rng, size)
    elif k == 1:
        img = _studio(rng, size)
    elif k == 2:
        img = _desaturate(_scenery(rng, size)[0], rng)
    else:
        img = _desaturate(_clutter(rng, size)[0], rng)
    return np.clip(img, 0, 1).astype(np.float32), rng.uniform(0.0, 0.03) if rng.random() < 0.7 else 0.0


_FAMILIES = {"clutter": _clutter, "scenery": _scenery, "room": _room, "photo": _photo_like}


@lru_cache(maxsize=16)
def background(family: str, seed: int, size: tuple) -> np.ndarray:
    """H x W x 3 float32 background of a family, deterministic in seed (cached: BIWI reuses one per sequence)."""
    img, defocus = _FAMILIES[family](np.random.default_rng(seed), tuple(size))
    if defocus > 0:
        pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
        img = np.asarray(pil.filter(ImageFilter.GaussianBlur(defocus * size[0])), dtype=np.float32) / 255
    img.setflags(write=False)
    return img


# ----------------------------------------------------------------------------------------------
# Occluders and degradation


def _ellipse_pts(cx, cy, rx, ry, angle, n=24):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return [(cx + c * a - s * b, cy + s * a + c * b) for a, b in zip(x, y)]


def _occluder(d: ImageDraw.ImageDraw, kind: str, rng, r: Render, scale: float):
    """Draw one occluder on the RGBA layer `d`, placed from the landmarks; s = px per head unit."""
    lm, vis = r.lm68, r.vis68
    roll = np.arctan2(*(lm[:, 45] - lm[:, 36])[::-1])
    if kind == "hand":
        tone = rng.uniform(0.3, 1.0)
        col = tuple(int(v) for v in np.array([235, 185, 150]) * tone + rng.integers(-15, 15, 3)) + (255,)
        cx, cy = lm[:, int(rng.choice([8, 30, 62, 3, 13, 36, 45]))] + rng.normal(0, 0.15 * scale, 2)
        a = rng.uniform(0, 2 * np.pi)  # direction the fingers point
        pr = scale * rng.uniform(0.3, 0.42)
        f, side = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
        d.polygon(_ellipse_pts(cx, cy, pr, pr * 0.9, a), fill=col)
        for k, off in enumerate(np.linspace(-0.66, 0.66, 4)):
            ln = pr * (1.5 if k in (1, 2) else 1.2)
            fc = np.array([cx, cy]) + side * off * pr + f * (0.6 * pr + ln / 2)
            d.polygon(_ellipse_pts(fc[0], fc[1], ln / 2, pr * 0.17, a, 12), fill=col)
        ta = a - 1.0
        tc = np.array([cx, cy]) - side * 0.85 * pr + np.array([np.cos(ta), np.sin(ta)]) * 0.5 * pr
        d.polygon(_ellipse_pts(tc[0], tc[1], pr * 0.6, pr * 0.2, ta, 12), fill=col)
    elif kind == "bar":
        cx, cy = lm[:, 30] + rng.normal(0, 0.35 * scale, 2)
        a = rng.uniform(0, np.pi)
        ln, wd = 3 * scale, scale * rng.uniform(0.07, 0.25)
        d.line((cx - np.cos(a) * ln, cy - np.sin(a) * ln, cx + np.cos(a) * ln, cy + np.sin(a) * ln), fill=_fill(rng, (255, 256)),
               width=max(1, int(wd)))
    elif kind == "sunglasses":
        col = tuple(int(v) for v in rng.integers(0, 50, 3)) + (int(rng.integers(215, 256)),)
        centres = [lm[:, [36, 39]].mean(1), lm[:, [42, 45]].mean(1)]
        for (i0, i1), c in zip(((36, 39), (42, 45)), centres):
            if vis[i0] or vis[i1]:
                half = max(np.linalg.norm(lm[:, i1] - lm[:, i0]) * 0.75, 0.04 * scale)
                d.polygon(_ellipse_pts(c[0], c[1] + 0.01 * scale, half, 0.13 * scale, roll, 16), fill=col)
        d.line((*centres[0], *centres[1]), fill=col, width=max(1, int(0.025 * scale)))
    elif kind == "mask":
        col = [(200, 225, 240, 255), (235, 235, 235, 255), (30, 30, 35, 255)][int(rng.integers(3))]
        pts = [tuple(lm[:, i]) for i in range(1, 16)] + [tuple(lm[:, 29])]
        d.polygon(pts, fill=col)
    else:  # patch: a random object entering the face region
        cx, cy = lm[:, int(rng.integers(68))] + rng.normal(0, 0.3 * scale, 2)
        w, h = scale * rng.uniform(0.25, 0.8, 2)
        shape = d.rectangle if rng.random() < 0.5 else d.ellipse
        shape((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), fill=_fill(rng, (255, 256)))


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(20240531).standard_normal(1 << 20, dtype=np.float32)


def _pixel_noise(rng, shape, std):
    """Gaussian noise: a random window of a fixed bank (fast), fresh draws for very large images."""
    n = int(np.prod(shape))
    bank = _noise_bank()
    if n > bank.size:
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
    start = int(rng.integers(bank.size - n + 1))
    return bank[start:start + n].reshape(shape) * np.float32(std)


def compose(r: Render, look: Look, scale: float, seed: int) -> np.ndarray:
    """Head over background, occluders, colour/blur/resampling/noise: H x W x 3 uint8."""
    H, W = r.mask.shape
    rng = np.random.default_rng(seed)
    bg = background(*look.background, (W, H))
    img = bg.copy()
    x0, y0, x1, y1 = r.box
    img[y0:y1, x0:x1] = r.rgb + bg[y0:y1, x0:x1] * (1 - r.alpha[..., None])
    if look.occluders:
        layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        for kind, s in look.occluders:
            _occluder(d, kind, np.random.default_rng(s), r, scale)
        la = np.asarray(layer, dtype=np.float32) / 255
        shade = 0.8 + 0.3 * np.linspace(1, 0, H, dtype=np.float32)[:, None, None]
        img = img * (1 - la[..., 3:]) + la[..., :3] * shade * la[..., 3:]
    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    levels = np.arange(256) / 255
    for c, g in enumerate(look.gain):  # colour gain, gamma and contrast through a lookup table
        curve = np.clip(levels * g, 0, 1) ** look.gamma
        curve = np.clip(0.5 + (curve - 0.5) * look.contrast, 0, 1)
        u8[..., c] = (curve * 255 + 0.5).astype(np.uint8)[u8[..., c]]
    if look.gray or look.saturation != 1.0:
        f = u8.astype(np.float32)
        grey = f @ np.array([0.299, 0.587, 0.114], np.float32)
        sat = 0.0 if look.gray else look.saturation
        u8 = np.clip(grey[..., None] + (f - grey[..., None]) * sat + 0.5, 0, 255).astype(np.uint8)
    pil = Image.fromarray(u8)
    if look.down < 1:
        small = (max(8, int(W * look.down)), max(8, int(H * look.down)))
        pil = pil.resize(small, Image.BILINEAR).resize((W, H), Image.BILINEAR)
    if look.blur > 0:
        pil = pil.filter(ImageFilter.GaussianBlur(look.blur * W))
    if look.noise <= 0:
        return np.asarray(pil)
    out = np.asarray(pil, dtype=np.float32) + _pixel_noise(rng, (H, W, 3), look.noise * 255)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
