"""Batches from a crop store: random crop + horizontal flip for training, centre crop otherwise.

A batch is planned (its random draws), cut (uint8 copies from the memory-mapped store) and turned
into floats only on the device the model runs on, so 4 times fewer bytes cross to a GPU;
pipeline.engine.loader cuts batches ahead in a background thread while the model works.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.config.params import Augment
from pipeline.core import angles
from pipeline.data import augment
from pipeline.data.store import Store


def validation_mask(groups, fraction: float, seed: int) -> np.ndarray:
    """True for samples in the validation split: round(fraction * groups) whole groups (a sample
    and its flip twin, a BIWI sequence), at least one when fraction > 0 and there are two or more
    groups, chosen by a seeded hash so the choice never depends on order."""
    def score(g):
        return hashlib.sha256(f"{seed}:{g}".encode()).digest()

    unique = sorted(set(groups), key=score)
    n_val = int(round(fraction * len(unique)))
    if fraction > 0 and len(unique) >= 2:
        n_val = min(max(n_val, 1), len(unique) - 1)
    chosen = set(unique[:n_val])
    return np.array([g in chosen for g in groups], dtype=bool)


@dataclass(frozen=True)
class BatchPlan:
    """Which samples a batch holds and how each is cut: the top-left corner of its crop in the
    stored image (x, y) and whether it is mirrored."""

    idx: np.ndarray
    offsets: np.ndarray  # N x 2 ints
    flips: np.ndarray  # N bools
    size: tuple[int, int]  # (width, height)
    augment: augment.Draws | None = None  # photometric augmentation, applied on the device


def plan_batch(store: Store, idx, size: tuple[int, int], rng: np.random.Generator | None = None,
               augmentation: Augment | None = None) -> BatchPlan:
    """With `rng` (training): a random crop and a horizontal flip for half the samples, and the
    draws of `augmentation` if given; without: the centre crop, as at test time. The random draws,
    and their order, are the whole of a batch's randomness: planning batches one after another
    with one generator gives the same batches whichever thread later cuts them."""
    idx = np.asarray(idx)
    w, h = size
    margin = np.array([store.images.shape[2] - w, store.images.shape[1] - h])
    if rng is None:
        offsets = np.tile(margin // 2, (len(idx), 1))
        flips = np.zeros(len(idx), bool)
    else:
        offsets = np.stack([rng.integers(0, margin[0] + 1, len(idx)), rng.integers(0, margin[1] + 1, len(idx))], axis=1)
        flips = rng.random(len(idx)) < 0.5
    draws = augment.draw(rng, len(idx), augmentation) if rng is not None and augmentation is not None else None
    return BatchPlan(idx, offsets, flips, (w, h), draws)


def cut_batch(store: Store, plan: BatchPlan, out: np.ndarray | None = None, part: slice = slice(None)) -> np.ndarray:
    """The planned crops, N x h x w x 3 uint8, copied straight from the store (into `out` if given);
    with `part`, only those samples of the batch (threads cut the parts of one batch into one `out`:
    numpy releases the GIL while it copies)."""
    w, h = plan.size
    out = np.empty((len(plan.idx), h, w, 3), np.uint8) if out is None else out
    pixels = store.pixels  # the store as 3-byte items: a mirrored row is copied item by item, not byte by byte
    view = out.view(pixels.dtype)[..., 0]
    for i in range(len(plan.idx))[part]:
        (ox, oy), j = plan.offsets[i], plan.idx[i]
        if plan.flips[i]:
            view[i] = pixels[j, oy : oy + h, ox : ox + w, 0][:, ::-1]
        else:  # whole rows of bytes: the copy runs at memory speed
            out[i] = store.images[j, oy : oy + h, ox : ox + w]
    return out


def batch_targets(store: Store, plan: BatchPlan) -> dict[str, torch.Tensor]:
    """"ypr" (N x 3 degrees; yaw and roll negated for a mirrored crop, pipeline.core.angles.flip_pose)
    and "centre" (N x 2, the head centre in the crop's pixels)."""
    w, _ = plan.size
    ypr = store.ypr[plan.idx].copy()
    centre = store.centres[plan.idx] - plan.offsets.astype(np.float32)
    centre[plan.flips, 0] = w - 1 - centre[plan.flips, 0]
    ypr[plan.flips] = angles.flip_pose(ypr[plan.flips])
    return {"ypr": torch.from_numpy(ypr.astype(np.float32)), "centre": torch.from_numpy(centre)}


def as_images(pixels: np.ndarray) -> torch.Tensor:
    """N x h x w x 3 uint8 -> N x 3 x h x w uint8 tensor (the same memory, channels-last strides)."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1], memory format kept (do it on the device the model runs on)."""
    return images.float().div_(255.0)


def make_batch(store: Store, idx, size: tuple[int, int], rng: np.random.Generator | None = None):
    """(uint8 images N x 3 x h x w, targets) for the samples `idx`; `size` is the input size (width,
    height); see plan_batch. pipeline.engine.loader turns the images into the model's input."""
    plan = plan_batch(store, idx, size, rng)
    return as_images(cut_batch(store, plan)), batch_targets(store, plan)


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index batches over range(n): shuffled when `rng` is given, the last one possibly short."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
