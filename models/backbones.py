"""Torchvision backbones as feature extractors: image -> feature vector."""
from __future__ import annotations

import torch
from torch import nn
import torchvision

from pipeline.errors import ConfigError

BACKBONES = {"resnet18": 512, "resnet50": 2048, "resnet152": 2048, "mobilenet_v2": 1280}


def build_backbone(name: str, pretrained: bool = False) -> tuple[nn.Module, int]:
    if name not in BACKBONES:
        raise ConfigError(f"params.yaml: unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if pretrained:
        raise ConfigError(f"params.yaml: pretrained {name} weights are not available in this version; set pretrained: false")
    net = torchvision.models.get_model(name, weights=None)
    if name.startswith("resnet"):
        net.fc = nn.Identity()
        return net, BACKBONES[name]
    return nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), BACKBONES[name]


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8-range or [0, 1] N x 3 x H x W -> ImageNet-normalised float."""
    mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std
