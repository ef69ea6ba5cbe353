"""DADL (Zhao et al. 2023) and the ablation rows of its Table 5.

- dadl:       CE + alpha * MSE + beta * KL, one soft-label sigma per angle (unit: bins)
- gsoft:      the same loss with one shared, symmetric sigma ("GSoft-label")
- hard_label: bins + CE only, read out by expectation ("Hard-label")
- regression: backbone + one linear layer regressing the three angles, MSE only ("w/o")

The paper describes the middle rows in a sentence each; the harness reads them as above so that
each row changes one thing relative to the next (shared vs per-angle sigma; soft vs hard labels).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models import register
from models.backbones import build_backbone, imagenet_normalise
from models.binned import BinnedPose
from pipeline.errors import ConfigError

BACKBONE = {"backbone": "resnet18", "pretrained": False}


@register("dadl", defaults={**BACKBONE, "sigma": [1.0, 2.0, 0.5], "alpha": 2.0, "beta": 1.0})
class DADL(BinnedPose):
    def __init__(self, config: dict):
        super().__init__(config, ce=1.0, alpha=config["alpha"], beta=config["beta"], sigma=config["sigma"])


@register("gsoft", defaults={**BACKBONE, "sigma": 1.0, "alpha": 2.0, "beta": 1.0})
class GSoftLabel(BinnedPose):
    def __init__(self, config: dict):
        if not isinstance(config["sigma"], (int, float)):
            raise ConfigError(f"params.yaml experiments.{config.get('name')}.sigma: gsoft takes one shared sigma (a number), got {config['sigma']}")
        super().__init__(config, ce=1.0, alpha=config["alpha"], beta=config["beta"], sigma=[config["sigma"]] * 3)


@register("hard_label", defaults=BACKBONE)
class HardLabel(BinnedPose):
    def __init__(self, config: dict):
        super().__init__(config, ce=1.0)


@register("regression", defaults=BACKBONE)
class Regression(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        self.backbone, dim = build_backbone(config["backbone"], config.get("pretrained", False))
        self.fc = nn.Linear(dim, 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(imagenet_normalise(images)))

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def loss(self, out: torch.Tensor, targets: dict):
        mse = F.mse_loss(out, targets["ypr"])
        return mse, {"mse": float(mse.detach())}
