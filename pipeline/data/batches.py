"""Batches from a crop store: random crop + horizontal flip for training, centre crop otherwise."""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from pipeline.core import angles
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


def make_batch(store: Store, idx: np.ndarray, size: tuple[int, int], rng: np.random.Generator | None = None):
    """Images (N x 3 x h x w, float in [0, 1]) and targets for the samples `idx`; `size` is the
    input size (width, height).

    With `rng` (training): random crop and a horizontal flip of half the samples, with yaw and
    roll negated (pipeline.core.angles.flip_pose). Without: the centre crop, as at test time.
    """
    idx = np.asarray(idx)
    w, h = size
    order = np.argsort(idx)  # memory maps read fastest in file order
    raw = np.empty((len(idx),) + store.images.shape[1:], np.uint8)
    raw[order] = store.images[idx[order]]
    margin = np.array([raw.shape[2] - w, raw.shape[1] - h])
    ypr = store.ypr[idx].copy()
    centre = store.labels[["cx", "cy"]].to_numpy(np.float32)[idx]
    if rng is None:
        off = np.tile(margin // 2, (len(idx), 1))
        flip = np.zeros(len(idx), bool)
    else:
        off = np.stack([rng.integers(0, margin[0] + 1, len(idx)), rng.integers(0, margin[1] + 1, len(idx))], axis=1)
        flip = rng.random(len(idx)) < 0.5
    out = np.empty((len(idx), h, w, 3), np.uint8)
    for i, (ox, oy) in enumerate(off):
        crop = raw[i, oy : oy + h, ox : ox + w]
        out[i] = crop[:, ::-1] if flip[i] else crop
    centre = centre - off.astype(np.float32)
    centre[flip, 0] = w - 1 - centre[flip, 0]
    ypr[flip] = angles.flip_pose(ypr[flip])
    images = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
    return images, {"ypr": torch.from_numpy(ypr.astype(np.float32)), "centre": torch.from_numpy(centre)}


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index batches over range(n): shuffled when `rng` is given, the last one possibly short."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
