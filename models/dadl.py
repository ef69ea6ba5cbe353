"""DADL (Zhao et al. 2023) and the ablation rows of its Table 5.

- dadl:       CE + alpha * MSE + beta * KL, one soft-label sigma per angle (unit: bins)
- gsoft:      the same loss with one shared, symmetric sigma ("GSoft-label")
- hard_label: bins + CE only, read out by expectation ("Hard-label")
- regression: backbone + one linear layer regressing the three angles, MSE only ("w/o")

The paper describes the middle rows in a sentence each; the harness reads them as above so that
each row changes one thing relative to the next (shared vs per-angle sigma; soft vs hard labels).

`frozen_stride: S` (with `pretrained: true`) keeps the ImageNet weights of the backbone's layers up
to output stride S (models.backbones.freeze_backbone); 0 trains every layer, 32 only the heads.

`statistics_noise: P` perturbs, with probability P at each stage end of the backbone and only while
training, every image's per-channel feature mean and spread (DSU, models.backbones.perturb_statistics);
0 (the default) leaves training as it was.

`sigma: asymmetry` in params.yaml asks for the per-angle sigmas fitted by the asymmetry stage; the
experiment config (pipeline.config.experiment) puts the fitted numbers in its place before a
model is built, so a model only ever sees numbers.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import Backbone, build_backbone, imagenet_normalise
from models.binned import BinnedPose
from models.registry import register
from pipeline.core.errors import ConfigError
from pipeline.core.fields import NonNegativeFloat, PositiveFloat, Probability, Switch

Sigma = PositiveFloat  # unit: bins (models.labels)
Weight = NonNegativeFloat
FrozenStride = Literal[0, 2, 4, 8, 16, 32]  # pretrained layers up to this output stride keep ImageNet weights (0: none)


@register("dadl")
class DADL(BinnedPose):
    def __init__(self, backbone: Backbone = "resnet18", pretrained: Switch = False,
                 sigma: tuple[Sigma, Sigma, Sigma] | Literal["asymmetry"] = (1.0, 2.0, 0.5), alpha: Weight = 2.0,
                 beta: Weight = 1.0, frozen_stride: FrozenStride = 0, statistics_noise: Probability = 0.0):
        if sigma == "asymmetry":
            raise ConfigError("sigma 'asymmetry' has not been replaced by the fitted sigmas: resolve the experiment with "
                              "results/asymmetry/fit.json (dvc repro runs the asymmetry and configure stages first)")
        super().__init__(backbone, pretrained, ce=1.0, alpha=alpha, beta=beta, sigma=sigma, frozen_stride=frozen_stride,
                         statistics_noise=statistics_noise)


@register("gsoft")
class GSoftLabel(BinnedPose):
    def __init__(self, backbone: Backbone = "resnet18", pretrained: Switch = False, sigma: Sigma = 1.0, alpha: Weight = 2.0,
                 beta: Weight = 1.0):
        super().__init__(backbone, pretrained, ce=1.0, alpha=alpha, beta=beta, sigma=[sigma] * 3)


@register("hard_label")
class HardLabel(BinnedPose):
    def __init__(self, backbone: Backbone = "resnet18", pretrained: Switch = False):
        super().__init__(backbone, pretrained, ce=1.0)


@register("regression")
class Regression(nn.Module):
    def __init__(self, backbone: Backbone = "resnet18", pretrained: Switch = False):
        super().__init__()
        self.backbone, dim = build_backbone(backbone, pretrained)
        self.fc = nn.Linear(dim, 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(imagenet_normalise(images)))

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def loss(self, out: torch.Tensor, targets: dict):
        mse = F.mse_loss(out, targets["ypr"])
        return mse, {"mse": float(mse.detach())}
