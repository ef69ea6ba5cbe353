"""Photometric augmentation of training batches, for a model that must hold on images unlike its
training set (the built-in renderer's heads against real photographs): colour, grey, blur, noise,
coarser copies (down-sampled and up-sampled back: the detail a smaller face in the source image
would keep), sharpening (torchvision's `adjust_sharpness`, as a camera's processing or a face
down-sampled from a large photograph sharpens edges); JPEG-like block artefacts are out of scope; random erasing stands in for occluders, and random
convolutions (RandConv: Xu et al., "Robust and Generalizable Visual Representation Learning via
Random Convolutions", ICLR 2021) change local texture and colour while shapes stay.

The random draws are made when a batch is planned (pipeline.data.batches.plan_batch), in order,
with the batch's generator, so augmented batches are as reproducible as the crops; they are
applied to the float images on the device the model runs on (pipeline.engine.loader), where they
cost a few elementwise passes. Pose labels are unchanged: nothing here moves a pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2.functional import adjust_sharpness

from pipeline.config.params import Augment

LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Draws:
    """One batch's augmentation: per sample factors and switches, and a seed for its noise."""

    brightness: np.ndarray
    contrast: np.ndarray
    saturation: np.ndarray
    grey: np.ndarray  # bools
    blur: np.ndarray  # Gaussian sigma in pixels, 0 = none
    noise: np.ndarray  # std of additive noise (images in [0, 1])
    erase: np.ndarray  # N x 4: x0, y0, x1, y1 as shares of the side; all 0 = none
    seed: int
    conv: np.ndarray | None = None  # kernel side of each sample's random convolution, 0 = none
    keep: np.ndarray | None = None  # share of the original image mixed back into the convolved one
    scale: np.ndarray | None = None  # side of each sample's coarser copy as a share of its own, 1 = none
    sharpness: np.ndarray | None = None  # each sample's sharpness factor (adjust_sharpness), 1 = none


def draw(rng: np.random.Generator, n: int, cfg: Augment) -> Draws:
    def factor(spread: float) -> np.ndarray:
        return rng.uniform(1 - spread, 1 + spread, n)

    brightness, contrast, saturation = factor(cfg.brightness), factor(cfg.contrast), factor(cfg.saturation)
    grey = rng.random(n) < cfg.grey
    blur = np.where(rng.random(n) < cfg.blur, rng.uniform(0.3, cfg.blur_sigma, n), 0.0)
    noise = np.where(rng.random(n) < cfg.noise, rng.uniform(0.0, cfg.noise_std, n), 0.0)
    area = rng.uniform(*cfg.erase_area, n)
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n))
    w, h = np.clip(np.sqrt(area * aspect), 0, 1), np.clip(np.sqrt(area / aspect), 0, 1)
    x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
    erase = np.where((rng.random(n) < cfg.erase)[:, None], np.stack([x0, y0, x0 + w, y0 + h], axis=1), 0.0)
    seed = int(rng.integers(2**31))
    conv = keep = scale = sharp = None  # the draws below come last and only when asked for, so configurations without
    if cfg.random_conv:         # them keep the batches they had before these changes existed
        conv = np.where(rng.random(n) < cfg.random_conv, rng.choice(cfg.random_conv_sizes, n), 0)
        keep = rng.uniform(0, 1, n)
    if cfg.resolution:
        scale = np.where(rng.random(n) < cfg.resolution, rng.uniform(cfg.resolution_min, 1.0, n), 1.0)
    if cfg.sharpen:
        sharp = np.where(rng.random(n) < cfg.sharpen, rng.uniform(1.0, cfg.sharpen_max, n), 1.0)
    return Draws(brightness, contrast, saturation, grey, blur, noise, erase, seed, conv, keep, scale, sharp)


def sharpen(images: torch.Tensor, factors) -> torch.Tensor:
    """N x C x h x w in [0, 1] -> each image through torchvision's `adjust_sharpness` with its own
    factor (1: unchanged; above 1 its edges are steeper than the smoothed image's by that factor),
    in one batched pass: the smoothed image is factor 0's."""
    smooth = adjust_sharpness(images, 0.0)
    return (smooth + _column(np.asarray(factors), images) * (images - smooth)).clamp_(0.0, 1.0)


def _column(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).view(-1, 1, 1, 1)


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(np.ceil(2.5 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def resample(images: torch.Tensor, width: int) -> torch.Tensor:
    """N x C x h x w -> the same images down-sampled to `width` pixels wide (height in proportion, at
    least 1; bilinear, antialiased) and up-sampled back to h x w (bilinear): what a camera with
    fewer pixels on the face would have given, at the size the model takes."""
    h, w = images.shape[-2:]
    small = F.interpolate(images, size=(max(1, round(h * width / w)), max(1, int(width))), mode="bilinear",
                          antialias=True, align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def random_conv(images: torch.Tensor, sides, keep, generators) -> torch.Tensor:
    """N x 3 x h x w -> keep * image + (1 - keep) * a random 3-to-3-channel convolution of it, per
    image, as RandConv's mixing variant: Kaiming-normal weights (std sqrt(2 / (3 side^2))) drawn
    from the image's generator, applied to the image less its channel means and those means added
    back (the random filter changes texture and colour contrasts, not the mean colour); borders
    repeat the edge pixels. Images of one kernel side share one grouped convolution."""
    out = torch.empty_like(images)
    sides = np.asarray(sides)
    for side in np.unique(sides):
        rows = np.flatnonzero(sides == side)
        side, r = int(side), int(side) // 2
        weight = torch.cat([torch.randn((3, 3, side, side), generator=generators[i], device=images.device, dtype=images.dtype)
                            for i in rows]) * float(np.sqrt(2.0 / (3 * side * side)))
        part = images[rows]
        mean = part.mean((2, 3), keepdim=True)
        centred = F.pad(part - mean, (r, r, r, r), mode="replicate")
        convolved = F.conv2d(centred.reshape(1, -1, *centred.shape[2:]), weight, groups=len(rows)).view_as(part) + mean
        mix = torch.as_tensor(np.asarray(keep)[rows], dtype=images.dtype, device=images.device).view(-1, 1, 1, 1)
        out[rows] = mix * part + (1 - mix) * convolved
    return out


def apply(images: torch.Tensor, d: Draws) -> torch.Tensor:
    """N x 3 x h x w floats in [0, 1] -> augmented, still in [0, 1]. A coarser copy and sharpening come
    first (the camera), then a random convolution, colour, grey, blur, noise and erasing; changes
    drawn as none cost nothing."""
    luma = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    widths = None if d.scale is None else np.maximum(1, np.round(images.shape[-1] * d.scale)).astype(int)
    if widths is not None and (widths < images.shape[-1]).any():
        images = images.clone()
        for i in np.flatnonzero(widths < images.shape[-1]):
            images[i : i + 1] = resample(images[i : i + 1], int(widths[i])).clamp_(0.0, 1.0)
    if d.sharpness is not None and (d.sharpness != 1).any():
        rows = np.flatnonzero(d.sharpness != 1)  # only those: adjust_sharpness's depthwise conv is slow on the CPU
        images = images.clone()
        images[rows] = sharpen(images[rows], d.sharpness[rows])
    out = images
    if d.conv is not None and d.conv.any():
        rows = np.flatnonzero(d.conv)
        generators = [torch.Generator(device=images.device).manual_seed(d.seed + len(d.conv) + 1 + int(i)) for i in rows]
        out = images.clone()
        out[rows] = random_conv(images[rows], d.conv[rows], d.keep[rows], generators).clamp_(0.0, 1.0)
    if (d.brightness != 1).any():
        out = out * _column(d.brightness, images)
    if (d.contrast != 1).any():
        grey = (out * luma).sum(1, keepdim=True)
        mean = grey.mean((2, 3), keepdim=True)
        out = (out - mean) * _column(d.contrast, images) + mean
    if (d.saturation != 1).any():
        grey = (out * luma).sum(1, keepdim=True)
        out = grey + (out - grey) * _column(d.saturation, images)
    if d.grey.any():
        out = torch.where(_column(d.grey, images).bool(), (out * luma).sum(1, keepdim=True).expand_as(out), out)
    if out is images:
        out = images.clone()
    for i in np.flatnonzero(d.blur):
        out[i : i + 1] = _blur(out[i : i + 1], float(d.blur[i]))
    if d.noise.any():
        generator = torch.Generator(device=images.device).manual_seed(d.seed)
        noise = torch.randn(out.shape, generator=generator, device=images.device, dtype=images.dtype)
        out = out + noise * _column(d.noise, images)
    h, w = out.shape[-2:]
    for i in np.flatnonzero(d.erase.any(axis=1)):
        x0, y0, x1, y1 = d.erase[i]
        generator = torch.Generator(device=images.device).manual_seed(d.seed + int(i) + 1)
        ys, xs = slice(int(y0 * h), max(int(y1 * h), int(y0 * h) + 1)), slice(int(x0 * w), max(int(x1 * w), int(x0 * w) + 1))
        patch = out[i, :, ys, xs]
        out[i, :, ys, xs] = torch.rand(patch.shape, generator=generator, device=images.device, dtype=images.dtype)
    return out.clamp_(0.0, 1.0)
