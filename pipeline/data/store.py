"""The crop store: one folder per dataset holding every crop as one uint8 array.

    images.npy   N x S x S x 3 uint8, opened as a memory map, so training never decodes a JPEG
    labels.csv   one row per crop: sample_id, yaw, pitch, roll, sequence, group, cx, cy (head
                 centre in crop pixels), crop box in the source image
    meta.json    dataset, source folder, crop rule, counts read / dropped by the +-99 filter
"""
from __future__ import annotations

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

    @property
    def ypr(self) -> np.ndarray:
        return self.labels[["yaw", "pitch", "roll"]].to_numpy(np.float32)

    def __len__(self) -> int:
        return len(self.labels)


def write_store(folder: Path, images: np.ndarray, labels: pd.DataFrame, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", images)
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
