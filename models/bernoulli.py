"""Bernoulli heatmap (Hu et al., paper 001): models.hrnet.HRNet with four output maps at 1/4 of
the input: three "Bernoulli" maps (yaw, pitch, roll) and one Gaussian weight map.

Targets (`target_maps`): a Bernoulli map is the angle (degrees) inside the disk of radius gamma
around the head centre and 0 outside; the Gaussian map is exp(-d^2 / (2 sigma^2)), sigma =
0.6 gamma. gamma is in OUTPUT-MAP pixels (1 map pixel = 4 input pixels), so 64 x 64 crops give
16 x 16 maps and gamma 4 covers a disk of radius 16 input pixels. Distances are measured to
map-pixel centres: input pixel x (pixel centres at integers) is map coordinate (x + 0.5) / 4 - 0.5,
which keeps the target exact under horizontal flips. gamma >= 1 guarantees that the map pixel
nearest to a centre inside the map lies in the disk.

Read-out (`read_out`): per angle the average of the Bernoulli map weighted by the Gaussian map
over the pixels whose weight exceeds 0.5. If no pixel does, the Bernoulli value at the single
pixel of highest weight is returned.

Loss (the paper names none): `loss: l1` (default) or `mse` on the Bernoulli maps, averaged over
all pixels, with angles divided by 90 so the loss is O(1); plus `gaussian_weight` times the MSE
of the Gaussian map (the usual heatmap loss). L1 is the default because the read-out is a mean
of Bernoulli values, so its error in degrees is the per-pixel absolute error the loss sees, and
L1 keeps a constant gradient near the answer where MSE's fades (the paper's motivation is that
regression constraints are too weak). The network's three Bernoulli channels are multiplied by
90 in forward, so outputs, targets and the read-out are all in degrees.
"""
from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from models.backbones import imagenet_normalise
from models.hrnet import HRNet
from models.registry import register
from pipeline.core.fields import NonNegativeFloat, NotBool, PositiveInt, Switch

STRIDE = 4           # output maps are 1/STRIDE of the input
ANGLE_SCALE = 90.0   # degrees per unit of the network's Bernoulli channels and of the loss
SIGMA_PER_GAMMA = 0.6
THRESHOLD = 0.5


def map_coordinates(centre: torch.Tensor) -> torch.Tensor:
    """N x 2 input-pixel (x, y) -> output-map coordinates of the same points."""
    return (centre + 0.5) / STRIDE - 0.5


def target_maps(ypr: torch.Tensor, centre: torch.Tensor, size, gamma: float) -> torch.Tensor:
    """N x 4 x h x w targets (3 Bernoulli maps in degrees, 1 Gaussian map) for maps of `size` (h, w)."""
    h, w = size
    c = map_coordinates(centre.to(ypr.dtype))
    ys = torch.arange(h, dtype=ypr.dtype, device=ypr.device).view(1, h, 1)
    xs = torch.arange(w, dtype=ypr.dtype, device=ypr.device).view(1, 1, w)
    d2 = (xs - c[:, 0, None, None]) ** 2 + (ys - c[:, 1, None, None]) ** 2  # N x h x w
    disk = (d2 <= gamma**2).to(ypr.dtype)
    gauss = torch.exp(-d2 / (2 * (SIGMA_PER_GAMMA * gamma) ** 2))
    return torch.cat([ypr[:, :, None, None] * disk[:, None], gauss[:, None]], dim=1)


def read_out(maps: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """N x 4 x h x w maps -> N x 3 angles: the Gaussian-weighted mean of each Bernoulli map over
    pixels with weight > threshold, or its value at the highest-weight pixel if there are none."""
    bern, weight = maps[:, :3].flatten(2), maps[:, 3].flatten(1)
    w = torch.where(weight > threshold, weight, torch.zeros_like(weight))
    fallback = F.one_hot(weight.argmax(1), weight.shape[1]).to(weight.dtype)
    w = torch.where((w > 0).any(1, keepdim=True), w, fallback)
    return (bern * w[:, None]).sum(2) / w.sum(1, keepdim=True)


@register("bernoulli")
class BernoulliHeatmap(nn.Module):
    """HRNet -> N x 4 x H/4 x W/4 maps: yaw, pitch, roll (degrees) and the Gaussian weight map.

    gamma: disk radius in output-map pixels (1 = 4 input pixels; a smaller disk can miss every
    pixel); attention: the channel-wise fusion ("AT"); modules: exchange modules in stages 2-4
    (HRNet-W32: [1, 4, 3]); reduction: ChannelFusion's channel reduction; loss: on the Bernoulli
    maps; gaussian_weight: weight of the Gaussian map's MSE."""

    input_multiple = STRIDE

    def __init__(self, gamma: Annotated[float, Field(ge=1), NotBool] = 4.0, attention: Switch = True,
                 modules: tuple[PositiveInt, PositiveInt, PositiveInt] = (1, 1, 1), reduction: PositiveInt = 16,
                 loss: Literal["l1", "mse"] = "l1", gaussian_weight: NonNegativeFloat = 1.0):
        super().__init__()
        self.gamma, self.kind, self.gaussian_weight = float(gamma), loss, float(gaussian_weight)
        self.net = HRNet(4, modules=list(modules), attention=attention, reduction=reduction)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raw = self.net(imagenet_normalise(images))
        return torch.cat([raw[:, :3] * ANGLE_SCALE, raw[:, 3:]], dim=1)

    def predict(self, maps: torch.Tensor) -> torch.Tensor:
        return read_out(maps)

    def loss(self, maps: torch.Tensor, targets: dict):
        target = target_maps(targets["ypr"].to(maps.dtype), targets["centre"], maps.shape[-2:], self.gamma)
        diff = (maps[:, :3] - target[:, :3]) / ANGLE_SCALE
        bern = diff.abs().mean() if self.kind == "l1" else diff.pow(2).mean()
        gauss = F.mse_loss(maps[:, 3], target[:, 3])
        total = bern + self.gaussian_weight * gauss
        return total, {"bernoulli": float(bern.detach()), "gaussian": float(gauss.detach())}
