import numpy as np
import pytest

from pipeline.core.metrics import criterion_1, criterion_2, criterion_3

TRUE = np.array([[0.0, 0.0, 0.0], [50.0, -20.0, 5.0], [-95.0, 10.0, -30.0], [15.0, 0.0, 0.0]])
PRED = np.array([[2.0, -1.0, 0.0], [40.0, -20.0, 8.0], [-85.0, 10.0, -30.0], [15.0, 4.0, 1.0]])


def test_criterion_1_is_plain_absolute_error():
    m = criterion_1(PRED, TRUE)
    assert m["yaw"] == pytest.approx((2 + 10 + 10 + 0) / 4)
    assert m["pitch"] == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert m["roll"] == pytest.approx((0 + 3 + 0 + 1) / 4)
    assert m["mae"] == pytest.approx((m["yaw"] + m["pitch"] + m["roll"]) / 3) and m["n"] == 4
    # no +-180 wrap-around: 179 vs -179 is an error of 358 degrees
    assert criterion_1([[179.0, 0, 0]], [[-179.0, 0, 0]])["yaw"] == pytest.approx(358)


def test_criterion_2_counts_samples_with_all_three_errors_below_threshold():
    c = criterion_2(PRED, TRUE, thresholds=(1.0, 2.5, 5.0, 10.0, 10.5))
    # worst errors per sample: 2, 10, 10, 4
    assert c["share"] == [0.0, 0.25, 0.5, 0.5, 1.0]


def test_criterion_3_groups_by_absolute_true_angle():
    rows = {(r["angle"], r["lo"]): r for r in criterion_3(PRED, TRUE, edges=(0, 10, 60, 99))}
    assert rows[("yaw", 0)]["n"] == 1 and rows[("yaw", 0)]["mae"] == pytest.approx(2)
    assert rows[("yaw", 10)]["n"] == 2 and rows[("yaw", 10)]["mae"] == pytest.approx(5)
    assert rows[("yaw", 60)]["n"] == 1 and rows[("yaw", 60)]["mae"] == pytest.approx(10)  # |-95| in [60, 99]
    assert rows[("pitch", 60)]["n"] == 0 and rows[("pitch", 60)]["mae"] is None
    assert sum(rows[("roll", lo)]["share"] for lo in (0, 10, 60)) == pytest.approx(1)


def test_signed_errors_by_yaw_keep_the_sign_and_group_by_signed_yaw():
    from pipeline.core.metrics import signed_errors_by_yaw

    rows = {r["lo"]: r for r in signed_errors_by_yaw(PRED, TRUE, edges=(-99, -30, 30, 99))}
    assert rows[-99]["n"] == 1 and rows[-99]["yaw"] == pytest.approx(10) and rows[-99]["pitch"] == pytest.approx(0)
    # yaw 0 and 15: pitch errors -1 and +4 average to +1.5, not to the absolute 2.5
    assert rows[-30]["n"] == 2 and rows[-30]["pitch"] == pytest.approx(1.5) and rows[-30]["roll"] == pytest.approx(0.5)
    assert rows[30]["n"] == 1 and rows[30]["yaw"] == pytest.approx(-10) and rows[30]["roll"] == pytest.approx(3)
    empty = signed_errors_by_yaw(PRED, TRUE, edges=(-99, -98, 99))[0]
    assert empty["n"] == 0 and empty["pitch"] is None


def test_linear_fit_finds_offset_slope_and_correlation():
    from pipeline.core.metrics import linear_fit

    rng = np.random.default_rng(0)
    true = rng.uniform(-60, 60, (200, 3))
    pred = true.copy()
    pred[:, 1] = 5.0 + 0.7 * true[:, 1]  # a pitch offset and under-reading, no noise
    pred[:, 2] = rng.uniform(-60, 60, 200)  # roll unrelated to the truth
    fit = linear_fit(pred, true)
    assert fit["yaw"] == pytest.approx({"intercept": 0.0, "slope": 1.0, "r": 1.0}, abs=1e-9)
    assert fit["pitch"] == pytest.approx({"intercept": 5.0, "slope": 0.7, "r": 1.0}, abs=1e-9)
    assert abs(fit["roll"]["r"]) < 0.2 and abs(fit["roll"]["slope"]) < 0.2
    assert linear_fit(pred[:1], true[:1])["yaw"] is None
