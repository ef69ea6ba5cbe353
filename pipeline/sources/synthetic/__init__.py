"""Procedural head-pose datasets in the real on-disk formats of 300W-LP, AFLW2000 and BIWI.

    counts = generate(out_root, cfg)   # cfg: params.yaml data.synthetic (pipeline.config.params.Synthetic)

writes `out_root/300W_LP` (AFW, HELEN, IBUG, LFPW, their `_Flip` mirrors and an empty
`landmarks/`), `out_root/AFLW2000` and `out_root/hpdb/NN` (see writers.py for the file contents).
Heads are rendered with `pipeline.angles.rotation_matrix(yaw, pitch, roll)` (head.py), so the
labels follow the harness' angle convention exactly.

Determinism: every sample draws from its own `np.random.SeedSequence([seed, stream, *index])`,
so the same cfg gives byte-identical files whatever the number of worker processes. Label noise
(`label_noise`, degrees) comes from separate streams: it changes the written labels of the
training-style sets (300W-LP, BIWI) and nothing else; AFLW2000-style labels are always exact.

Conventions decided here:
- 300W-LP file names are `<subset>_<identity>_<view>`: each identity (shape, colours, light,
  background) is shown in `VIEWS` poses, as 300W-LP shows each photo at several poses.
- BIWI: the label is the pose in the depth camera's frame; the RGB image shows the head as the
  RGB camera sees it, R_ext @ M, so the labels differ from the pictured pose by the small
  extrinsic rotation (< 2 degrees), as on real BIWI where methods ignore the extrinsics. The
  head centre written to pose.txt projects through rgb.cal (`pipeline.calibration.project`)
  onto the pixel where the head centre was drawn.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import lru_cache
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.core.angles import ANGLE_LIMIT, rotation_matrix
from pipeline.core.atomic import atomic_dir
from pipeline.core.workers import quiet_worker
from pipeline.data.calibration import Calibration, unproject
from pipeline.config.params import Synthetic, validated
from pipeline.sources.synthetic import head as H, scene, writers

SUBSETS = ("AFW", "HELEN", "IBUG", "LFPW")
VIEWS = 8  # 300W-LP-style views per identity
BIWI_FOCAL_640 = 517.7  # BIWI's RGB focal length (px) at 640 x 480
BIWI_DEPTH_FOCAL_640 = 575.8
HEAD_FRACTION = (0.45, 0.65)  # head height (crown to chin) as a share of the image side
_HEAD_HEIGHT_UNITS = 2.4  # crown (with hair) to chin, head units
# Random streams, the second entry of every SeedSequence
(TRAIN_IDENTITY, TRAIN_VIEW, TRAIN_NOISE, TEST_IDENTITY, TEST_SAMPLE, BIWI_SEQUENCE, BIWI_FRAME, BIWI_NOISE, TRAIN_EYES, TEST_EYES,
 TRAIN_LIPS, TEST_LIPS, TRAIN_DETAIL, TEST_DETAIL) = range(1, 15)
EYE_JITTER = 4.0  # deg (sd): eyes meant for the camera miss it by about this much


def _rng(seed: int, stream: int, *index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *index]))


@dataclass(frozen=True)
class Sample:
    """One image to render and write; `ypr` is the pose drawn, `label` the pose written."""

    dataset: str  # 300W_LP | AFLW2000 | hpdb
    name: str  # path below the dataset folder, without extension (the _Flip twin shares it)
    ypr: tuple
    label: tuple
    identity: H.Identity
    look: scene.Look
    centre: tuple  # head centre pixel
    scale: float  # px per head unit
    size: tuple  # (W, H)
    seed: int  # pixel-level randomness (occluders' placement is in look)
    extra: tuple = ()  # BIWI: (R_ext, centre_mm)
    gaze: tuple | None = None  # Identity.gaze of this view when its eyes turn to the camera (None: the identity's own)


def _noisy(ypr, cfg, stream, *index):
    if cfg["label_noise"] <= 0:
        return tuple(ypr)
    return tuple(np.asarray(ypr) + _rng(cfg["seed"], stream, *index).normal(0, cfg["label_noise"], 3))


def _hair(identity: H.Identity, cfg) -> H.Identity:
    """The identity with params.yaml's `hair_volume` (a setting, not a draw: other draws stay)."""
    return identity if cfg["hair_volume"] == 1.0 else replace(identity, hair_volume=float(cfg["hair_volume"]))


def _chosen(cfg, share: str, stream, *index) -> np.random.Generator | None:
    """The sample's own generator of `stream` if it is among the cfg[share] share of samples the
    setting changes, else None. A setting drawn from its own stream leaves every other draw, and
    so the rest of the data, as it was."""
    if cfg[share] <= 0:
        return None
    rng = _rng(cfg["seed"], stream, *index)
    return rng if rng.random() < cfg[share] else None


def _lips(identity: H.Identity, cfg, stream, *index) -> H.Identity:
    """With probability `closed_lips`, an identity whose mouth its draw left unopened (mouth_open 0:
    the canonical face's parted lips) closes them by a uniform share of that gap (mouth_open in
    [-1, 0))."""
    rng = _chosen(cfg, "closed_lips", stream, *index) if identity.mouth_open == 0.0 else None
    return identity if rng is None else replace(identity, mouth_open=-float(rng.uniform(0.0, 1.0)))


def _detailed(identity: H.Identity, cfg, stream, *index) -> H.Identity:
    """With probability `eye_detail`, the identity with photographed eyes and brows (head._eye_detail)
    at a uniform strength in [0.4, 1]."""
    rng = _chosen(cfg, "eye_detail", stream, *index)
    return identity if rng is None else replace(identity, eye_detail=float(rng.uniform(0.4, 1.0)))


def _eye_contact(cfg, ypr, stream, *index) -> tuple | None:
    """With probability `eye_contact`, the gaze of eyes looking at the camera (head.camera_gaze)."""
    rng = _chosen(cfg, "eye_contact", stream, *index)
    return None if rng is None else H.camera_gaze(rotation_matrix(*ypr), tuple(rng.normal(0.0, EYE_JITTER, 2)))


def _framing(rng, size):
    """Head centre and scale: head height a HEAD_FRACTION of the side, centre jittered, head kept in frame."""
    frac = rng.uniform(*HEAD_FRACTION)
    shift = np.clip(rng.normal(0, 0.04 * size, 2), -(1 - frac) / 2 * size * 0.8, (1 - frac) / 2 * size * 0.8)
    return tuple(size / 2 + shift), frac * size / _HEAD_HEIGHT_UNITS


@lru_cache(maxsize=4)
def _train_identity(seed: int, si: int, ident: int):
    """Identity and the look its views share (light, background)."""
    irng = _rng(seed, TRAIN_IDENTITY, si, ident)
    return H.sample_identity(irng), scene.sample_look(irng, "train")


def _train_sample(cfg, si: int, i: int) -> Sample:
    seed, size = cfg["seed"], cfg["image_size"]
    ident, view = i // VIEWS, i % VIEWS
    identity, shared = _train_identity(seed, si, ident)
    rng = _rng(seed, TRAIN_VIEW, si, i)
    ypr = scene.sample_pose(rng, "train")
    centre, scale = _framing(rng, size)
    look = replace(scene.sample_look(rng, "train", tuple(cfg["camera_distance"])), light=shared.light, background=shared.background)
    sub = SUBSETS[si]
    identity = _lips(_hair(identity, cfg), cfg, TRAIN_LIPS, si, ident)  # all views of an identity share its lips and eyes
    identity = _detailed(identity, cfg, TRAIN_DETAIL, si, ident)
    return Sample("300W_LP", f"{sub}/{sub}_{ident}_{view}", tuple(ypr), _noisy(ypr, cfg, TRAIN_NOISE, si, i), identity, look,
                  centre, scale, (size, size), int(rng.integers(2**62)), gaze=_eye_contact(cfg, ypr, TRAIN_EYES, si, i))


def _test_sample(cfg, i: int) -> Sample:
    seed, size = cfg["seed"], cfg["image_size"]
    identity = H.sample_identity(_rng(seed, TEST_IDENTITY, i))
    rng = _rng(seed, TEST_SAMPLE, i)
    ypr = scene.sample_pose(rng, "test")
    centre, scale = _framing(rng, size)
    look = scene.sample_look(rng, "test", tuple(cfg["camera_distance"]))
    return Sample("AFLW2000", f"image{i:05d}", tuple(ypr), tuple(ypr), _detailed(_lips(_hair(identity, cfg), cfg, TEST_LIPS, i), cfg, TEST_DETAIL, i), look, centre,
                  scale, (size, size), int(rng.integers(2**62)), gaze=_eye_contact(cfg, ypr, TEST_EYES, i))


def biwi_calibration(rng, size) -> tuple[Calibration, Calibration]:
    """RGB and depth calibrations of one sequence: BIWI's focal lengths scaled to `size`, principal
    point at the centre, a small random RGB extrinsic rotation (< 2 deg) and about -25 mm in x."""
    W, Hh = size

    def K(f):
        return np.array([[f * W / 640, 0, W / 2], [0, f * W / 640, Hh / 2], [0, 0, 1.0]])

    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    ang = np.radians(rng.uniform(0.2, 1.8))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    r_ext = np.eye(3) + np.sin(ang) * k + (1 - np.cos(ang)) * k @ k  # Rodrigues
    t = np.array([-25.0, 0.0, 0.0]) + rng.normal(0, 1.5, 3)
    return (Calibration(K(BIWI_FOCAL_640), r_ext, t, (W, Hh)), Calibration(K(BIWI_DEPTH_FOCAL_640), np.eye(3), np.zeros(3), (W, Hh)))


@lru_cache(maxsize=4)
def _biwi_sequence(seed: int, s: int, n: int, size: tuple):
    """Identity, look, calibrations, poses (n x 3), head pixels (n x 2) and depths (n) of sequence s."""
    rng = _rng(seed, BIWI_SEQUENCE, s)
    identity = H.sample_identity(rng)
    look = scene.sample_look(rng, "biwi")
    cal, dcal = biwi_calibration(rng, size)
    poses = scene.biwi_trajectory(rng, n)
    W, Hh = size
    px = np.stack([W / 2 + 0.12 * W * scene.smooth_path(rng, n, 2), Hh / 2 + 0.08 * Hh * scene.smooth_path(rng, n, 2)], axis=1)
    depth = rng.uniform(900, 1000) + rng.uniform(60, 100) * scene.smooth_path(rng, n, 2)
    return identity, look, cal, dcal, poses, px, depth


def _biwi_sample(cfg, s: int, f: int) -> Sample:
    seed, size = cfg["seed"], tuple(cfg["biwi_size"])
    identity, look, cal, _, poses, px, depth = _biwi_sequence(seed, s, cfg["biwi_frames"], size)
    ypr = poses[f]
    centre_mm = unproject(px[f], depth[f], cal)
    scale = cal.K[0, 0] * H.HEAD_UNIT_MM / depth[f]
    return Sample("hpdb", f"{s + 1:02d}/frame_{f:05d}", tuple(ypr), _noisy(ypr, cfg, BIWI_NOISE, s, f), identity, look,
                  tuple(px[f]), float(scale), size, int(_rng(seed, BIWI_FRAME, s, f).integers(2**62)), (cal.R, tuple(centre_mm)))


def _keys(cfg: dict) -> list[tuple]:
    """Every sample's key, in a fixed order: (dataset, *index)."""
    keys = [("300W_LP", si, i) for si in range(len(SUBSETS)) for i in range(cfg["train_per_subset"])]
    keys += [("AFLW2000", i) for i in range(cfg["test_images"])]
    return keys + [("hpdb", s, f) for s in range(cfg["biwi_sequences"]) for f in range(cfg["biwi_frames"])]


def _sample(cfg: dict, key: tuple) -> Sample:
    make = {"300W_LP": _train_sample, "AFLW2000": _test_sample, "hpdb": _biwi_sample}[key[0]]
    return make(cfg, *key[1:])


def plan(cfg: Synthetic | dict) -> list[Sample]:
    """Every sample of a cfg (what generate() draws and writes), without rendering."""
    cfg = _config(cfg)
    return [_sample(cfg, k) for k in _keys(cfg)]


@lru_cache(maxsize=8)
def _head(identity: H.Identity, hat) -> H.Head:
    # views of one identity with and without a hat share the build of the hatless head
    return H.build_head(identity) if hat is None else H.with_hat(_head(identity, None), hat)


def render_sample(sm: Sample):
    """(uint8 image, Render) of one sample."""
    R = rotation_matrix(*sm.ypr)
    if sm.extra:
        R = sm.extra[0] @ R  # the RGB camera sees the depth-frame pose rotated by the extrinsics
    head = _head(sm.identity, sm.look.hat)
    if sm.gaze is not None:
        head = H.with_gaze(head, sm.gaze)
    r = H.render(head, R, sm.centre, sm.scale, sm.size, sm.look.light, distance=sm.look.distance,
                 body_pitch=sm.look.body_pitch)
    return scene.compose(r, sm.look, sm.scale, sm.seed), r


def write_sample(root: Path, sm: Sample) -> None:
    """Render one sample and write its files under root (the dataset folders must exist)."""
    img, r = render_sample(sm)
    if sm.dataset == "300W_LP":
        sub, name = sm.name.split("/")
        writers.write_300wlp(root / "300W_LP", sub, name, img, r.lm68, sm.label, sm.centre, sm.scale, sm.look.jpeg)
    elif sm.dataset == "AFLW2000":
        writers.write_aflw(root / "AFLW2000", int(sm.name[5:]), img, r.lm21, r.vis21, r.lm68, r.z68, sm.label, sm.centre,
                           sm.scale, sm.look.jpeg)
    else:
        seq, frame = sm.name.split("/")
        writers.write_biwi_frame(root / "hpdb" / seq, int(frame[6:]), img, rotation_matrix(*sm.label), sm.extra[1])


def _write(task) -> tuple[str, bool]:
    """Worker: draw, render and write the sample of one key; (dataset, label beyond +-99?)."""
    root, cfg, key = task
    sm = _sample(cfg, key)
    write_sample(root, sm)
    return sm.dataset, bool(np.any(np.abs(sm.label) > ANGLE_LIMIT))


def _warm() -> None:
    """Fill the caches every render reads, whatever the sample: the face's ambient occlusion, the
    pixel-noise bank and the background photographs (pure functions of nothing: outputs stay)."""
    H._static_ao()
    scene._noise_bank()
    for name in scene.PHOTOS:
        scene._photo(name)


def _config(cfg: Synthetic | dict) -> dict:
    """The settings as a plain dict (cached helpers key on its values); a dict is checked first."""
    if not isinstance(cfg, Synthetic):
        cfg = validated(Synthetic, cfg, "synthetic cfg")
    return cfg.model_dump()


def generate(out_root: Path, cfg: Synthetic | dict, progress: bool = True, workers: int = 2) -> dict:
    """Render all three datasets into out_root (replaced atomically); returns counts of images written.

    Counts: images per dataset (300W_LP includes the _Flip twins), `beyond_99`: per dataset, how many
    written labels fall outside +-99 degrees (twins included). No timing: the counts go into
    data/raw/sources.json, which must hash the same whenever the same images are written.
    """
    cfg = _config(cfg)
    twins = {"300W_LP": 2, "AFLW2000": 1, "hpdb": 1}
    counts = {d: 0 for d in twins}
    beyond = {d: 0 for d in twins}
    with atomic_dir(Path(out_root)) as tmp:
        for sub in SUBSETS:
            (tmp / "300W_LP" / sub).mkdir(parents=True)
            (tmp / "300W_LP" / f"{sub}_Flip").mkdir()
        (tmp / "300W_LP" / "landmarks").mkdir()
        (tmp / "AFLW2000").mkdir()
        for s in range(cfg["biwi_sequences"]):
            seq = tmp / "hpdb" / f"{s + 1:02d}"
            seq.mkdir(parents=True)
            _, _, cal, dcal, *_ = _biwi_sequence(cfg["seed"], s, cfg["biwi_frames"], tuple(cfg["biwi_size"]))
            writers.write_biwi_calibration(seq, cal, dcal)
        tasks = [(tmp, cfg, k) for k in _keys(cfg)]
        method = "fork" if "fork" in get_all_start_methods() else None  # fork: workers start at once
        if workers > 1 and method == "fork":
            _warm()  # forked workers inherit these caches instead of each computing them again
        pool = get_context(method).Pool(workers, initializer=quiet_worker) if workers > 1 else nullcontext()
        with pool, tqdm(total=len(tasks), desc="synthetic", unit="img", disable=not progress) as bar:
            results = pool.imap_unordered(_write, tasks, chunksize=16) if workers > 1 else map(_write, tasks)
            for dataset, out in results:
                counts[dataset] += twins[dataset]
                beyond[dataset] += twins[dataset] * out
                bar.update()
    return {**counts, "beyond_99": beyond}
