import numpy as np
import pytest

from pipeline.core import angles


def test_bins_cover_minus99_to_99_in_3_degree_steps():
    assert angles.bin_index([-99.0, -96.01, -96.0, 0.0, 98.99]).tolist() == [0, 0, 1, 33, 65]
    assert angles.bin_index([-150, 150]).tolist() == [0, 65]  # clipped
    assert angles.BIN_ANGLES[0] == -99 and angles.BIN_ANGLES[-1] == 96 and len(angles.BIN_ANGLES) == 66


def test_filter_keeps_closed_interval():
    ypr = np.array([[99.0, 0, 0], [-99.0, 99.0, -99.0], [99.01, 0, 0], [0, 0, -120]])
    assert angles.within_limit(ypr).tolist() == [True, True, False, False]


def test_flip_negates_yaw_and_roll_only():
    assert angles.flip_pose([10.0, 20.0, -30.0]).tolist() == [-10.0, 20.0, 30.0]


def test_pose_para_order_is_pitch_yaw_roll_radians():
    para = np.array([[0.1, -0.2, 0.3, 1, 2, 3, 0.5]])
    np.testing.assert_allclose(angles.pose_para_to_ypr(para), np.degrees([-0.2, 0.1, 0.3]))
    np.testing.assert_allclose(angles.pose_para_to_ypr(angles.ypr_to_pose_para([5, -7, 9])), [5, -7, 9])


def test_biwi_euler_of_a_known_matrix():
    # A pure yaw of 30 deg about the camera's vertical axis, written out by hand.
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    yaw_only = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    np.testing.assert_allclose(angles.biwi_euler(yaw_only), [30, 0, 0], atol=1e-9)
    # A pure roll of 20 deg: BIWI's formula gives roll = -atan2(R10, R00) with R = M^T.
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    roll_only = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    np.testing.assert_allclose(angles.biwi_euler(roll_only), [0, 0, 20], atol=1e-9)
    # A pure pitch of 15 deg (face up) is a rotation of -15 deg about x.
    c, s = np.cos(np.radians(-15)), np.sin(np.radians(-15))
    pitch_only = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    np.testing.assert_allclose(angles.biwi_euler(pitch_only), [0, 15, 0], atol=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_biwi_euler_round_trips_rotation_matrix(seed):
    ypr = np.random.default_rng(seed).uniform([-89, -85, -85], [89, 85, 85], size=(50, 3))
    for a in ypr:
        m = angles.rotation_matrix(*a)
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(angles.biwi_euler(m), a, atol=1e-9)


def test_visual_convention_of_rotation_matrix():
    nose = np.array([0.0, 0.0, -1.0])  # towards the camera at zero pose; y points down
    assert (angles.rotation_matrix(30, 0, 0) @ nose)[0] < 0  # positive yaw: nose to image left
    assert (angles.rotation_matrix(0, 30, 0) @ nose)[1] < 0  # positive pitch: nose up
    assert (angles.rotation_matrix(0, 0, 30) @ np.array([1.0, 0, 0]))[1] > 0  # positive roll: clockwise


def test_rotation_maths_is_the_same_for_numpy_and_torch_batches():
    import torch

    ypr = np.random.default_rng(1).uniform(-80, 80, size=(20, 3))
    m_np = angles.rotation_matrix(ypr[:, 0], ypr[:, 1], ypr[:, 2])
    t = torch.tensor(ypr)
    m_t = angles.rotation_matrix(t[:, 0], t[:, 1], t[:, 2])
    assert m_np.shape == (20, 3, 3) and isinstance(m_t, torch.Tensor)
    np.testing.assert_allclose(m_t.numpy(), m_np, atol=1e-12)
    np.testing.assert_allclose(angles.biwi_euler(m_t).numpy(), ypr, atol=1e-9)
    np.testing.assert_allclose(angles.rotation_matrix(*ypr[0]), m_np[0], atol=1e-12)
