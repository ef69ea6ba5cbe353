"""Batches from a crop store: the centre crop at test time, random crops and flips for training
(yaw and roll negated, the head centre moved with the crop), and the validation split."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.data.batches import batches, make_batch, validation_mask
from pipeline.data.store import Store

SIDE = 12


@pytest.fixture
def store() -> Store:
    """Four 12 x 12 crops whose pixel (y, x) holds (sample, y, x), with known poses and centres."""
    n = 4
    ys, xs = np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")
    images = np.stack([np.stack([np.full_like(ys, i), ys, xs], axis=-1) for i in range(n)]).astype(np.uint8)
    labels = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "yaw": [10.0, -20.0, 30.0, 0.0], "pitch": [5.0, 6.0, 7.0, 8.0],
                           "roll": [-3.0, 4.0, 0.0, 9.0], "sequence": "", "group": [str(i) for i in range(n)],
                           "cx": [6.0, 5.0, 4.0, 7.5], "cy": [6.0, 3.0, 8.0, 2.0]})
    return Store(path=None, images=images, labels=labels, meta={})


def _origin(images, i):
    """(x, y) in the stored crop of the top-left pixel of batch image i, and whether it is mirrored."""
    px = (images[i].permute(1, 2, 0).numpy() * 255).round().astype(int)
    x0, x_last = px[0, 0, 2], px[0, -1, 2]
    return (min(x0, x_last), px[0, 0, 1]), x0 > x_last


def test_centre_crop_without_rng(store):
    images, targets = make_batch(store, np.array([2, 0]), (8, 6))  # width 8, height 6 of a 12 x 12 store
    assert tuple(images.shape) == (2, 3, 6, 8) and images.dtype.is_floating_point and float(images.max()) <= 1
    for i, sample in enumerate((2, 0)):
        assert _origin(images, i) == ((2, 3), False)
        assert int(round(float(images[i, 0, 0, 0]) * 255)) == sample
    np.testing.assert_allclose(targets["ypr"].numpy(), store.ypr[[2, 0]])
    np.testing.assert_allclose(targets["centre"].numpy(), [[4 - 2, 8 - 3], [6 - 2, 6 - 3]])


def test_random_crops_move_the_centre_and_flips_negate_yaw_and_roll(store):
    rng = np.random.default_rng(5)
    seen_flip, seen_plain, offsets = 0, 0, set()
    for _ in range(30):
        idx = np.array([0, 1, 2, 3])
        images, targets = make_batch(store, idx, (8, 8), rng)
        for i, sample in enumerate(idx):
            (ox, oy), flipped = _origin(images, i)
            offsets.add((ox, oy))
            assert 0 <= ox <= SIDE - 8 and 0 <= oy <= SIDE - 8
            yaw, pitch, roll = targets["ypr"][i].tolist()
            true = store.ypr[sample]
            cx, cy = store.labels.loc[sample, ["cx", "cy"]]
            if flipped:
                seen_flip += 1
                assert (yaw, pitch, roll) == pytest.approx((-true[0], true[1], -true[2]))
                assert targets["centre"][i].tolist() == pytest.approx([8 - 1 - (cx - ox), cy - oy])
            else:
                seen_plain += 1
                assert (yaw, pitch, roll) == pytest.approx(tuple(true))
                assert targets["centre"][i].tolist() == pytest.approx([cx - ox, cy - oy])
    assert seen_flip > 20 and seen_plain > 20 and len(offsets) > 10  # both kinds, many offsets


def test_same_seed_same_batch(store):
    a = make_batch(store, np.array([3, 1]), (8, 8), np.random.default_rng(0))
    b = make_batch(store, np.array([3, 1]), (8, 8), np.random.default_rng(0))
    assert (a[0] == b[0]).all() and (a[1]["ypr"] == b[1]["ypr"]).all()


def test_index_batches_cover_every_sample_once():
    order = np.concatenate(list(batches(10, 4, np.random.default_rng(1))))
    assert sorted(order) == list(range(10)) and [len(b) for b in batches(10, 4)] == [4, 4, 2]


def test_validation_mask_holds_out_whole_groups_by_a_seeded_hash():
    groups = [f"g{i // 2}" for i in range(40)]  # 20 groups of two samples (a sample and its flip twin)
    mask = validation_mask(groups, 0.25, seed=3)
    held = {g for g, m in zip(groups, mask) if m}
    assert len(held) == 5 and all(mask[i] == (groups[i] in held) for i in range(40))
    assert (mask == validation_mask(list(reversed(groups)), 0.25, seed=3)[::-1]).all()  # order does not matter
    assert held != {g for g, m in zip(groups, validation_mask(groups, 0.25, seed=4)) if m}


def test_validation_mask_keeps_one_group_on_each_side():
    assert validation_mask(["a", "a", "b"], 0.01, seed=0).sum() in (1, 2)  # at least one group held out
    assert not validation_mask(["a", "b", "c"], 0.99, seed=0).all()  # at least one group left to train on
    assert not validation_mask(["a", "b"], 0.0, seed=0).any() and not validation_mask(["a"], 0.5, seed=0).any()
