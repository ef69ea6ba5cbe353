"""The crop store: one folder per dataset holding every crop as one uint8 array.

    images.npy   N x S x S x 3 uint8, opened as a memory map, so training never decodes a JPEG
    labels.csv   one row per crop: sample_id, yaw, pitch, roll, sequence, group, cx, cy (head
                 centre in crop pixels), crop box in the source image
    meta.json    dataset, source folder, crop rule, counts read / dropped by the +-99 filter
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError

LABEL_COLUMNS = ["sample_id", "yaw", "pitch", "roll", "sequence", "group", "cx", "cy", "bx0", "by0", "bx1", "by1"]


@dataclass
class Store:
    path: Path
    images: np.ndarray  # memory-mapped N x S x S x 3 uint8
    labels: pd.DataFrame
    meta: dict

    @functools.cached_property
    def ypr(self) -> np.ndarray:
        """N x 3 float32 (yaw, pitch, roll) degrees."""
        return self.labels[["yaw", "pitch", "roll"]].to_numpy(np.float32)

    @functools.cached_property
    def centres(self) -> np.ndarray:
        """N x 2 float32 head centre (x, y) in the stored image's pixels."""
        return self.labels[["cx", "cy"]].to_numpy(np.float32)

    @functools.cached_property
    def pixels(self) -> np.ndarray:
        """The images as N x S x S x 1 items of 3 bytes (one per pixel), the same memory."""
        return self.images.view(np.dtype((np.void, 3)))

    def __len__(self) -> int:
        return len(self.labels)


def write_images(path: Path, shape: tuple[int, ...], crops) -> None:
    """images.npy of `shape` (N x H x W x 3 uint8) written from the crops `crops` yields, one after
    another, straight to the file: memory stays flat however many images the store holds."""
    n, height, width, _ = shape
    written = 0
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.dtype(np.uint8).str, "fortran_order": False, "shape": tuple(shape)})
        for crop in crops:
            crop = np.ascontiguousarray(crop, dtype=np.uint8)
            if crop.shape != (height, width, 3):
                raise DataError(f"{path}: crop {written} is {crop.shape}, the store holds {(height, width, 3)}")
            f.write(crop.data)
            written += 1
    if written != n:
        raise DataError(f"{path}: {written} crops written, {n} expected; run `dvc repro crop` again")


def write_store(folder: Path, images, labels: pd.DataFrame, meta: dict, size: tuple[int, int] | None = None) -> None:
    """A crop store in `folder`: `images` is an N x H x W x 3 uint8 array, or an iterable of crops of
    `size` (width, height) in label order, streamed to disk."""
    folder.mkdir(parents=True, exist_ok=True)
    if size is None:
        size = (images.shape[2], images.shape[1])
    write_images(folder / "images.npy", (len(labels), size[1], size[0], 3), images)
    labels[LABEL_COLUMNS].to_csv(folder / "labels.csv", index=False, float_format="%.6f")
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_store(folder: Path) -> Store:
    folder = Path(folder)
    files = [folder / n for n in ("images.npy", "labels.csv", "meta.json")]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{folder}: crop store incomplete (missing {', '.join(missing)}); run `dvc repro crop`")
    images = np.load(files[0], mmap_mode="r")
    labels = pd.read_csv(files[1], dtype={"sequence": str, "group": str, "sample_id": str}, keep_default_na=False)
    if images.ndim != 4 or images.shape[0] != len(labels) or images.shape[3] != 3:
        raise DataError(f"{folder}: images.npy {images.shape} does not match labels.csv ({len(labels)} rows); run `dvc repro crop`")
    return Store(path=folder, images=images, labels=labels, meta=json.loads(files[2].read_text()))


def fingerprint(folder: Path) -> str:
    """Short content hash of a crop store, logged with every run that reads it."""
    h = hashlib.sha256()
    for name in ("labels.csv", "meta.json", "images.npy"):
        with open(Path(folder) / name, "rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()[:16]
