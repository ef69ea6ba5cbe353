"""DADL (Zhao et al. 2023): a backbone with one 66-bin head per angle and the loss
    sum over yaw, pitch, roll of  CE(hard bin) + alpha * MSE(expected angle, angle) + beta * KL(soft || predicted)
where the soft label has its own sigma per angle (models.labels: sigma is in bins)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models import register
from models.backbones import build_backbone, imagenet_normalise
from models.labels import expectation, hard_bins, soft_kl, soft_labels
from pipeline import angles
from pipeline.errors import ConfigError


class BinnedPose(nn.Module):
    """Backbone + three 66-way heads (yaw, pitch, roll); the loss weights come from the config."""

    def __init__(self, config: dict, ce: float, alpha: float, beta: float, sigma):
        super().__init__()
        self.backbone, dim = build_backbone(config["backbone"], config.get("pretrained", False))
        self.heads = nn.ModuleList(nn.Linear(dim, angles.N_BINS) for _ in angles.ANGLES)
        self.ce, self.alpha, self.beta = float(ce), float(alpha), float(beta)
        self.sigma = [float(s) for s in sigma]
        if len(self.sigma) != 3 or min(self.sigma) <= 0:
            raise ConfigError(f"params.yaml experiments.{config.get('name')}: sigma must be three positive numbers (yaw, pitch, roll; unit: bins), got {sigma}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(imagenet_normalise(images))
        return torch.stack([head(features) for head in self.heads], dim=1)  # N x 3 x 66

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.stack([expectation(logits[:, a]) for a in range(3)], dim=1)

    def loss(self, logits: torch.Tensor, targets: dict):
        ypr = targets["ypr"]
        parts = {"ce": 0.0, "mse": 0.0, "kl": 0.0}
        total = logits.new_zeros(())
        for a in range(3):
            bins = hard_bins(ypr[:, a])
            ce = F.cross_entropy(logits[:, a], bins)
            mse = F.mse_loss(expectation(logits[:, a]), ypr[:, a])
            kl = soft_kl(logits[:, a], soft_labels(bins, self.sigma[a]))
            total = total + self.ce * ce + self.alpha * mse + self.beta * kl
            for k, v in (("ce", ce), ("mse", mse), ("kl", kl)):
                parts[k] += float(v.detach())
        return total, parts


@register("dadl", defaults={"backbone": "resnet18", "pretrained": False, "sigma": [1.0, 2.0, 0.5], "alpha": 2.0, "beta": 1.0})
class DADL(BinnedPose):
    def __init__(self, config: dict):
        super().__init__(config, ce=1.0, alpha=config["alpha"], beta=config["beta"], sigma=config["sigma"])
