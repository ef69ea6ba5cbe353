"""A backbone with one 66-bin classification head per angle (HopeNet's design, which DADL
keeps). The loss per angle is
    ce * CE(hard bin) + alpha * MSE(expected angle, angle) + beta * KL(soft label || predicted)
summed over yaw, pitch and roll; the models that use it differ only in those weights and in
the soft labels' sigmas (unit: bins, see models.labels)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import add_statistics_noise, build_backbone, freeze_backbone, imagenet_normalise
from models.labels import expectation, hard_bins, soft_kl, soft_labels
from pipeline.core import angles
from pipeline.core.errors import ConfigError


class BinnedPose(nn.Module):
    def __init__(self, backbone: str, pretrained: bool, ce: float = 1.0, alpha: float = 0.0, beta: float = 0.0, sigma=(1.0, 1.0, 1.0),
                 frozen_stride: int = 0, statistics_noise: float = 0.0):
        super().__init__()
        if frozen_stride and not pretrained:
            raise ConfigError(f"frozen_stride {frozen_stride} keeps ImageNet weights, but pretrained is false; set pretrained: true "
                              "or frozen_stride: 0")
        self.backbone, dim = build_backbone(backbone, pretrained)
        self._frozen = freeze_backbone(self.backbone, backbone, frozen_stride) if frozen_stride else []
        if statistics_noise:
            add_statistics_noise(self.backbone, backbone, statistics_noise)
        self.heads = nn.ModuleList(nn.Linear(dim, angles.N_BINS) for _ in angles.ANGLES)
        self.ce, self.alpha, self.beta = float(ce), float(alpha), float(beta)
        self.sigma = [float(s) for s in sigma]

    def train(self, mode: bool = True):
        super().train(mode)
        for layer in self._frozen:  # frozen layers keep their ImageNet BatchNorm statistics
            layer.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(imagenet_normalise(images))
        return torch.stack([head(features) for head in self.heads], dim=1)  # N x 3 x 66

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.stack([expectation(logits[:, a]) for a in range(3)], dim=1)

    def loss(self, logits: torch.Tensor, targets: dict):
        ypr = targets["ypr"]
        parts = {}
        total = logits.new_zeros(())
        for a in range(3):
            bins = hard_bins(ypr[:, a])
            terms = {}
            if self.ce:
                terms["ce"] = (self.ce, F.cross_entropy(logits[:, a], bins))
            if self.alpha:
                terms["mse"] = (self.alpha, F.mse_loss(expectation(logits[:, a]), ypr[:, a]))
            if self.beta:
                terms["kl"] = (self.beta, soft_kl(logits[:, a], soft_labels(bins, self.sigma[a])))
            for key, (weight, value) in terms.items():
                total = total + weight * value
                parts[key] = parts.get(key, 0.0) + float(value.detach())
        return total, parts
