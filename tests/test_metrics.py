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
