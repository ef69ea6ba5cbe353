"""Batches from a crop store: the centre crop at test time, random crops and flips for training
(yaw and roll negated, the head centre moved with the crop), and the validation split."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.core import angles
from pipeline.data.batches import batches, make_batch, to_unit_float, validation_mask
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
    px = images[i].permute(1, 2, 0).numpy().astype(int)
    x0, x_last = px[0, 0, 2], px[0, -1, 2]
    return (min(x0, x_last), px[0, 0, 1]), x0 > x_last


def test_centre_crop_without_rng(store):
    images, targets = make_batch(store, np.array([2, 0]), (8, 6))  # width 8, height 6 of a 12 x 12 store
    assert tuple(images.shape) == (2, 3, 6, 8) and images.dtype == torch.uint8
    floats = to_unit_float(images)
    assert floats.dtype == torch.float32 and float(floats.max()) <= 1 and torch.equal(floats * 255, images.float())
    for i, sample in enumerate((2, 0)):
        assert _origin(images, i) == ((2, 3), False)
        assert int(images[i, 0, 0, 0]) == sample
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


def reference_make_batch(store, idx, size, rng=None):
    """make_batch as it was before batches were cut in a background thread and made float on the
    device: the new path must give these batches bit for bit."""
    idx = np.asarray(idx)
    w, h = size
    order = np.argsort(idx)
    raw = np.empty((len(idx),) + store.images.shape[1:], np.uint8)
    raw[order] = store.images[idx[order]]
    margin = np.array([raw.shape[2] - w, raw.shape[1] - h])
    ypr = store.labels[["yaw", "pitch", "roll"]].to_numpy(np.float32)[idx].copy()
    centre = store.labels[["cx", "cy"]].to_numpy(np.float32)[idx]
    if rng is None:
        off = np.tile(margin // 2, (len(idx), 1))
        flip = np.zeros(len(idx), bool)
    else:
        off = np.stack([rng.integers(0, margin[0] + 1, len(idx)), rng.integers(0, margin[1] + 1, len(idx))], axis=1)
        flip = rng.random(len(idx)) < 0.5
    out = np.empty((len(idx), h, w, 3), np.uint8)
    for i, (ox, oy) in enumerate(off):
        crop = raw[i, oy : oy + h, ox : ox + w]
        out[i] = crop[:, ::-1] if flip[i] else crop
    centre = centre - off.astype(np.float32)
    centre[flip, 0] = w - 1 - centre[flip, 0]
    ypr[flip] = angles.flip_pose(ypr[flip])
    images = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
    return images, {"ypr": torch.from_numpy(ypr.astype(np.float32)), "centre": torch.from_numpy(centre)}


@pytest.mark.parametrize("prefetch, threads", [(0, 1), (2, 1), (0, 3), (2, 2)])
def test_loader_gives_the_reference_batches_bit_for_bit(prefetch, threads):
    """A training epoch's batches through the loader (planned in order, cut by one or several
    threads, in the loop or ahead in a background thread, made float on the device) equal the old
    in-loop make_batch's with the same seed."""
    from pipeline.data.batches import plan_batch
    from pipeline.engine.loader import Loader

    rng = np.random.default_rng(0)
    n = 40
    labels = pd.DataFrame({"yaw": rng.uniform(-90, 90, n), "pitch": rng.uniform(-40, 40, n), "roll": rng.uniform(-30, 30, n),
                           "cx": rng.uniform(20, 40, n), "cy": rng.uniform(20, 40, n)})
    store = Store(path=None, images=rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8), labels=labels, meta={})
    old_rng, new_rng = np.random.default_rng(7), np.random.default_rng(7)
    old = [reference_make_batch(store, b, (48, 40), old_rng) for b in batches(n, 16, old_rng)]
    plans = [plan_batch(store, b, (48, 40), new_rng) for b in batches(n, 16, new_rng)]
    new = list(Loader(store, plans, torch.device("cpu"), prefetch=prefetch, threads=threads))
    assert len(old) == len(new) == 3
    for (a, ta), (b, tb) in zip(old, new):
        assert torch.equal(a, b) and a.stride() == b.stride()
        assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_cut_batch_at_the_edges_of_the_store_image():
    """Crops touching either side of the stored image, mirrored or not, are the reference's."""
    from pipeline.data.batches import BatchPlan, cut_batch

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 12, 10, 3), dtype=np.uint8)
    store = Store(path=None, images=images, labels=pd.DataFrame({"yaw": [0.0, 0.0]}), meta={})
    for (ox, oy), flip in itertools.product([(0, 0), (4, 5), (2, 1)], [False, True]):
        plan = BatchPlan(np.array([1, 0]), np.array([[ox, oy], [ox, oy]]), np.array([flip, flip]), (6, 7))
        want = images[[1, 0], oy : oy + 7, ox : ox + 6]
        assert np.array_equal(cut_batch(store, plan), want[:, :, ::-1] if flip else want)


def test_prefetch_auto_is_two_on_cuda_and_none_on_the_cpu():
    from pipeline.engine.loader import prefetch_for

    assert prefetch_for("auto", torch.device("cuda")) == 2 and prefetch_for("auto", torch.device("cpu")) == 0
    assert prefetch_for(3, torch.device("cpu")) == 3


def test_loader_raises_what_the_background_thread_raised():
    from pipeline.data.batches import plan_batch
    from pipeline.engine.loader import Loader

    store = Store(path=None, images=np.zeros((4, 8, 8, 3), np.uint8), labels=pd.DataFrame({"yaw": [0.0] * 4, "pitch": 0.0, "roll": 0.0,
                                                                                           "cx": 4.0, "cy": 4.0}), meta={})
    plans = [plan_batch(store, np.array([0, 1]), (8, 8)), plan_batch(store, np.array([2, 9]), (8, 8))]  # sample 9 does not exist
    with pytest.raises(IndexError):
        list(Loader(store, plans, torch.device("cpu"), prefetch=2))


def test_augmentation_is_drawn_at_planning_and_repeatable():
    """Photometric augmentation changes pixels only (labels and crops untouched), draws its
    randomness when a batch is planned (same seed, same batch) and keeps images in [0, 1]."""
    from pipeline.config.params import Augment
    from pipeline.data.batches import plan_batch
    from pipeline.engine.loader import Loader

    cfg = Augment(brightness=0.4, contrast=0.4, saturation=0.4, grey=0.5, blur=0.5, blur_sigma=1.5, noise=0.5, noise_std=0.05,
                  erase=0.5, erase_area=(0.05, 0.2), random_conv=0.5)
    rng = np.random.default_rng(0)
    n = 16
    labels = pd.DataFrame({"yaw": rng.uniform(-90, 90, n), "pitch": 0.0, "roll": 0.0, "cx": 16.0, "cy": 16.0})
    store = Store(path=None, images=rng.integers(0, 256, (n, 40, 40, 3), dtype=np.uint8), labels=labels, meta={})
    idx = np.arange(n)

    def batch(augmentation):
        plan = plan_batch(store, idx, (32, 32), np.random.default_rng(3), augmentation)
        return next(iter(Loader(store, [plan], torch.device("cpu"), prefetch=0)))

    plain, augmented, again = batch(None), batch(cfg), batch(cfg)
    assert torch.equal(augmented[0], again[0]) and not torch.equal(augmented[0], plain[0])
    assert all(torch.equal(augmented[1][k], plain[1][k]) for k in plain[1])  # same crops, flips and labels
    assert float(augmented[0].min()) >= 0 and float(augmented[0].max()) <= 1
    grey = (augmented[0][:, 0] == augmented[0][:, 1]).flatten(1).all(1) & (augmented[0][:, 1] == augmented[0][:, 2]).flatten(1).all(1)
    assert 0 < int(grey.sum()) < n  # some samples grey, not all


def test_random_convolution_mixes_colours_keeps_shapes_and_means():
    """RandConv: a 1 x 1 kernel is one random 3 x 3 colour matrix at every pixel, about the channel
    means; a larger kernel leaves flat regions flat (it changes texture, not shape); keep = 1 is the
    image itself; each image has its own filter from its own generator, whatever else is in the batch."""
    from pipeline.data.augment import random_conv

    def seeded(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    rng = np.random.default_rng(0)
    image = torch.as_tensor(rng.uniform(0, 1, (1, 3, 12, 10)), dtype=torch.float32)
    out = random_conv(image, [1], [0.0], seeded(5))
    weight = torch.randn((3, 3, 1, 1), generator=torch.Generator().manual_seed(5)) * np.sqrt(2 / 3)
    mean = image.mean((2, 3), keepdim=True)
    assert torch.allclose(out, torch.einsum("oi,nihw->nohw", weight[:, :, 0, 0], image - mean) + mean, atol=1e-6)
    assert torch.allclose(out.mean((2, 3)), image.mean((2, 3)), atol=1e-6)
    assert torch.allclose(random_conv(image, [5], [1.0], seeded(1)), image, atol=1e-7)
    two = torch.cat([image, image.flip(-1)])
    both = random_conv(two, [5, 3], [0.3, 0.6], seeded(1, 2))  # one batch, two kernel sides
    assert torch.allclose(both[:1], random_conv(image, [5], [0.3], seeded(1)), atol=1e-6)
    assert torch.allclose(both[1:], random_conv(image.flip(-1), [3], [0.6], seeded(2)), atol=1e-6)

    halves = torch.zeros((1, 3, 12, 12))
    halves[..., 6:] = torch.tensor([0.9, 0.5, 0.1]).view(1, 3, 1, 1)  # left half black, right half orange
    out = random_conv(halves, [5], [0.0], seeded(2))
    left, right = out[..., :4], out[..., 8:]  # more than the kernel's radius (2) from the edge
    assert torch.allclose(left, left[..., :1, :1].expand_as(left), atol=1e-6)
    assert torch.allclose(right, right[..., :1, :1].expand_as(right), atol=1e-6)
    assert not torch.allclose(out[..., 4:8], left[..., :1, :1].expand(1, 3, 12, 4), atol=1e-3)  # the edge stays an edge


def test_random_convolution_is_drawn_for_its_share_of_samples():
    """`random_conv: p` convolves about that share of a batch, each sample with a kernel size of
    `random_conv_sizes`; the others are left as they were; off, it draws nothing from the batch's
    generator (the batches of configurations without it do not change)."""
    from pipeline.config.params import Augment
    from pipeline.data import augment

    rng = np.random.default_rng(7)
    d = augment.draw(rng, 400, Augment(random_conv=0.5, random_conv_sizes=(3, 7)))
    assert 150 < int((d.conv > 0).sum()) < 250 and set(np.unique(d.conv)) == {0, 3, 7}
    assert float(d.keep.min()) >= 0 and float(d.keep.max()) <= 1
    off, reference = np.random.default_rng(7), np.random.default_rng(7)
    assert augment.draw(off, 400, Augment()).conv is None
    augment.draw(reference, 400, Augment(random_conv=0.5))
    assert off.random() != reference.random()  # the draws with it consumed more of the generator
    images = torch.as_tensor(np.random.default_rng(1).uniform(0, 1, (8, 3, 16, 16)), dtype=torch.float32)
    d = augment.draw(np.random.default_rng(3), 8, Augment(random_conv=0.5))
    out = augment.apply(images, d)
    changed = (out - images).abs().flatten(1).amax(1) > 1e-3
    assert changed.tolist() == (d.conv > 0).tolist() and 0 < int(changed.sum()) < 8


class _SideProbe(torch.nn.Module):
    """Reads its angles off the batch: yaw and roll from how much brighter the left half is than the
    right (a mirror negates that), pitch from the top row, each plus a constant bias."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        return images

    @staticmethod
    def predict(images):
        half = images.shape[-1] // 2
        side = images[..., :half].mean((1, 2, 3)) - images[..., -half:].mean((1, 2, 3))
        return torch.stack([1000 * side + 10, 100 * images[:, :, 0].mean((1, 2)) + 3, 500 * side - 4], 1)


def test_predict_with_flip_averages_the_mirror_back(store):
    from pipeline.engine.inference import predict  # noqa: PLC0415

    idx = np.arange(len(store))
    plain = predict(_SideProbe(), store, idx, (8, 6))
    flipped = predict(_SideProbe(), store, idx, (8, 6), flip=True)
    assert plain.shape == flipped.shape == (4, 3)
    assert np.all(np.abs(plain[:, 0] - 10) > 1)  # the probe does read the left-right difference
    # the mirror's yaw and roll, negated back, cancel the constant biases and keep what turns with the image
    np.testing.assert_allclose(flipped[:, 0], plain[:, 0] - 10, atol=1e-4)
    np.testing.assert_allclose(flipped[:, 2], plain[:, 2] + 4, atol=1e-4)
    np.testing.assert_allclose(flipped[:, 1], plain[:, 1], atol=1e-4)  # pitch does not turn with a mirror


def test_predict_reads_pitch_from_the_coarser_view_only(store):
    """With pitch_view, yaw and roll are the plain (or flip-averaged) readings and pitch is what the
    model reads off the image resampled to that width and back, flip or not."""
    from pipeline.data.augment import resample  # noqa: PLC0415
    from pipeline.engine.inference import predict  # noqa: PLC0415

    idx = np.arange(len(store))
    coarse_only = predict(_SideProbe(), store, idx, (8, 6), perturb=lambda x: resample(x, 4))
    for flip in (False, True):
        plain = predict(_SideProbe(), store, idx, (8, 6), flip=flip)
        viewed = predict(_SideProbe(), store, idx, (8, 6), flip=flip, pitch_view=4)
        np.testing.assert_allclose(viewed[:, [0, 2]], plain[:, [0, 2]], atol=1e-5)
        np.testing.assert_allclose(viewed[:, 1], coarse_only[:, 1], atol=1e-4)
    assert np.abs(coarse_only[:, 1] - plain[:, 1]).max() > 0.01  # the top row does change when resampled


def test_resample_keeps_coarse_structure_and_drops_fine_detail():
    """resample(x, w): a one-pixel checkerboard comes back flat at its mean; a smooth left-right ramp
    comes back nearly as it was; the size never changes, and the full width is (almost) the identity."""
    from pipeline.data.augment import resample  # noqa: PLC0415

    checker = torch.as_tensor((np.indices((24, 24)).sum(0) % 2).astype(np.float32)).expand(1, 3, 24, 24)
    out = resample(checker, 12)
    assert out.shape == checker.shape
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=0.02)  # within 0.02 of grey (0.5 +- 0.5 before)
    ramp = torch.linspace(0, 1, 24).expand(1, 3, 24, 24)
    assert float((resample(ramp, 12) - ramp)[..., 2:-2].abs().max()) < 0.01  # away from the edges
    assert torch.allclose(resample(checker, 24), checker, atol=1e-5)


def test_sharpening_matches_torchvision_per_sample_and_draws_nothing_when_off():
    """`sharpen: p` gives about that share of a batch a factor in [1, sharpen_max], and each image comes
    out as torchvision's adjust_sharpness with its own factor would give it; the rest stay as they
    were, and off it draws nothing (older configurations keep their batches)."""
    from torchvision.transforms.v2.functional import adjust_sharpness  # noqa: PLC0415

    from pipeline.config.params import Augment  # noqa: PLC0415
    from pipeline.data import augment  # noqa: PLC0415

    d = augment.draw(np.random.default_rng(7), 400, Augment(sharpen=0.5, sharpen_max=2.5))
    sharp = d.sharpness > 1
    assert 150 < int(sharp.sum()) < 250 and float(d.sharpness.max()) <= 2.5
    off, reference = np.random.default_rng(7), np.random.default_rng(7)
    assert augment.draw(off, 400, Augment()).sharpness is None
    augment.draw(reference, 400, Augment(sharpen=0.5))
    assert off.random() != reference.random()
    images = torch.rand(8, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    before = images.clone()
    d = augment.draw(np.random.default_rng(3), 8, Augment(sharpen=0.5))
    out = augment.apply(images, d)
    for i in range(8):
        torch.testing.assert_close(out[i], adjust_sharpness(before[i], float(d.sharpness[i])), atol=1e-5, rtol=0)
    changed = (out - before).abs().flatten(1).amax(1) > 1e-4
    assert changed.tolist() == (d.sharpness > 1).tolist() and 0 < int(changed.sum()) < 8
    assert torch.equal(images, before)  # the input batch is not written to


def test_resolution_augmentation_coarsens_its_share_and_nothing_else():
    """`resolution: p` resamples about that share of a batch to a side in [resolution_min, 1] of its
    own and leaves the rest untouched; off, it draws nothing (older configurations keep their batches)."""
    from pipeline.config.params import Augment  # noqa: PLC0415
    from pipeline.data import augment  # noqa: PLC0415

    d = augment.draw(np.random.default_rng(7), 400, Augment(resolution=0.5, resolution_min=0.4))
    coarse = d.scale < 1
    assert 150 < int(coarse.sum()) < 250 and float(d.scale.min()) >= 0.4
    off, reference = np.random.default_rng(7), np.random.default_rng(7)
    assert augment.draw(off, 400, Augment()).scale is None
    augment.draw(reference, 400, Augment(resolution=0.5))
    assert off.random() != reference.random()
    images = torch.as_tensor((np.indices((16, 16)).sum(0) % 2).astype(np.float32)).expand(8, 3, 16, 16).clone()
    d = augment.draw(np.random.default_rng(3), 8, Augment(resolution=0.5, resolution_min=0.5))
    out = augment.apply(images, d)
    changed = (out - images).abs().flatten(1).amax(1) > 1e-3
    assert changed.tolist() == (np.round(16 * d.scale) < 16).tolist() and 0 < int(changed.sum()) < 8
    assert torch.equal(images, torch.as_tensor((np.indices((16, 16)).sum(0) % 2).astype(np.float32)).expand(8, 3, 16, 16))
