import numpy as np
import pytest
import scipy.io

from pipeline.core import angles
from pipeline.data import readers
from pipeline.data.calibration import project
from pipeline.core.errors import DataError
from tests.formats import CAL, write_biwi_frame, write_mat_sample, write_pose_txt


def test_300w_lp_reader_converts_order_units_and_filters(tmp_path):
    root = tmp_path / "300W_LP"
    write_mat_sample(root / "AFW", "AFW_1_0", [30.0, -10.0, 5.0])
    write_mat_sample(root / "AFW_Flip", "AFW_1_0", angles.flip_pose([30.0, -10.0, 5.0]))
    write_mat_sample(root / "HELEN", "HELEN_2_0", [105.0, 0.0, 0.0])  # beyond +-99: dropped
    (root / "landmarks").mkdir()  # real 300W-LP has it; pose work ignores it
    s = readers.read_300w_lp(root)
    assert (s.n_read, s.n_filtered, len(s.table)) == (3, 1, 2)
    t = s.table.set_index("sample_id")
    np.testing.assert_allclose(t.loc["AFW/AFW_1_0", ["yaw", "pitch", "roll"]].astype(float), [30, -10, 5], atol=1e-9)
    np.testing.assert_allclose(t.loc["AFW_Flip/AFW_1_0", ["yaw", "pitch", "roll"]].astype(float), [-30, -10, -5], atol=1e-9)
    assert t.loc["AFW/AFW_1_0", "group"] == t.loc["AFW_Flip/AFW_1_0", "group"]  # twins stay together
    assert t.loc["AFW/AFW_1_0", "sequence"] == "AFW"


def test_aflw2000_box_ignores_invisible_landmarks(tmp_path):
    pt2d = np.array([[10.0, 40.0, -1.0, 25.0], [12.0, 15.0, -1.0, 44.0]])
    write_mat_sample(tmp_path, "image00000", [0, 0, 0], pt2d=pt2d)
    row = readers.read_aflw2000(tmp_path).table.iloc[0]
    assert (row.x0, row.y0, row.x1, row.y1) == (10.0, 12.0, 40.0, 44.0)


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nope")):
        readers.read_aflw2000(tmp_path / "nope")


def test_mat_without_pose_para_is_a_clear_error(tmp_path):
    write_mat_sample(tmp_path, "image00007", [0, 0, 0], with_pose=False)
    with pytest.raises(DataError, match=r"image00007\.mat: no 'Pose_Para'"):
        readers.read_aflw2000(tmp_path)


def test_corrupt_mat_is_a_clear_error(tmp_path):
    write_mat_sample(tmp_path, "image00001", [0, 0, 0])
    (tmp_path / "image00001.mat").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"image00001\.mat: not a readable \.mat"):
        readers.read_aflw2000(tmp_path)


def test_image_missing_beside_label(tmp_path):
    write_mat_sample(tmp_path, "image00003", [0, 0, 0])
    (tmp_path / "image00003.jpg").unlink()
    with pytest.raises(DataError, match=r"image00003\.jpg: image missing"):
        readers.read_aflw2000(tmp_path)


def test_biwi_reader_angles_and_projected_centre(tmp_path):
    seq = tmp_path / "hpdb" / "01"
    ypr = [25.0, -12.0, 8.0]
    centre = np.array([30.0, -20.0, 900.0])
    write_biwi_frame(seq, 3, angles.rotation_matrix(*ypr), centre)
    write_biwi_frame(seq, 4, angles.rotation_matrix(0, 100, 0), centre)  # pitch beyond 99: dropped
    s = readers.read_biwi(tmp_path / "hpdb", box_mm=200)
    assert (s.n_read, s.n_filtered) == (2, 1)
    row = s.table.iloc[0]
    assert row.sample_id == "01/frame_00003" and row.sequence == "01"
    np.testing.assert_allclose([row.yaw, row.pitch, row.roll], ypr, atol=1e-4)
    np.testing.assert_allclose([row.cx, row.cy], project(centre, CAL), atol=1e-9)
    # RGB-frame depth is 900 (identity rotation, x-only translation): box side = f * 200 / 900.
    np.testing.assert_allclose(row.x1 - row.x0, CAL.K[0, 0] * 200 / 900, rtol=1e-9)


def test_biwi_reader_known_matrix_file(tmp_path):
    # A pose file written by hand: 30 deg yaw, head 1 m away.
    seq = tmp_path / "01"
    write_biwi_frame(seq, 0, np.eye(3), [0, 0, 1000])
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    (seq / "frame_00000_pose.txt").write_text(f"{c} 0 {s} \n0 1 0 \n{-s} 0 {c} \n\n0 0 1000 \n")
    row = readers.read_biwi(tmp_path, box_mm=200).table.iloc[0]
    np.testing.assert_allclose([row.yaw, row.pitch, row.roll], [30, 0, 0], atol=1e-6)


@pytest.mark.parametrize("text", ["1 0 0\n0 1 0\n\n0 0 900\n", "1 0 0\n0 1 0\n0 0 x\n\n0 0 900\n", "2 0 0\n0 1 0\n0 0 1\n\n0 0 900\n", ""])
def test_malformed_pose_txt_is_a_clear_error(tmp_path, text):
    seq = tmp_path / "01"
    write_biwi_frame(seq, 0, np.eye(3), [0, 0, 900])
    (seq / "frame_00000_pose.txt").write_text(text)
    with pytest.raises(DataError, match=r"frame_00000_pose\.txt: "):
        readers.read_biwi(tmp_path, box_mm=200)


def test_missing_calibration_is_named(tmp_path):
    seq = tmp_path / "02"
    write_biwi_frame(seq, 0, np.eye(3), [0, 0, 900])
    (seq / "rgb.cal").unlink()
    with pytest.raises(DataError, match=r"02/rgb\.cal: calibration file missing"):
        readers.read_biwi(tmp_path, box_mm=200)


def test_pose_txt_writer_matches_biwi_layout(tmp_path):
    write_pose_txt(tmp_path / "p.txt", np.eye(3), [1, 2, 3])
    lines = (tmp_path / "p.txt").read_text().splitlines()
    assert len(lines) == 5 and lines[3] == "" and lines[4].split() == ["1.000000", "2.000000", "3.000000"]


def test_mat_fixture_has_3ddfas_layout(tmp_path):
    """The .mat fixtures above are written as 3DDFA's files are: Pose_Para 1 x 7 (pitch, yaw, roll
    in radians first), pt2d 2 x N."""
    mat = scipy.io.loadmat(write_mat_sample(tmp_path, "image00001", [30, -10, 5]))
    assert mat["Pose_Para"].shape == (1, 7) and mat["pt2d"].shape == (2, 4)
    np.testing.assert_allclose(np.degrees(mat["Pose_Para"][0, :3]), [-10, 30, 5])


def test_face_proportions_reads_landmark_heights_and_keeps_near_frontal_faces(tmp_path):
    """benchmarks.face_proportions: nose ratio and heights in the landmark box, from pt3d_68."""
    from benchmarks.face_proportions import proportions

    box = np.array([[10.0, 50.0, 30.0], [10.0, 10.0, 60.0]])  # landmark box y from 10 to 60
    for i, pitch in enumerate([-30.0, -10.0, 0.0, 10.0, 30.0] * 2 + [0.0]):
        path = write_mat_sample(tmp_path, f"image{i:05d}", (80.0 if i == 10 else 5.0, pitch, 0.0), pt2d=box)  # one profile
        y = np.zeros(68)
        y[36:48], y[30], y[48:68] = 20.0, 30.0 + pitch / 10, 45.0
        mat = scipy.io.loadmat(path)
        scipy.io.savemat(path, {**{k: v for k, v in mat.items() if not k.startswith("__")}, "pt3d_68": np.stack([np.zeros(68), y, np.zeros(68)])})
    rows = proportions(tmp_path)
    assert len(rows) == 10  # the profile face is left out
    assert np.allclose(rows[:, 1], (10 + rows[:, 0] / 10) / 25) and np.allclose(rows[:, 2], 0.2) and np.allclose(rows[:, 3], 0.7)
    with pytest.raises(DataError, match="near-frontal"):
        proportions(tmp_path / "nothing")


def test_face_proportions_finds_the_pitch_turn_between_two_mean_faces():
    """benchmarks.face_proportions.pitch_misalignment: a face turned by 3 deg of pitch, moved and
    scaled, is found turned by 3 deg, with no residual; the jaw contour and nasion are ignored."""
    from benchmarks.face_proportions import pitch_misalignment

    rng = np.random.default_rng(1)
    synthetic = rng.normal(size=(3, 68))
    real = 1.3 * angles.rotation_matrix(0.0, 3.0, 0.0) @ synthetic + np.array([[0.2], [-0.1], [0.5]])
    real[:, :17] += rng.normal(size=(3, 17))  # a jaw contour defined differently does not count
    pitch, before, after = pitch_misalignment(real, synthetic)
    assert abs(pitch - 3.0) < 0.01 and after < 1e-3 < before
    assert abs(pitch_misalignment(real, angles.rotation_matrix(0.0, 3.0, 0.0) @ synthetic)[0]) < 0.01


def test_face_proportions_turns_landmarks_back_into_the_head_frame(tmp_path):
    """benchmarks.face_proportions.head_frame_shapes: a fixed 3D face written under several poses
    (z stored towards the camera) comes back as the same shape, in eye-mouth spans."""
    from benchmarks.face_proportions import head_frame_shapes

    rng = np.random.default_rng(0)
    face = rng.normal(size=(3, 68))
    face[1, 36:48], face[1, 48:68] = 0.0, 2.0  # eyes at y 0, mouth 2 below: span 2
    face[2, 30] = -3.0  # nose tip towards the camera
    for i, ypr in enumerate([(0, 0, 0), (30, -20, 10), (-35, 25, -15)] * 4):
        q = angles.rotation_matrix(*ypr) @ face * 7.0 + np.array([[100.0], [120.0], [0.0]])
        path = write_mat_sample(tmp_path, f"image{i:05d}", ypr)
        mat = scipy.io.loadmat(path)
        scipy.io.savemat(path, {**{k: v for k, v in mat.items() if not k.startswith("__")}, "pt3d_68": q * [[1], [1], [-1]]})
    shapes = head_frame_shapes(tmp_path)
    expected = (face - face[:, 36:48].mean(1, keepdims=True)) / 2.0
    assert shapes.shape == (12, 3, 68) and np.allclose(shapes, expected, atol=1e-4)
    assert np.isclose(shapes[0, 2, 30], (-3.0 - face[2, 36:48].mean()) / 2.0, atol=1e-4)
