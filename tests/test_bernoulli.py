import math

import pytest
import torch

import models
from models.bernoulli import read_out, target_maps
from models.hrnet import ChannelFusion, HRNet
from pipeline.core.errors import ConfigError
from tests.support import experiment

SIZES = [(64, 64), (96, 128)]  # (height, width): nBG crops and 128 x 96 BG frames


def _model(**overrides):
    exp = experiment("b", "bernoulli", **overrides)
    return models.build_model(exp.model, exp.hparams)


def _centres(h, w):
    """Input-pixel centres: on a map-pixel centre, between pixels, near each border."""
    return torch.tensor([[w / 2 - 0.5, h / 2 - 0.5], [13.5, 9.5], [10.3, 20.7], [0.0, 0.0], [w - 1.0, h - 1.0], [w - 7.2, 3.9]])


@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("gamma", [1.0, 1.7, 3.0, 6.0])
def test_perfect_prediction_reads_out_the_angles_exactly(h, w, gamma):
    centre = _centres(h, w)
    ypr = torch.tensor([[-70.0, 12.5, 3.0], [0.0, -45.0, 89.0], [33.3, 0.1, -20.0]]).repeat(2, 1)
    maps = target_maps(ypr, centre, (h // 4, w // 4), gamma)
    assert maps.shape == (6, 4, h // 4, w // 4)
    torch.testing.assert_close(read_out(maps), ypr, rtol=0, atol=1e-4)
    model_loss, parts = _model(gamma=gamma).loss(maps, {"ypr": ypr, "centre": centre})
    assert float(model_loss) == 0.0 and parts == {"bernoulli": 0.0, "gaussian": 0.0}


def test_target_is_a_disk_and_a_gaussian_peaking_at_one():
    gamma = 3.0
    centre = torch.tensor([[4 * 5 + 1.5, 4 * 7 + 1.5]])  # the centre of map pixel (x 5, y 7)
    maps = target_maps(torch.tensor([[10.0, -20.0, 30.0]]), centre, (16, 16), gamma)
    inside = maps[0, 0] != 0
    assert int(inside.sum()) == 29  # lattice points with x^2 + y^2 <= 9
    assert bool(inside[7, 5]) and bool(inside[7, 8]) and not bool(inside[7, 9])
    torch.testing.assert_close(maps[0, 1][inside], torch.full((29,), -20.0))
    assert float(maps[0, 3, 7, 5]) == 1.0 and float(maps[0, 3].max()) == 1.0
    assert float(maps[0, 3, 7, 6]) == pytest.approx(math.exp(-1 / (2 * (0.6 * gamma) ** 2)))


def test_target_follows_a_horizontal_flip():
    centre = torch.tensor([[17.3, 40.2]])
    maps = target_maps(torch.tensor([[10.0, 5.0, 1.0]]), centre, (24, 32), 2.5)
    flipped = target_maps(torch.tensor([[10.0, 5.0, 1.0]]), torch.tensor([[128 - 1 - 17.3, 40.2]]), (24, 32), 2.5)
    torch.testing.assert_close(flipped, maps.flip(-1))


def test_read_out_weights_above_half_and_falls_back_to_the_highest_weight():
    maps = torch.zeros(2, 4, 3, 3)
    maps[:, :3] = torch.arange(9.0).view(1, 1, 3, 3) * 10
    maps[0, 3, 0, 0], maps[0, 3, 0, 1], maps[0, 3, 2, 2] = 0.6, 1.0, 0.5  # 0.5 is not above 0.5
    maps[1, 3] = -1.0
    maps[1, 3, 1, 2] = 0.4  # nothing above 0.5: the single pixel of highest weight
    out = read_out(maps)
    torch.testing.assert_close(out[0], torch.full((3,), (0.6 * 0 + 1.0 * 10) / 1.6))
    torch.testing.assert_close(out[1], torch.full((3,), 50.0))


def test_channel_fusion_rescales_by_one_plus_its_weights():
    torch.manual_seed(0)
    fusion = ChannelFusion(32, reduction=16)
    x = torch.randn(2, 32, 5, 7)
    w = fusion.weights(x)
    assert w.shape == (2, 32, 1, 1) and bool((w > 0).all() and (w < 1).all())
    torch.testing.assert_close(fusion(x), (1 + w) * x)
    for p in fusion.parameters():
        torch.nn.init.zeros_(p)
    torch.testing.assert_close(fusion(x), 1.5 * x)


@pytest.mark.parametrize("h,w", SIZES)
def test_attention_switch_and_output_map_size(h, w):
    on, off = HRNet(4, attention=True), HRNet(4, attention=False)
    assert not any(isinstance(m, ChannelFusion) for m in off.modules())
    assert sum(isinstance(m, ChannelFusion) for m in on.modules()) == 2 + 3 + 4
    extra = sum(p.numel() for p in on.parameters()) - sum(p.numel() for p in off.parameters())
    assert extra == sum(p.numel() for m in on.modules() if isinstance(m, ChannelFusion) for p in m.parameters()) > 0
    with torch.no_grad():
        assert off.eval()(torch.rand(1, 3, h, w)).shape == (1, 4, h // 4, w // 4)


def test_loss_goes_down_on_a_fixed_batch():
    torch.manual_seed(0)
    model = _model(gamma=2.0)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 32, 32, generator=gen)
    targets = {"ypr": torch.rand(8, 3, generator=gen) * 120 - 60, "centre": torch.rand(8, 2, generator=gen) * 16 + 8}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss, parts = model.loss(model(images), targets)
        assert set(parts) == {"bernoulli", "gaussian"}
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert model.predict(model(images)).shape == (8, 3)


@pytest.mark.parametrize("key,value", [("gamma", 0), ("gamma", -2.0), ("gamma", 0.5), ("gamma", True), ("loss", "huber"),
                                       ("attention", "yes"), ("modules", [1, 1]), ("modules", [1, 0, 1]),
                                       ("reduction", 0), ("gaussian_weight", -1.0)])
def test_bad_config_values_name_their_key(key, value):
    with pytest.raises(ConfigError, match=rf"params\.yaml experiments\.b\.{key}[.0-9]*: "):
        experiment("b", "bernoulli", **{key: value})


def test_input_not_divisible_by_four_is_refused_when_params_are_read():
    with pytest.raises(ConfigError, match=r"params\.yaml experiments\.b\.input_size: the bernoulli model needs width and height "
                                          r"divisible by 4, got \[66, 64\]"):
        experiment("b", "bernoulli", input_size=[66, 64])
