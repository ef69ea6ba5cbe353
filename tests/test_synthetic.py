"""The procedural renderer (pipeline.sources.synthetic): layouts, labels, conventions, determinism."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from pipeline.sources import synthetic
from pipeline.core.angles import biwi_euler, flip_pose, pose_para_to_ypr, rotation_matrix
from pipeline.data.calibration import project, read_cal
from pipeline.sources.synthetic import head as H, mesh as M, scene
from tests.support import repo_params

TINY = {**repo_params()["data"]["synthetic"], "image_size": 64, "train_per_subset": 2, "test_images": 4, "biwi_sequences": 2,
        "biwi_frames": 3, "biwi_size": [160, 120]}


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "raw"
    counts = synthetic.generate(root, TINY, progress=False)
    return root, counts, synthetic.plan(TINY)


def test_layout_keys_and_shapes(tiny):
    root, counts, _ = tiny
    assert counts["300W_LP"] == 16 and counts["AFLW2000"] == 4 and counts["hpdb"] == 6
    lp = root / "300W_LP"
    assert sorted(p.name for p in lp.iterdir()) == sorted(
        [s + f for s in synthetic.SUBSETS for f in ("", "_Flip")] + ["landmarks"])
    assert not any((lp / "landmarks").iterdir())
    for sub in synthetic.SUBSETS:
        for folder in (sub, f"{sub}_Flip"):
            names = sorted(p.name for p in (lp / folder).iterdir())
            assert names == [f"{sub}_0_0.jpg", f"{sub}_0_0.mat", f"{sub}_0_1.jpg", f"{sub}_0_1.mat"]
    mat = scipy.io.loadmat(lp / "AFW" / "AFW_0_0.mat")
    assert mat["Pose_Para"].shape == (1, 7) and mat["Pose_Para"].dtype == np.float64
    assert mat["pt2d"].shape == (2, 68) and mat["pt2d"].dtype == np.float64
    assert Image.open(lp / "AFW" / "AFW_0_0.jpg").size == (64, 64)
    aflw = root / "AFLW2000"
    assert sorted(p.name for p in aflw.iterdir()) == [f"image{i:05d}.{e}" for i in range(4) for e in ("jpg", "mat")]
    mat = scipy.io.loadmat(aflw / "image00000.mat")
    shapes = {k: mat[k].shape for k in ("Pose_Para", "pt2d", "pt3d_68", "roi")}
    assert shapes == {"Pose_Para": (1, 7), "pt2d": (2, 21), "pt3d_68": (3, 68), "roi": (1, 4)}
    for seq in ("01", "02"):
        d = root / "hpdb" / seq
        assert (d / "rgb.cal").is_file() and (d / "depth.cal").is_file()
        assert read_cal(d / "depth.cal").R.tolist() == np.eye(3).tolist()
        for f in range(3):
            assert Image.open(d / f"frame_{f:05d}_rgb.png").size == (160, 120)
            assert (d / f"frame_{f:05d}_pose.txt").is_file()


def test_pose_para_round_trips_and_flip_twin(tiny):
    root, _, samples = tiny
    for sm in samples:
        if sm.dataset == "hpdb":
            continue
        mat = scipy.io.loadmat(root / sm.dataset / f"{sm.name}.mat")
        np.testing.assert_allclose(pose_para_to_ypr(mat["Pose_Para"]), sm.ypr, atol=1e-9)
        np.testing.assert_allclose(mat["Pose_Para"][0, 3:6], [sm.centre[0], 64 - sm.centre[1], 0.0])
        if sm.dataset == "300W_LP":
            sub, name = sm.name.split("/")
            twin = scipy.io.loadmat(root / "300W_LP" / f"{sub}_Flip" / f"{name}.mat")
            np.testing.assert_allclose(pose_para_to_ypr(twin["Pose_Para"]), flip_pose(sm.ypr), atol=1e-9)
            np.testing.assert_allclose(twin["pt2d"][0], 63 - mat["pt2d"][0])
            np.testing.assert_allclose(twin["pt2d"][1], mat["pt2d"][1])
            img = np.asarray(Image.open(root / "300W_LP" / sub / f"{name}.jpg"), dtype=float)
            flipped = np.asarray(Image.open(root / "300W_LP" / f"{sub}_Flip" / f"{name}.jpg"), dtype=float)
            assert np.abs(img[:, ::-1] - flipped).mean() < 4  # the same picture mirrored (up to JPEG)


def _aflw_at(tmp_path, ypr):
    """Write the first AFLW2000-style sample at a chosen pose and read its .mat back."""
    sm = next(s for s in synthetic.plan(TINY) if s.dataset == "AFLW2000")
    sm = dataclasses.replace(sm, ypr=tuple(ypr), label=tuple(ypr))
    (tmp_path / "AFLW2000").mkdir(exist_ok=True)
    synthetic.write_sample(tmp_path, sm)
    return scipy.io.loadmat(tmp_path / "AFLW2000" / f"{sm.name}.mat")


def test_aflw_pt2d_marks_self_occluded_points(tmp_path):
    frontal = _aflw_at(tmp_path, (0, 0, 0))["pt2d"]
    assert np.all(frontal >= 0)
    turned = _aflw_at(tmp_path, (75, 5, 0))["pt2d"]
    hidden = np.all(turned == -1, axis=0)
    assert hidden.any() and np.array_equal(hidden, np.any(turned < 0, axis=0))
    assert hidden[12] and not hidden[16]  # nose to image-left: the image-left ear turns away
    mat = _aflw_at(tmp_path, (0, 0, 0))
    pt3d = mat["pt3d_68"]
    assert pt3d[2, 30] == pt3d[2].max()  # z points towards the camera: the nose tip is nearest
    assert mat["roi"][0, 0] <= pt3d[0].min() and mat["roi"][0, 2] >= pt3d[0].max()


def test_biwi_pose_txt_and_projected_centre(tiny):
    root, _, samples = tiny
    for sm in (s for s in samples if s.dataset == "hpdb"):
        seq, frame = sm.name.split("/")
        text = (root / "hpdb" / seq / f"{frame}_pose.txt").read_text()
        lines = text.split("\n")
        assert len(lines) == 6 and lines[3] == "" and lines[5] == "" and all(ln.endswith(" ") for ln in lines[:3] + [lines[4]])
        matrix = np.array([[float(v) for v in ln.split()] for ln in lines[:3]])
        np.testing.assert_allclose(biwi_euler(matrix), sm.ypr, atol=1e-3)
        centre = np.array([float(v) for v in lines[4].split()])
        assert 750 < np.linalg.norm(centre) < 1150
        uv = project(centre, read_cal(root / "hpdb" / seq / "rgb.cal"))
        np.testing.assert_allclose(uv, sm.centre, atol=0.5)
        _, r = synthetic.render_sample(sm)
        assert r.mask[int(round(uv[1])), int(round(uv[0]))]
    cal = read_cal(root / "hpdb" / "01" / "rgb.cal")
    assert cal.size == (160, 120) and abs(cal.K[0, 0] - 517.7 * 160 / 640) < 1e-3
    angle = np.degrees(np.arccos((np.trace(cal.R) - 1) / 2))
    assert 0 < angle < 2 and -30 < cal.t[0] < -20


def test_same_config_same_bytes_any_worker_count(tiny, tmp_path):
    root, _, _ = tiny
    again = tmp_path / "again"
    synthetic.generate(again, TINY, progress=False, workers=1)
    assert _files(again) == _files(root)
    other = tmp_path / "other"
    synthetic.generate(other, {**TINY, "seed": 1}, progress=False, workers=1)
    a, b = _files(root), _files(other)
    assert a.keys() == b.keys() and all(a[k] != b[k] for k in a if k.endswith((".jpg", ".png")))


def test_label_noise_changes_training_labels_only(tiny, tmp_path):
    root, _, _ = tiny
    noisy = tmp_path / "noisy"
    synthetic.generate(noisy, {**TINY, "label_noise": 3.0}, progress=False, workers=1)
    a, b = _files(root), _files(noisy)
    changed = {k for k in a if a[k] != b[k]}
    assert changed == {k for k in a if (k.startswith("300W_LP") and k.endswith(".mat")) or k.endswith("_pose.txt")}
    twin = scipy.io.loadmat(noisy / "300W_LP" / "AFW_Flip" / "AFW_0_0.mat")
    plain = scipy.io.loadmat(noisy / "300W_LP" / "AFW" / "AFW_0_0.mat")
    np.testing.assert_allclose(pose_para_to_ypr(twin["Pose_Para"]), flip_pose(pose_para_to_ypr(plain["Pose_Para"])))


def test_replaces_out_root_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    cfg = {**TINY, "train_per_subset": 1, "test_images": 1, "biwi_sequences": 1, "biwi_frames": 1}
    synthetic.generate(out, cfg, progress=False, workers=1)
    assert not (out / "stale.txt").exists() and (out / "AFLW2000" / "image00000.jpg").is_file()

    def boom(task):
        raise RuntimeError("crash mid-render")

    monkeypatch.setattr(synthetic, "_write", boom)
    with pytest.raises(RuntimeError):
        synthetic.generate(tmp_path / "new", cfg, progress=False, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def _landmarks(ypr):
    head = H.build_head(H.sample_identity(np.random.default_rng(3)))
    return H.render(head, rotation_matrix(*ypr), (64, 64), 25.0, (128, 128), scene.sample_light(np.random.default_rng(0), "train"))


def test_sign_conventions_on_projected_landmarks():
    eyes = lambda r: r.lm68[:, [36, 45]].mean(axis=1)  # noqa: E731
    r = _landmarks((40, 0, 0))
    assert r.lm68[0, 30] < eyes(r)[0] - 5  # positive yaw: nose towards image-left
    up, flat = _landmarks((0, 30, 0)), _landmarks((0, 0, 0))
    assert up.lm68[1, 30] - eyes(up)[1] < flat.lm68[1, 30] - eyes(flat)[1] - 3  # positive pitch: face tilts up
    r = _landmarks((0, 0, 30))
    d = r.lm68[:, 45] - r.lm68[:, 36]
    assert np.degrees(np.arctan2(d[1], d[0])) == pytest.approx(30, abs=1)  # positive roll: clockwise in the image
    # the picture agrees with the landmarks: the nearest head pixel is the nose tip, left of the eyes
    r = _landmarks((25, 0, 0))
    v, u = np.unravel_index(np.argmin(r.depth), r.depth.shape)
    assert np.hypot(u - r.lm68[0, 30], v - r.lm68[1, 30]) < 3 and u < eyes(r)[0] - 2


def test_photographic_settings_change_only_what_they_name():
    """eye_contact, camera_distance, hair_volume, closed_lips and eye_detail each change their own part
    of the 300W-LP- and AFLW2000-style samples and no other draw, so an ablation of one compares the same images."""
    base = synthetic.plan(TINY)
    photo = [i for i, sm in enumerate(base) if sm.dataset != "hpdb"]
    eyes = synthetic.plan({**TINY, "eye_contact": 1.0})
    far = synthetic.plan({**TINY, "camera_distance": [10.0, 40.0]})
    hair = synthetic.plan({**TINY, "hair_volume": 3.0})
    lips = synthetic.plan({**TINY, "closed_lips": 1.0})
    detail = synthetic.plan({**TINY, "eye_detail": 1.0})
    for i in photo:
        assert base[i].gaze is None and eyes[i] == dataclasses.replace(base[i], gaze=eyes[i].gaze)
        assert eyes[i].gaze == pytest.approx(H.camera_gaze(rotation_matrix(*base[i].ypr)), abs=0.6)  # within the jitter
        assert far[i] == dataclasses.replace(base[i], look=dataclasses.replace(base[i].look, distance=far[i].look.distance))
        assert 10.0 <= far[i].look.distance <= 40.0
        assert hair[i] == dataclasses.replace(base[i], identity=dataclasses.replace(base[i].identity, hair_volume=3.0))
        closed = lips[i].identity.mouth_open
        assert lips[i] == dataclasses.replace(base[i], identity=dataclasses.replace(base[i].identity, mouth_open=closed))
        assert (-1.0 <= closed < 0.0) if base[i].identity.mouth_open == 0.0 else closed == base[i].identity.mouth_open
        strength = detail[i].identity.eye_detail
        assert detail[i] == dataclasses.replace(base[i], identity=dataclasses.replace(base[i].identity, eye_detail=strength))
        assert base[i].identity.eye_detail == 0.0 and 0.4 <= strength <= 1.0
    assert min(base[i].look.distance for i in photo) < 10.0  # the default range reaches nearer
    assert any(lips[i].identity.mouth_open < 0 for i in photo)  # some unparted lips did close
    assert all(sm.gaze is None and sm.name == b.name for sm, b in zip(eyes, base) if sm.dataset == "hpdb")
    assert 0 < sum(sm.gaze is not None for sm in synthetic.plan({**TINY, "eye_contact": 0.5})) < len(photo)
    assert 0 < sum(sm.identity.eye_detail > 0 for sm in synthetic.plan({**TINY, "eye_detail": 0.5})) < len(photo)
    assert all(sm.identity.eye_detail == 0.0 for sm in detail if sm.dataset == "hpdb")
    by_identity = {}  # the views of one identity (name <subset>/<subset>_<identity>_<view>) share its eyes
    for sm in detail:
        if sm.dataset == "300W_LP":
            by_identity.setdefault(sm.name.rsplit("_", 1)[0], set()).add(sm.identity.eye_detail)
    views = sum(sm.dataset == "300W_LP" for sm in detail)
    assert all(len(v) == 1 for v in by_identity.values()) and len(by_identity) < views  # some identity has two views


def _sharpness(img) -> float:
    """benchmarks.image_cues.sharpness of an h x w x 3 float image."""
    from benchmarks.image_cues import sharpness  # noqa: PLC0415

    return float(sharpness(torch.tensor(np.asarray(img)).permute(2, 0, 1)[None]))


def test_eye_detail_draws_fine_strokes_in_the_eye_and_brow_band_only():
    """eye_detail paints lashes, brow hairs, creases and catchlights: the texture changes only between
    the brows' top and a little below the lower lids, where it gets sharper, and more so when stronger."""
    V = H._canonical()[0]
    uv = H._face_uv(V) * H.TEX
    idt = H.neutral_identity()
    plain, weak, strong = (H._face_texture(dataclasses.replace(idt, eye_detail=s), V) for s in (0.0, 0.4, 1.0))
    eyes = np.array(M.EYE_R + M.EYE_L)
    brows = np.array(M.BROW_R_UP + M.BROW_L_UP)
    top, bottom = uv[brows, 1].min() - 0.04 * H.TEX, uv[eyes, 1].max() + 0.05 * H.TEX
    changed = np.flatnonzero(np.any(plain != strong, axis=(1, 2)))
    assert changed.size > 0 and top <= changed.min() and changed.max() <= bottom
    band = slice(int(top), int(bottom) + 1)
    assert _sharpness(plain[band]) < _sharpness(weak[band]) < _sharpness(strong[band])
    assert _sharpness(strong[band]) > 1.3 * _sharpness(plain[band])


def test_closed_lips_meet_and_the_chin_rises_with_them():
    """mouth_open -1 turns the jaw up until the inner lips meet (the canonical face parts them);
    0 keeps the canonical face's lips, and the lower lip and chin move together."""
    V, _ = H._canonical()
    faces = {m: H._deform_face(dataclasses.replace(H.neutral_identity(), mouth_open=m), V) for m in (0.0, -0.5, -1.0)}
    gap = {m: F[14, 1] - F[13, 1] for m, F in faces.items()}
    assert gap[0.0] == pytest.approx(V[14, 1] - V[13, 1]) and gap[0.0] > 0.04
    assert gap[-1.0] == pytest.approx(0.0, abs=1e-9) and gap[-0.5] == pytest.approx(gap[0.0] / 2, rel=0.05)
    np.testing.assert_array_equal(faces[-1.0][13], faces[0.0][13])  # the upper lip stays
    assert faces[0.0][152, 1] - faces[-1.0][152, 1] == pytest.approx(gap[0.0], rel=0.1)  # the chin rises about as far


def test_camera_gaze_turns_the_irises_to_the_camera():
    assert H.camera_gaze(rotation_matrix(0, 0, 0)) == pytest.approx((0.0, 0.0))
    down, up = H.camera_gaze(rotation_matrix(0, -20, 0)), H.camera_gaze(rotation_matrix(0, 20, 0))
    # a head looking down (negative pitch) sees the camera above: its irises move up the texture (-y)
    assert down[0] == pytest.approx(0.0, abs=1e-9) and down[1] < 0 < up[1] and up[1] == pytest.approx(-down[1])
    assert down[1] == pytest.approx(H.EYEBALL_RADIUS * H.TEX / 1.9 * np.sin(np.radians(-20)) / 2)
    left, right = H.camera_gaze(rotation_matrix(-30, 0, 0)), H.camera_gaze(rotation_matrix(30, 0, 0))
    assert right[0] > 0 > left[0] and right[0] == pytest.approx(-left[0]) and right[1] == pytest.approx(0.0, abs=1e-9)
    # beyond the eyes' reach they stop at EYE_RANGE
    assert H.camera_gaze(rotation_matrix(80, 0, 0)) == pytest.approx(H.camera_gaze(rotation_matrix(0, 0, 0), (H.EYE_RANGE[0], 0)))
    assert H.camera_gaze(rotation_matrix(0, -60, 0))[1] == pytest.approx(H.camera_gaze(rotation_matrix(0, -H.EYE_RANGE[1], 0))[1])


def test_eye_contact_moves_only_the_irises_and_hair_volume_only_the_hair():
    idt = dataclasses.replace(H.neutral_identity(), hair="medium")
    head = H.build_head(idt)
    R = rotation_matrix(0, -20, 0)
    light = scene.sample_light(np.random.default_rng(0), "train")
    plain = H.render(head, R, (48, 52), 30, (96, 96), light)
    looking = H.render(H.with_gaze(head, H.camera_gaze(R)), R, (48, 52), 30, (96, 96), light)
    rows = np.flatnonzero(np.any(plain.rgb != looking.rgb, axis=(1, 2))) + plain.box[1]
    eyes = plain.lm68[1, 36:48]
    assert len(rows) and rows.min() >= eyes.min() - 3 and rows.max() <= eyes.max() + 3
    np.testing.assert_array_equal(plain.lm68, looking.lm68)
    thick = H.build_head(dataclasses.replace(idt, hair_volume=3.0))
    top = lambda h: min(p.verts[:, 1].min() for p in h.parts if p.material == H.HAIR)  # noqa: E731
    assert top(head) - top(thick) > 1.5 * H.HAIR_THICKNESS["medium"]  # higher by about twice the added thickness
    np.testing.assert_array_equal(head.lm68, thick.lm68)
    assert [p.verts.shape for p in head.parts if p.material != H.HAIR] == [p.verts.shape for p in thick.parts if p.material != H.HAIR]


def test_pose_distributions_and_extremes():
    rng = np.random.default_rng(0)
    train = np.array([scene.sample_pose(rng, "train") for _ in range(8000)])
    test = np.array([scene.sample_pose(rng, "test") for _ in range(8000)])
    beyond = lambda a: np.mean(np.any(np.abs(a) > 99, axis=1))  # noqa: E731
    assert 0.02 < beyond(train) < 0.03 and 0.01 < beyond(test) < 0.02
    assert np.abs(test[:, 0]).mean() < np.abs(train[:, 0]).mean() - 10  # the test set is more frontal
    assert np.abs(test[:, 0]).max() >= 89.9
    path = scene.biwi_trajectory(rng, 80)
    assert np.abs(np.diff(path, axis=0)).max() < 15  # smooth
    assert np.allclose(np.abs(path).max(axis=0) / [75, 60, 50], 0.925, atol=0.08)


def test_training_key_light_mostly_from_above():
    rng = np.random.default_rng(0)
    # light direction points from the head to the light; image y grows downwards, so above is -y
    elevation = lambda d: np.degrees(np.arcsin(-d[1]))  # noqa: E731
    train = np.array([elevation(scene.sample_light(rng, "train").direction) for _ in range(4000)])
    assert 0.6 < np.mean(train > 25) < 0.8  # the photographic prior, most key lights overhead
    assert np.mean(train > 70) > 0.1 and train.max() < 85.01  # up to steep overhead light
    assert train.min() > -30.01


def test_aflw_chin_stays_marked_on_heads_looking_down():
    """AFLW's annotators clicked the lowest visible point of the chin: a head looking down, whose
    menton slips just behind the chin's front, keeps a chin point on its chin instead of losing it
    (which would end the crop box at the mouth)."""
    for ypr in ((0, -35, 0), (10, -35, 0), (-20, -30, 10)):
        r = _landmarks(ypr)
        assert r.vis21[20], ypr
        chin, menton, mouth = r.lm21[:, 20], r.lm68[:, 8], r.lm21[:, 18]
        assert np.hypot(*(chin - menton)) < 2 and chin[1] > mouth[1] + 5, ypr
    front = _landmarks((0, 0, 0))
    assert front.vis21[20] and np.array_equal(front.lm21[:, 20], front.lm68[:, 8])  # a visible menton is the chin
