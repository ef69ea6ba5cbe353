"""A small LeNet-5 that regresses (yaw, pitch, roll): the feature extractor of DADL's
asymmetry analysis (its Figs. 1, 4, 5), which compares the last fully connected features of
images at different poses."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import register
from models.backbones import imagenet_normalise

SCALE = 90.0


@register("lenet")
class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(5), nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.out = nn.Linear(84, 3)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last fully connected layer's activations (84 per image)."""
        return self.fc(self.conv(imagenet_normalise(images)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(images)) * SCALE  # the layer works in units of 90 degrees

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def loss(self, out: torch.Tensor, targets: dict):
        mse = F.mse_loss(out / SCALE, targets["ypr"] / SCALE)
        return mse, {"mse": float(mse.detach())}
