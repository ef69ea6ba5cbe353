import numpy as np
import pytest
import torch

import models
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
    assert schema().model_dump() == {"backbone": "resnet18", "pretrained": False, "sigma": (1.0, 2.0, 0.5), "alpha": 2.0, "beta": 1.0}
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
