"""benchmarks.render_cues: synthetic heads drawn again with one factor changed (eyes, light), read by
a checkpoint. The factors must change what they name and nothing else; the readings must group
each rendered head under its own factor and pitch."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from benchmarks.render_cues import FACTORS, PITCHES, SHAPE_FACTORS, pitch_readings, variants
from models.registry import build_model
from pipeline.engine.inference import save_checkpoint
from pipeline.core.angles import rotation_matrix
from pipeline.sources import synthetic
from pipeline.sources.synthetic import head as H
from tests.support import experiment, repo_params

CFG = {**repo_params()["data"]["synthetic"], "image_size": 96}


def test_each_head_is_drawn_at_every_pitch_and_factor():
    samples, meta = variants(CFG, 2, FACTORS)
    assert len(samples) == 2 * len(PITCHES) * len(FACTORS) == len(meta)
    assert len({sm.name for sm in samples}) == len(samples)
    assert [sm.label[1] for sm in samples] == list(meta[:, 1])
    raised = [sm for sm, (f, _) in zip(samples, meta) if list(FACTORS)[int(f)] == "irises raised (gaze y -3)"]
    assert all(sm.identity.gaze[1] == -3.0 for sm in raised)
    for sm, (f, _) in zip(samples, meta):
        if list(FACTORS)[int(f)] == "key light from above (60 deg)":
            assert np.degrees(np.arcsin(-sm.look.light.direction[1])) == pytest.approx(60.0)


def test_camera_hair_eye_and_resolution_factors_set_what_they_name():
    samples, meta = variants(CFG, 2, FACTORS)
    names = list(FACTORS)
    at = lambda name: [sm for sm, (f, _) in zip(samples, meta) if names[int(f)] == name]  # noqa: E731
    drawn = {(sm.identity, sm.label): sm for sm in at("as drawn")}  # each head at each pitch
    for name, check in [
        ("camera 1 m away (distance 10)", lambda sm, b: sm.look.distance == 10.0 and sm.look == dataclasses.replace(b.look, distance=10.0)),
        ("orthographic camera", lambda sm, b: sm.look.distance == float("inf")),
        ("hair 3x as thick (hair_volume 3)", lambda sm, b: sm.identity == dataclasses.replace(b.identity, hair_volume=3.0)),
        ("eyes turned to the camera (eye_contact)", lambda sm, b: sm.gaze == H.camera_gaze(rotation_matrix(*b.ypr)) and sm.look == b.look),
        ("rendered at 2x the image size", lambda sm, b: sm.size == (2 * b.size[0], 2 * b.size[1]) and sm.scale == 2 * b.scale),
        ("no blur, no down-sampling", lambda sm, b: sm.look.blur == 0.0 and sm.look.down == 1.0),
    ]:
        changed = at(name)
        assert len(changed) == 2 * len(PITCHES)
        for sm in changed:
            key = (dataclasses.replace(sm.identity, hair_volume=1.0), sm.label)
            assert check(sm, drawn[key]), name


def test_the_gaze_factor_changes_only_the_eyes():
    samples, meta = variants(CFG, 1, FACTORS)
    names = list(FACTORS)
    at = lambda name: next(sm for sm, (f, p) in zip(samples, meta) if names[int(f)] == name and p == 0.0)  # noqa: E731
    base, r = synthetic.render_sample(at("as drawn"))
    raised, _ = synthetic.render_sample(at("irises raised (gaze y -3)"))
    rows = np.flatnonzero(np.any(base != raised, axis=(1, 2)))
    eyes = r.lm68[1, 36:48]
    assert len(rows) and rows.min() >= eyes.min() - 4 and rows.max() <= eyes.max() + 4
    lit, _ = synthetic.render_sample(at("key light from above (60 deg)"))
    assert np.mean(np.any(base != lit, axis=2)[r.mask]) > 0.5  # the light changes the whole head


def test_readings_group_each_head_under_its_factor_and_pitch(tmp_path):
    exp = experiment("x", "dadl")
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    save_checkpoint(path, exp, build_model(exp.model, exp.hparams))
    same = {"as drawn": FACTORS["as drawn"], "again": FACTORS["as drawn"], "lit": FACTORS["key light from above (60 deg)"]}
    readings = pitch_readings(path, CFG, heads=2, factors=same)
    assert list(readings) == list(same) and all(len(v) == len(PITCHES) for v in readings.values())
    assert readings["again"] == pytest.approx(readings["as drawn"], abs=1e-4)  # the same images, read under both names
    assert readings["lit"] != readings["as drawn"]
    assert len(set(readings["as drawn"])) == len(PITCHES)  # each pitch its own images


def test_shape_factors_set_one_proportion_to_an_end_of_its_drawn_range_or_tilt_the_torso():
    samples, meta = variants(CFG, 1, SHAPE_FACTORS)
    names = list(SHAPE_FACTORS)
    drawn = {sm.label: sm for sm, (f, _) in zip(samples, meta) if names[int(f)] == "as drawn"}
    assert len(names) == 1 + 2 * len(H.SHAPE_RANGES) + 3
    for sm, (f, _) in zip(samples, meta):
        name, base = names[int(f)], drawn[sm.label]
        if name.startswith("torso"):
            assert sm.identity == base.identity and sm.look == dataclasses.replace(base.look, body_pitch=sm.look.body_pitch)
            assert sm.look.body_pitch == float(name.split("body_pitch ")[1].rstrip(")"))
        elif name != "as drawn":
            field, end = name.split()
            assert float(end) in H.SHAPE_RANGES[field]
            assert sm.identity == dataclasses.replace(base.identity, **{field: float(end)}) and sm.look == base.look


def test_drawn_identities_keep_within_the_shape_ranges():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idt = H.sample_identity(rng)
        for field, (lo, hi) in H.SHAPE_RANGES.items():
            assert lo <= getattr(idt, field) <= hi


def test_a_tilted_torso_changes_the_body_below_the_head_only():
    samples, meta = variants(CFG, 1, SHAPE_FACTORS)
    names = list(SHAPE_FACTORS)
    at = lambda name: next(sm for sm, (f, p) in zip(samples, meta) if names[int(f)] == name and p == 0.0)  # noqa: E731
    base, r = synthetic.render_sample(at("as drawn"))
    again, _ = synthetic.render_sample(dataclasses.replace(at("as drawn"), look=dataclasses.replace(at("as drawn").look, body_pitch=0.0)))
    above, r2 = synthetic.render_sample(at("torso seen from above (body_pitch -20)"))
    assert np.array_equal(base, again)
    assert np.array_equal(r.lm68, r2.lm68)
    assert not np.any((r.mask != r2.mask)[: int(r.lm68[1, 8]) - 1])  # the neck may hide the chin's underside, no more
    rows = np.flatnonzero(np.any(base != above, axis=(1, 2)))
    assert len(rows) and rows.min() >= r.lm68[1, 36:48].max()  # nothing changes above the eyes
