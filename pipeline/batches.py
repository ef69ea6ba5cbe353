"""Batches from a crop store: random crop + horizontal flip for training, centre crop otherwise."""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from pipeline import angles
from pipeline.store import Store


def validation_mask(groups, fraction: float, seed: int) -> np.ndarray:
    """True for samples in the validation split; whole groups (a sample and its flip twin, a
    BIWI sequence) fall on one side, chosen by a seeded hash so it never depends on order."""
    def score(g):
        return int.from_bytes(hashlib.sha256(f"{seed}:{g}".encode()).digest()[:8], "big") / 2**64

    scores = {g: score(g) for g in set(groups)}
    return np.array([scores[g] < fraction for g in groups], dtype=bool)


def make_batch(store: Store, idx: np.ndarray, size: int, rng: np.random.Generator | None = None):
    """Images (N x 3 x size x size, float in [0, 1]) and targets for the samples `idx`.

    With `rng` (training): random crop and a horizontal flip of half the samples, with yaw and
    roll negated (pipeline.angles.flip_pose). Without: the centre crop, as at test time.
    """
    idx = np.asarray(idx)
    order = np.argsort(idx)  # memory maps read fastest in file order
    raw = np.empty((len(idx),) + store.images.shape[1:], np.uint8)
    raw[order] = store.images[idx[order]]
    full = raw.shape[1]
    margin = full - size
    ypr = store.ypr[idx].copy()
    centre = store.labels[["cx", "cy"]].to_numpy(np.float32)[idx]
    if rng is None:
        off = np.full((len(idx), 2), margin // 2)
        flip = np.zeros(len(idx), bool)
    else:
        off = rng.integers(0, margin + 1, size=(len(idx), 2))
        flip = rng.random(len(idx)) < 0.5
    out = np.empty((len(idx), size, size, 3), np.uint8)
    for i, (ox, oy) in enumerate(off):
        crop = raw[i, oy : oy + size, ox : ox + size]
        out[i] = crop[:, ::-1] if flip[i] else crop
    centre = centre - off.astype(np.float32)
    centre[flip, 0] = size - 1 - centre[flip, 0]
    ypr[flip] = angles.flip_pose(ypr[flip])
    images = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
    return images, {"ypr": torch.from_numpy(ypr.astype(np.float32)), "centre": torch.from_numpy(centre)}


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index batches over range(n): shuffled when `rng` is given, the last one possibly short."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
