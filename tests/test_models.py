import numpy as np
import pytest
import torch

import models
from models.labels import expectation, hard_bins, soft_kl, soft_labels
from pipeline.errors import ConfigError
from pipeline.params import experiment_config


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


def _params(**dadl):
    return {"train": {"input_size": 32, "epochs": 1, "batch_size": 8, "seed": 0},
            "experiments": {"dadl": {"model": "dadl", **dadl}}}


def test_unknown_model_backbone_and_key_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'vit'"):
        experiment_config({"train": {}, "experiments": {"x": {"model": "vit"}}}, "x")
    with pytest.raises(ConfigError, match="unknown key.*alpah"):
        experiment_config(_params(alpah=1), "dadl")
    with pytest.raises(ConfigError, match="unknown backbone 'resnet19'"):
        models.build_model(experiment_config(_params(backbone="resnet19"), "dadl"))


def test_dadl_loss_goes_down_on_a_fixed_batch():
    torch.manual_seed(0)
    model = models.build_model(experiment_config(_params(), "dadl"))
    images = torch.rand(8, 3, 32, 32)
    targets = {"ypr": torch.tensor(np.random.default_rng(0).uniform(-60, 60, (8, 3)), dtype=torch.float32)}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss, parts = model.loss(model(images), targets)
        assert set(parts) == {"ce", "mse", "kl"}
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert model.predict(model(images)).shape == (8, 3)
