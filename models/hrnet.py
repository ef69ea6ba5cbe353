"""HRNet-like fully convolutional network of the Bernoulli-heatmap paper (paper 001, Table I).

stem     two 3x3 stride-2 convs, 64 channels: maps at 1/4 of the input
stage 1  4 bottlenecks of 64 channels (expansion 4, so 256 out)
stage 2  branches of 32, 64 channels        \
stage 3  branches of 32, 64, 128 channels    } 4 basic blocks per branch, then an exchange unit
stage 4  branches of 32, 64, 128, 256        /
head     1x1 conv on the highest-resolution branch only (as HRNet for human pose; the lower
         branches reach it through the exchange units, so the last unit fuses only into it)

`modules` is the number of exchange modules in stages 2-4; HRNet-W32 uses (1, 4, 3), the
default (1, 1, 1) keeps training feasible on a CPU. With `attention` each branch is rescaled
by a ChannelFusion before every exchange (the paper's "AT"); without it the exchange is plain
HRNet summation. Activations are LeakyReLU(0.2) except ChannelFusion's own ReLU and sigmoid.
Lower branches are upsampled to the exact size of the target branch, so any input size works.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = (32, 64, 128, 256)
BLOCKS = 4          # residual blocks per branch and per stage (Table I)
STEM = 64
SLOPE = 0.2         # LeakyReLU negative slope


def act() -> nn.Module:
    return nn.LeakyReLU(SLOPE, inplace=False)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if relu else nn.Sequential(*layers)


class Residual(nn.Module):
    """act(body(x) + shortcut(x)); the shortcut is a 1x1 conv when the channels change."""

    def __init__(self, body: nn.Module, cin: int, cout: int):
        super().__init__()
        self.body = body
        self.shortcut = nn.Identity() if cin == cout else conv_bn(cin, cout, 1, relu=False)
        self.act = act()

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


def basic_block(cin: int, cout: int) -> Residual:
    return Residual(nn.Sequential(conv_bn(cin, cout), conv_bn(cout, cout, relu=False)), cin, cout)


def bottleneck(cin: int, planes: int, expansion: int = 4) -> Residual:
    body = nn.Sequential(conv_bn(cin, planes, 1), conv_bn(planes, planes), conv_bn(planes, planes * expansion, 1, relu=False))
    return Residual(body, cin, planes * expansion)


class ChannelFusion(nn.Module):
    """x -> (1 + w) * x with w = sigmoid(conv_up(relu(conv_down(global_avg_pool(x))))), per channel.

    conv_down/conv_up are 1x1 convs with bias, C -> max(1, C // reduction) -> C.
    """

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.down = nn.Conv2d(channels, hidden, 1)
        self.up = nn.Conv2d(hidden, channels, 1)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """w, N x C x 1 x 1."""
        return torch.sigmoid(self.up(torch.relu(self.down(x.mean((2, 3), keepdim=True)))))

    def forward(self, x):
        return x * (1 + self.weights(x))


def fusion_path(cin: int, cout: int, steps: int) -> nn.Module:
    """Branch j -> branch i of an exchange, steps = i - j: identity (0), 1x1 conv (lower
    resolution; upsampled in Exchange.forward) or `steps` stride-2 3x3 convs (higher resolution)."""
    if steps == 0:
        return nn.Identity()
    if steps < 0:
        return conv_bn(cin, cout, 1, relu=False)
    convs = [conv_bn(cin, cin, stride=2) for _ in range(steps - 1)]
    return nn.Sequential(*convs, conv_bn(cin, cout, stride=2, relu=False))


class Exchange(nn.Module):
    """Multi-resolution exchange: out_i = act(sum_j path_ij(a_j(x_j))), a_j a ChannelFusion or identity."""

    def __init__(self, widths, n_out: int, attention: bool, reduction: int):
        super().__init__()
        self.attention = nn.ModuleList(ChannelFusion(c, reduction) if attention else nn.Identity() for c in widths)
        self.paths = nn.ModuleList(
            nn.ModuleList(fusion_path(cj, widths[i], i - j) for j, cj in enumerate(widths)) for i in range(n_out))
        self.act = act()

    def forward(self, xs):
        xs = [a(x) for a, x in zip(self.attention, xs)]
        out = []
        for i, paths in enumerate(self.paths):
            size = xs[i].shape[-2:]
            total = xs[i]
            for j, (path, x) in enumerate(zip(paths, xs)):
                if j != i:
                    y = path(x)
                    total = total + (F.interpolate(y, size=size, mode="nearest") if j > i else y)
            out.append(self.act(total))
        return out


class HRModule(nn.Module):
    """BLOCKS basic blocks on every branch, then an Exchange into the first n_out branches."""

    def __init__(self, widths, n_out: int, attention: bool, reduction: int):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*(basic_block(c, c) for _ in range(BLOCKS))) for c in widths)
        self.exchange = Exchange(widths, n_out, attention, reduction)

    def forward(self, xs):
        return self.exchange([b(x) for b, x in zip(self.branches, xs)])


class Transition(nn.Module):
    """Existing branches: identity or a 3x3 conv to the new width; the new branch: a stride-2
    3x3 conv from the lowest-resolution branch."""

    def __init__(self, cin, cout):
        super().__init__()
        self.paths = nn.ModuleList(self._path(cin, i, c) for i, c in enumerate(cout))

    @staticmethod
    def _path(cin, i: int, c: int) -> nn.Module:
        if i >= len(cin):
            return conv_bn(cin[-1], c, stride=2)
        return nn.Identity() if cin[i] == c else conv_bn(cin[i], c)

    def forward(self, xs):
        return [p(xs[min(i, len(xs) - 1)]) for i, p in enumerate(self.paths)]


class HRNet(nn.Module):
    """N x 3 x H x W (normalised) -> N x out_channels x ceil(H/4) x ceil(W/4)."""

    def __init__(self, out_channels: int, modules=(1, 1, 1), attention: bool = True, reduction: int = 16):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, STEM, stride=2), conv_bn(STEM, STEM, stride=2))
        self.layer1 = nn.Sequential(bottleneck(STEM, STEM), *(bottleneck(STEM * 4, STEM) for _ in range(3)))
        stages, prev = [], [STEM * 4]
        for s, count in enumerate(modules):
            widths = list(WIDTHS[: s + 2])
            stages.append(Transition(prev, widths))
            for m in range(count):
                last = s == len(modules) - 1 and m == count - 1
                stages.append(HRModule(widths, 1 if last else len(widths), attention, reduction))
            prev = widths
        self.stages = nn.Sequential(*stages)
        self.head = nn.Conv2d(WIDTHS[0], out_channels, 1)
        nn.init.normal_(self.head.weight, std=0.001)  # HRNet's init: outputs start near 0, not at the
        nn.init.zeros_(self.head.bias)                # scale of the un-normalised residual sums

    def forward(self, x):
        return self.head(self.stages([self.layer1(self.stem(x))])[0])
