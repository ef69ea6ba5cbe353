"""Which rendering factors a trained model reads as pitch: the renderer's AFLW2000-style test heads
drawn again at a fixed pitch while one factor changes (issue: a model trained on the built-in data
reads real near-frontal faces with a pitch offset; this asks whether eyes, light, camera distance,
hair, sharpness, the face's proportions or the torso could carry it).

    python -m benchmarks.render_cues --checkpoint results/sim2real/seed-0/model.pt [--heads 40] [--factors shape]

Needs no training and no real images. It takes the first `--heads` AFLW2000-style test samples of
params.yaml `data.synthetic` (identity, look, occluders and framing as drawn), sets each one's
pose to (yaw drawn in +-25, pitch in PITCHES, roll 0) and renders it once per factor of
`FACTORS` (`--factors shape`: of `SHAPE_FACTORS`, the face's proportions at the ends of their drawn
ranges and the torso's tilt); the images are written as an AFLW2000 folder and cut with the checkpoint's own crop
settings (as `python -m pipeline.evaluate` cuts a folder), then scored as the checkpoint is
scored (`predict_as_trained`). It prints the mean predicted pitch per factor and true pitch, and
each factor's shift against the heads as drawn. A factor that moves the reading by several
degrees is one the model takes for pose; one that does not cannot explain a pitch offset on real
photographs, however differently real photographs show it.
"""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.config.params import load_params
from pipeline.core.angles import rotation_matrix
from pipeline.core.errors import DataError, cli
from pipeline.data.cropping import cropped_folder
from pipeline.engine.inference import load_checkpoint, predict_as_trained
from pipeline.sources import synthetic
from pipeline.sources.synthetic import head as H, scene

PITCHES = (-20.0, 0.0, 20.0)
YAW = 25.0


def _gaze(dy: float):
    return lambda sm: replace(sm, identity=replace(sm.identity, gaze=(sm.identity.gaze[0], dy)), gaze=None)


def _eye_contact(sm):
    return replace(sm, gaze=H.camera_gaze(rotation_matrix(*sm.ypr)))


def _key_elevation(deg: float):
    def change(sm):
        x, _, z = sm.look.light.direction
        azimuth = np.degrees(np.arctan2(x, -z))  # the drawn azimuth, kept
        return replace(sm, look=replace(sm.look, light=replace(sm.look.light, direction=scene.light_direction(azimuth, deg))))
    return change


def _flat(sm):
    light = replace(sm.look.light, colour=(0.0, 0.0, 0.0), fill_colour=(0.0, 0.0, 0.0), ambient=0.9, shadow=0.0)
    return replace(sm, look=replace(sm.look, light=light))


def _identity(**changes):
    return lambda sm: replace(sm, identity=replace(sm.identity, **changes))


def _resolution(k: float):
    """The whole image rendered k times larger (same framing): crops from it are downsampled, not upsampled."""
    return lambda sm: replace(sm, size=tuple(int(round(k * v)) for v in sm.size), centre=tuple(k * v for v in sm.centre),
                              scale=k * sm.scale)


def _sharp(sm):
    return replace(sm, look=replace(sm.look, blur=0.0, down=1.0))


def _camera(distance: float):
    return lambda sm: replace(sm, look=replace(sm.look, distance=distance))


def _torso(pitch: float):
    return lambda sm: replace(sm, look=replace(sm.look, body_pitch=pitch))


# name: the change to a sample (identity gaze: iris offset, in texture pixels / 2, vertically;
# eye_open and brow_raise: the identity's eyelid opening, drawn from 0.55-1.05, and brow lift, -0.5-1.0;
# camera distance in head units of 100 mm, drawn from data.synthetic.camera_distance, uniformly in 1 / distance)
FACTORS = {
    "as drawn": lambda sm: sm,
    "irises raised (gaze y -3)": _gaze(-3.0),
    "irises lowered (gaze y +3)": _gaze(3.0),
    "key light from below (-30 deg)": _key_elevation(-30.0),
    "key light level (0 deg, a flash)": _key_elevation(0.0),
    "key light from above (60 deg)": _key_elevation(60.0),
    "key light from above (75 deg)": _key_elevation(75.0),
    "key light from above (85 deg)": _key_elevation(85.0),
    "eyelids lowered (eye_open 0.3)": _identity(eye_open=0.3),
    "brows lowered (brow_raise -0.5)": _identity(brow_raise=-0.5),
    "brows raised (brow_raise +1.0)": _identity(brow_raise=1.0),
    "ambient light only": _flat,
    "camera 0.5 m away (distance 5)": _camera(5.0),
    "camera 1 m away (distance 10)": _camera(10.0),
    "camera 4 m away (distance 40)": _camera(40.0),
    "orthographic camera": _camera(float("inf")),
    "no hair (bald)": _identity(hair="bald"),
    "hair 3x as thick (hair_volume 3)": _identity(hair_volume=3.0),
    "eyes turned to the camera (eye_contact)": _eye_contact,
    "no blur, no down-sampling": _sharp,
    "rendered at 2x the image size": _resolution(2.0),
    "rendered at 2x, no blur or down-sampling": lambda sm: _resolution(2.0)(_sharp(sm)),
}

# `--factors shape`: each identity shape factor at both ends of the range sample_identity draws it
# from (head.SHAPE_RANGES; 1 is the canonical face), and the torso turned as a head of that pitch
# would be (drawn images keep it upright in the camera frame; -20: seen from a camera above the person)
SHAPE_FACTORS = {
    "as drawn": FACTORS["as drawn"],
    **{f"{name} {end:g}": _identity(**{name: end}) for name, bounds in H.SHAPE_RANGES.items() for end in bounds},
    "torso seen from above (body_pitch -20)": _torso(-20.0),
    "torso seen from above (body_pitch -10)": _torso(-10.0),
    "torso seen from below (body_pitch +10)": _torso(10.0),
}
GROUPS = {"appearance": FACTORS, "shape": SHAPE_FACTORS}


def variants(cfg: dict, heads: int, factors: dict, seed: int = 0) -> tuple[list, np.ndarray]:
    """The samples to render (named image00000 ...) and, per sample, (factor index, true pitch)."""
    cfg = {**cfg, "train_per_subset": 1, "test_images": heads, "biwi_sequences": 1, "biwi_frames": 1}
    base = [sm for sm in synthetic.plan(cfg) if sm.dataset == "AFLW2000"]
    rng = np.random.default_rng(seed)
    out, meta = [], []
    for sm in base:
        yaw = float(rng.uniform(-YAW, YAW))
        for pitch in PITCHES:
            posed = replace(sm, ypr=(yaw, pitch, 0.0), label=(yaw, pitch, 0.0))
            if sm.gaze is not None:  # eyes that looked at the camera keep looking at it (data.synthetic.eye_contact)
                posed = _eye_contact(posed)
            for f, change in enumerate(factors.values()):
                out.append(replace(change(posed), name=f"image{len(out):05d}"))
                meta.append((f, pitch))
    return out, np.array(meta)


def pitch_readings(checkpoint: Path, cfg: dict, heads: int = 40, factors: dict | None = None) -> dict:
    """{factor: mean predicted pitch at each of PITCHES}."""
    factors = FACTORS if factors is None else factors
    model, ckpt = load_checkpoint(checkpoint)
    samples, meta = variants(cfg, heads, factors)
    with tempfile.TemporaryDirectory(prefix="render-cues-") as tmp:
        folder = Path(tmp) / "AFLW2000"
        folder.mkdir()
        for sm in samples:
            synthetic.write_sample(Path(tmp), sm)
        with cropped_folder("aflw2000", folder, ckpt.experiment.crop) as store:
            if len(store) != len(samples):
                raise DataError(f"{len(samples) - len(store)} of the {len(samples)} rendered heads were not cropped; "
                                "check params.yaml data.synthetic and crop")
            order = [int(Path(sid).name[5:]) for sid in store.labels["sample_id"]]
            pred = np.empty(len(samples))
            pred[order] = predict_as_trained(model, ckpt.experiment, store, np.arange(len(store)))[:, 1]
    return {name: [float(pred[(meta[:, 0] == f) & (meta[:, 1] == p)].mean()) for p in PITCHES]
            for f, name in enumerate(factors)}


def table(readings: dict) -> str:
    base = readings["as drawn"]
    lines = ["| factor | " + " | ".join(f"read at pitch {p:+.0f}" for p in PITCHES) + " | mean shift |",
             "|---|" + "---:|" * (len(PITCHES) + 1)]
    for name, row in readings.items():
        shift = np.mean(np.subtract(row, base))
        lines.append(f"| {name} | " + " | ".join(f"{v:+.2f}" for v in row) + f" | {shift:+.2f} |")
    return "\n".join(lines)


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a model.pt trained on crops")
    parser.add_argument("--heads", type=int, default=40, help="test heads, each drawn at every pitch and factor")
    parser.add_argument("--factors", choices=list(GROUPS), default="appearance",
                        help="appearance: eyes, light, camera, hair, sharpness (FACTORS); shape: face proportions and torso (SHAPE_FACTORS)")
    args = parser.parse_args(argv)
    cfg = load_params().data.synthetic.model_dump()
    readings = pitch_readings(args.checkpoint, cfg, args.heads, GROUPS[args.factors])
    print(f"{args.heads} synthetic test heads at pitch {', '.join(f'{p:+.0f}' for p in PITCHES)} (yaw within +-{YAW:.0f}, "
          "roll 0); mean predicted pitch (deg):\n")
    print(table(readings))


if __name__ == "__main__":
    main()
