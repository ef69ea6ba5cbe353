"""benchmarks.image_cues: the occlusion test of which crop regions move a model's angles."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmarks.image_cues import (batchnorm_errors, coarsen_boxes, coarser, cue_shifts, mean_crops, near_frontal, renormalised, resampling,
                                   resolution_errors, sharpness)
from pipeline.data.store import LABEL_COLUMNS, Store

SIDE = 20


class BottomReader(torch.nn.Module):
    """Reads pitch as 100 x the mean brightness of the crop's bottom fifth; yaw and roll 0."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        return images

    def predict(self, images):
        bottom = images[..., 4 * SIDE // 5:, :].mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(bottom), 100 * bottom, torch.zeros_like(bottom)], 1)


def store(pitches, yaw=0.0) -> Store:
    images = np.zeros((len(pitches), SIDE, SIDE, 3), np.uint8)
    images[:, 4 * SIDE // 5:] = 255  # a white bottom fifth on black
    labels = pd.DataFrame(0.0, index=range(len(pitches)), columns=LABEL_COLUMNS)
    labels["pitch"], labels["yaw"] = pitches, yaw
    return Store(path=Path("<memory>"), images=images, labels=labels, meta={})


def test_masking_a_region_shifts_only_what_the_model_reads_there():
    s = store([0.0, 10.0])
    shifts = cue_shifts(BottomReader(), s, [0, 1], (SIDE, SIDE), precision="fp32")
    # unmasked: bottom mean 1 -> pitch 100 against labels 0 and 10
    np.testing.assert_allclose(shifts["error"], [0, 95, 0], atol=1e-3)
    # the image's mean colour is 0.2: masked, the bottom band is 0.2 -> pitch 20, so it pushed 80
    np.testing.assert_allclose(shifts["bottom 0.8-1 (chin, neck)"], [0, 80, 0], atol=1e-3)
    np.testing.assert_allclose(shifts["top 0-0.2 (crown, hair)"], [0, 0, 0], atol=1e-3)
    # sides: 3 + 3 of 20 columns of the bottom band become 0.2 -> mean 0.76
    np.testing.assert_allclose(shifts["sides (outer 0.15)"], [0, 24, 0], atol=1e-3)
    # blank: every pixel 0.2 -> pitch 20, so the crop as it is pushed 80
    np.testing.assert_allclose(shifts["all (a blank crop)"], [0, 80, 0], atol=1e-3)


def test_near_frontal_keeps_small_angles_and_mean_crops_writes_a_grid(tmp_path):
    s = store([-20.0, 0.0, 20.0, 50.0])
    assert list(near_frontal(s)) == [0, 1, 2]
    assert list(near_frontal(store([0.0], yaw=40.0))) == []
    path = mean_crops([s, s], tmp_path / "cues.png")
    assert Image.open(path).size == (2 * 2 * SIDE, 2 * 3 * SIDE)


def test_coarser_removes_fine_detail_and_sharpness_sees_it():
    board = torch.zeros(1, 3, 8, 8)
    board[..., ::2, ::2] = board[..., 1::2, 1::2] = 1.0  # one-pixel checkerboard
    flat = coarser(2)(board)
    np.testing.assert_allclose(flat.numpy(), 0.5, atol=1e-6)
    assert sharpness(board).item() > 1.0
    assert sharpness(flat).item() == 0.0
    torch.testing.assert_close(coarser(1)(board), board)


def test_resolution_errors_read_the_crops_coarser():
    s = store([0.0, 10.0])
    out, median_sharpness = resolution_errors(BottomReader(), s, [0, 1], (SIDE, SIDE), factors=(4,), precision="fp32")
    assert list(out) == ["error", "coarser x4"]
    np.testing.assert_allclose(out["error"], [0, 95, 0], atol=1e-3)
    # 20 px -> 5 px keeps the white band as the last row; back at 20 px the band's rows read
    # 0.625, 0.875, 1, 1 (bilinear from the row above): mean 0.875 -> pitch 87.5 against labels 0 and 10
    np.testing.assert_allclose(out["coarser x4"], [0, 82.5, 0], atol=1e-3)
    x = torch.from_numpy(s.images[:1]).permute(0, 3, 1, 2).float() / 255
    assert median_sharpness == pytest.approx(sharpness(x).item(), rel=1e-5)
    assert sharpness(coarser(4)(x)).item() < median_sharpness


def test_resampling_is_source_pixels_per_crop_pixel():
    s = store([0.0, 0.0, 0.0])
    s.labels["bx1"] = [40.0, 60.0, 10.0]  # crop sides in the source image; stored at 20 px
    assert resampling(s, [0, 1, 2]) == 2.0
    assert resampling(s, [2]) == 0.5


def test_coarsening_a_region_changes_only_its_pixels_to_the_resampled_ones():
    """coarsen_boxes: inside the box, the pixels of the image resampled to the width and back;
    outside, the image untouched; cue_shifts with it measures what the region's fine detail pushed."""
    from pipeline.data.augment import resample  # noqa: PLC0415

    rng = np.random.default_rng(0)
    images = torch.as_tensor(rng.uniform(0, 1, (2, 3, SIDE, SIDE)), dtype=torch.float32)
    out = coarsen_boxes([(0.8, 1.0, 0.0, 1.0)], 10)(images)
    torch.testing.assert_close(out[..., 16:, :], resample(images, 10)[..., 16:, :].clamp(0, 1))
    torch.testing.assert_close(out[..., :16, :], images[..., :16, :])
    s = store([0.0, 0.0])  # a white bottom fifth on black: resampled, its top edge blurs into the black above
    shifts = cue_shifts(BottomReader(), s, [0, 1], (SIDE, SIDE), {"bottom": ((0.8, 1.0, 0.0, 1.0),), "top": ((0.0, 0.2, 0.0, 1.0),)},
                        precision="fp32", change=lambda boxes: coarsen_boxes(boxes, 10))
    blurred = 100 * float(resample(torch.as_tensor(s.images[:1]).permute(0, 3, 1, 2).float() / 255, 10)[..., 16:, :].mean())
    np.testing.assert_allclose(shifts["bottom"], [0, 100 - blurred, 0], atol=1e-3)
    assert 100 - blurred > 1  # the edge did lose brightness
    np.testing.assert_allclose(shifts["top"], [0, 0, 0], atol=1e-3)


class NormReader(torch.nn.Module):
    """Reads pitch as 100 x the mean of the crop after two BatchNorm layers (no affine); yaw and roll 0."""

    def __init__(self):
        super().__init__()
        self.first, self.second = torch.nn.BatchNorm2d(3, affine=False), torch.nn.BatchNorm2d(3, affine=False)
        self.unused = torch.nn.Parameter(torch.zeros(1))  # predict() finds the device through the parameters

    def forward(self, images):
        return self.second(self.first(images))

    def predict(self, out):
        mean = out.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(mean), 100 * mean, torch.zeros_like(mean)], 1)


def test_renormalised_estimates_the_first_layers_statistics_from_the_crops_only():
    s = store([0.0, 10.0])  # every crop: black with a white bottom fifth, mean 0.2 in each channel
    model = NormReader().eval()
    for layer in (model.first, model.second):  # "as trained": statistics no estimate gives here
        layer.running_mean.fill_(5.0)
    half = renormalised(model, s, [0, 1], (SIDE, SIDE), share=0.5, precision="fp32")
    torch.testing.assert_close(half.first.running_mean, torch.full((3,), 0.2))
    torch.testing.assert_close(half.first.running_var, torch.full((3,), 0.16 * 1600 / 1599))  # unbiased, over 4 crops (2 and their mirrors) x 400 pixels
    torch.testing.assert_close(half.second.running_mean, torch.full((3,), 5.0))  # as trained
    torch.testing.assert_close(model.first.running_mean, torch.full((3,), 5.0))  # the model itself is untouched
    assert not half.training
    everything = renormalised(model, s, [0, 1], (SIDE, SIDE), share=1.0, precision="fp32")
    torch.testing.assert_close(everything.second.running_mean, torch.zeros(3), atol=1e-4, rtol=0)  # the first layer's output, centred


def test_batchnorm_errors_read_each_domain_with_each_domains_statistics():
    bright, dark = store([0.0, 10.0]), store([0.0])
    dark.images[:] //= 2  # mean 0.1: the bottom fifth at 127/255
    out = batchnorm_errors(NormReader().eval(), {"bright": bright, "dark": dark}, (SIDE, SIDE), shares=(0.5,), precision="fp32")
    assert list(out[0]) == ["error", "first 1 of 2 from bright", "first 1 of 2 from dark"]
    # as trained (mean 0, variance 1): pitch 100 x 0.2 = 20 (errors 20 and 10) on bright crops, 100 x 0.0996 on dark ones
    np.testing.assert_allclose(out[0]["error"], [0, 15, 0], atol=1e-3)
    np.testing.assert_allclose(out[1]["error"], [0, 100 * 127 / 255 / 5, 0], atol=1e-3)
    # each domain read with its own statistics is centred: pitch 0, the error minus the labels
    np.testing.assert_allclose(out[0]["first 1 of 2 from bright"], [0, -5, 0], atol=1e-3)
    np.testing.assert_allclose(out[1]["first 1 of 2 from dark"], [0, 0, 0], atol=1e-3)
    # read with the other domain's statistics, the dark crops sit below the bright mean
    assert out[1]["first 1 of 2 from bright"][1] < -10
