import numpy as np
import pytest
import torch

import models
from models.backbones import _layers_in_order, build_backbone, freeze_backbone, perturb_statistics, stage_ends
from models.labels import expectation, hard_bins, soft_kl, soft_labels
from pipeline.core.errors import ConfigError
from tests.support import experiment


def test_soft_labels_sum_to_one_and_peak_at_the_true_bin():
    deg = torch.tensor([-99.0, -40.5, 0.0, 2.9, 98.0])
    bins = hard_bins(deg)
    for sigma in (0.3, 1.0, 2.0):
        soft = soft_labels(bins, sigma)
        torch.testing.assert_close(soft.sum(1), torch.ones(5))
        assert torch.equal(soft.argmax(1), bins)
    # wider sigma spreads more mass off the peak
    assert soft_labels(bins, 2.0).max(1).values.lt(soft_labels(bins, 0.5).max(1).values).all()


def test_kl_is_zero_when_prediction_equals_target():
    soft = soft_labels(hard_bins(torch.tensor([10.0, -30.0])), 1.0)
    assert float(soft_kl(torch.log(soft.clamp_min(1e-30)), soft)) == pytest.approx(0.0, abs=1e-6)
    assert float(soft_kl(torch.zeros(2, 66), soft)) > 1.0  # a flat prediction is far from it


def test_expectation_uses_the_papers_left_edge_decoding():
    logits = torch.full((1, 66), -1e4)
    logits[0, 40] = 0.0
    assert float(expectation(logits)[0]) == pytest.approx(40 * 3 - 99)


def build(name: str, **overrides):
    """Model `name` built the way the train stage builds it: from a resolved experiment."""
    exp = experiment(name, name, **overrides)
    return models.build_model(exp.model, exp.hparams)


def test_unknown_model_backbone_and_key_are_config_errors():
    with pytest.raises(ConfigError, match=r"params\.yaml experiments\.x\.model: unknown model 'vit'"):
        experiment("x", "vit")
    with pytest.raises(ConfigError, match=r"params\.yaml experiments\.x: unknown key\(s\) alpah"):
        experiment("x", "dadl", alpah=1)
    with pytest.raises(ConfigError, match=r"params\.yaml experiments\.x\.backbone: .*'resnet18'.*got 'resnet19'"):
        experiment("x", "dadl", backbone="resnet19")
    with pytest.raises(ConfigError, match=r"model dadl alpha: .*greater than or equal to 0"):
        models.build_model("dadl", alpha=-1)


def test_model_defaults_are_its_constructor_defaults():
    schema = models.hyperparameters("dadl")
    assert schema().model_dump() == {"backbone": "resnet18", "pretrained": False, "sigma": (1.0, 2.0, 0.5), "alpha": 2.0, "beta": 1.0,
                                     "frozen_stride": 0, "statistics_noise": 0.0}
    exp = experiment("x", "dadl", alpha=3.0)
    assert exp.hparams.alpha == 3.0 and exp.hparams.beta == 1.0 and exp.input_size == (32, 32)


# every registered model but the Bernoulli heatmap, which tests/test_bernoulli.py trains
@pytest.mark.parametrize("name", [m for m in models.available() if m != "bernoulli"])
def test_loss_goes_down_on_a_fixed_batch(name):
    torch.manual_seed(0)
    model = build(name)
    images = torch.rand(8, 3, 32, 32)
    targets = {"ypr": torch.tensor(np.random.default_rng(0).uniform(-60, 60, (8, 3)), dtype=torch.float32),
               "centre": torch.full((8, 2), 16.0)}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss, parts = model.loss(model(images), targets)
        assert parts and all(np.isfinite(v) for v in parts.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses
    model.eval()
    with torch.no_grad():
        assert model.predict(model(images)).shape == (8, 3)


def test_dadl_family_loss_terms():
    def parts(name, **extra):
        model = build(name, **extra)
        return set(model.loss(model(torch.rand(2, 3, 32, 32)), {"ypr": torch.zeros(2, 3)})[1])

    assert parts("dadl") == {"ce", "mse", "kl"}
    assert parts("gsoft") == {"ce", "mse", "kl"}
    assert parts("hard_label") == {"ce"}
    assert parts("hopenet") == {"ce", "mse"}
    assert parts("regression") == {"mse"}
    with pytest.raises(ConfigError, match=r"experiments\.gsoft\.sigma: Input should be a valid number"):
        parts("gsoft", sigma=[1, 2, 3])
    with pytest.raises(ConfigError, match="sigma 'asymmetry' has not been replaced"):
        parts("dadl", sigma="asymmetry")  # resolved without the asymmetry fit


def test_gram_schmidt_gives_rotations_and_euler_round_trips():
    from models.sixdrepnet import geodesic, gram_schmidt
    from pipeline.core import angles

    r = gram_schmidt(torch.randn(100, 6, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(100, 3, 3)
    torch.testing.assert_close(r.transpose(1, 2) @ r, eye)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(100, dtype=torch.float64))
    # a 6D vector made of a rotation's first two columns gives that rotation back
    ypr = torch.tensor(np.random.default_rng(3).uniform([-89, -80, -80], [89, 80, 80], (50, 3)))
    m = angles.rotation_matrix(ypr[:, 0], ypr[:, 1], ypr[:, 2])
    back = gram_schmidt(torch.cat([m[:, :, 0], m[:, :, 1]], dim=1))
    torch.testing.assert_close(back, m)
    torch.testing.assert_close(angles.biwi_euler(back), ypr)
    assert float(geodesic(m, m).max()) < 1e-2
    yaw40 = angles.rotation_matrix(*torch.tensor([[40.0], [0.0], [0.0]], dtype=torch.float64))
    assert float(geodesic(yaw40, torch.eye(3, dtype=torch.float64)[None])) == pytest.approx(np.radians(40), abs=1e-6)


def test_freeze_backbone_picks_the_layers_up_to_the_stride():

    # resnet18: conv1, bn1, relu (stride 2), maxpool, layer1 (4), layer2 (8), layer3 (16), layer4 (32)
    for stride, n in ((2, 3), (8, 6), (16, 7), (32, 8)):
        net, _ = build_backbone("resnet18")
        frozen = freeze_backbone(net, "resnet18", stride)
        assert frozen == _layers_in_order(net, "resnet18")[:n]
        assert all(not p.requires_grad for m in frozen for p in m.parameters())
        assert all(p.requires_grad for m in _layers_in_order(net, "resnet18")[n:] for p in m.parameters())


# mobilenet_v2 only: its ImageNet weights are on disk (make setup), the ResNets' would be downloaded
@pytest.mark.parametrize("backbone, stride, n_frozen", [("mobilenet_v2", 8, 7), ("mobilenet_v2", 16, 14)])
def test_frozen_layers_keep_their_weights_and_batchnorm_statistics(backbone, stride, n_frozen):
    """frozen_stride S: the backbone's layers up to output stride S get no gradient and keep
    their BatchNorm statistics in training mode; the layers above and the heads train."""
    from pipeline.engine.training import _optimizer  # noqa: PLC0415

    torch.manual_seed(0)
    model = build("dadl", backbone=backbone, pretrained=True, frozen_stride=stride)
    layers = _layers_in_order(model.backbone, backbone)
    assert model._frozen == layers[:n_frozen]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = _optimizer(model.train(), experiment("x", "dadl", lr=1e-2))
    assert all(not m.training for m in model._frozen) and layers[n_frozen].training and model.heads.training
    images = torch.rand(4, 3, 64, 64)
    targets = {"ypr": torch.tensor([[30.0, -10.0, 5.0]] * 4), "centre": torch.full((4, 2), 32.0)}
    loss, _ = model.loss(model(images), targets)
    loss.backward()
    opt.step()
    frozen = {f"backbone.{k}" for k, p in model.backbone.named_parameters() if not p.requires_grad}
    frozen_buffers = {f"backbone.{k}" for k, b in model.backbone.named_buffers() if any(b is f for m in model._frozen for f in m.buffers())}
    assert frozen and frozen_buffers
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert not changed & (frozen | frozen_buffers)  # weights and running statistics kept
    assert any(k.startswith("heads.") for k in changed) and any(k.startswith("backbone.") for k in changed)
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_frozen_stride_needs_pretrained_weights_and_a_stride():
    with pytest.raises(ConfigError, match="frozen_stride 8 keeps ImageNet weights, but pretrained is false"):
        build("dadl", frozen_stride=8)
    with pytest.raises(ConfigError, match=r"frozen_stride"):
        experiment("x", "dadl", pretrained=True, frozen_stride=5)
    assert build("dadl")._frozen == []


def test_weight_average_follows_the_weights_and_batchnorm_statistics():
    """train.ema: the average starts at the weights of the first step and then moves (1 - decay)
    of the way towards each new step's weights, BatchNorm's running statistics included (they are
    what an averaged network reads at test time)."""
    from pipeline.engine.training import averaged  # noqa: PLC0415

    assert averaged(torch.nn.Linear(2, 2), None) is None
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = averaged(model, 0.75)
    snapshots = []
    for _ in range(3):
        model.train()(torch.randn(2, 3, 8, 8) + 1.0)  # moves the running statistics
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update_parameters(model)
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
    averaged_state = ema.module.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var"):
        expected = snapshots[0][key]
        for later in snapshots[1:]:
            expected = 0.75 * expected + 0.25 * later[key]
        assert torch.allclose(averaged_state[key], expected, atol=1e-6), key
        assert not torch.allclose(averaged_state[key], snapshots[-1][key]), key


def test_stage_ends_are_the_last_layer_at_each_stride():
    for name, expected in (("mobilenet_v2", [1, 3, 6, 13, 18]), ("resnet18", [2, 4, 5, 6, 7])):
        net, _ = build_backbone(name)
        layers = _layers_in_order(net, name)
        assert [layers.index(layer) for layer in stage_ends(net, name)] == expected


def test_perturb_statistics_keeps_each_channels_pattern_and_moves_its_statistics():
    torch.manual_seed(0)
    x = torch.randn(16, 4, 5, 5) * torch.rand(16, 4, 1, 1) * 3 + torch.randn(16, 4, 1, 1)
    y = perturb_statistics(x)

    def standardised(t):
        return (t - t.mean(dim=(2, 3), keepdim=True)) / t.std(dim=(2, 3), keepdim=True)
    agreement = (standardised(y) * standardised(x)).mean(dim=(2, 3)) * 25 / 24  # per image and channel: the correlation
    torch.testing.assert_close(agreement.abs(), torch.ones(16, 4), atol=1e-4, rtol=0)  # the pattern, or its mirror image
    assert (agreement > 0).float().mean() > 0.7  # mostly kept: a negative spread takes a large draw
    assert (y.mean(dim=(2, 3)) - x.mean(dim=(2, 3))).abs().mean() > 0.1
    assert (y.std(dim=(2, 3)) - x.std(dim=(2, 3))).abs().mean() > 0.1
    same = torch.randn(16, 4, 5, 5)[:1].expand(16, -1, -1, -1)  # no spread over the batch: (almost) nothing moves
    torch.testing.assert_close(perturb_statistics(same), same, atol=1e-2, rtol=0)
    assert torch.isfinite(perturb_statistics(torch.randn(1, 4, 1, 1))).all()  # one image, one pixel: no NaN


def test_statistics_noise_acts_only_while_training():
    torch.manual_seed(0)
    plain = build("dadl", backbone="mobilenet_v2")
    noisy = build("dadl", backbone="mobilenet_v2", statistics_noise=1.0)
    noisy.load_state_dict(plain.state_dict())
    images = torch.rand(4, 3, 32, 32)
    plain.eval(), noisy.eval()
    with torch.no_grad():
        torch.testing.assert_close(noisy(images), plain(images), rtol=0, atol=0)
        plain.train(), noisy.train()
        assert not torch.allclose(noisy(images), plain(images))
    with pytest.raises(ConfigError, match=r"statistics_noise: .*less than or equal to 1"):
        experiment("x", "dadl", statistics_noise=1.5)
