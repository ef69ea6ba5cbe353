"""Building crop stores: one dataset folder -> one crop store (pipeline.data.store).

300W-LP is cropped with the training margin (HopeNet: k drawn per sample), AFLW2000 with the
test margin, BIWI with a square box around the head centre projected through rgb.cal, and
FSA-Net's BIWI .npz crops are only resized. BIWI is also stored as whole frames
(`biwi_frames`, crop.frame_size) for the Bernoulli heatmap's input with background ("BG").
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from pipeline.config.params import Crop
from pipeline.core import failpoints
from pipeline.core.errors import DataError
from pipeline.core.workers import quiet_worker
from pipeline.data import croprules, readers
from pipeline.data.store import load_store, write_store

ROLE = {"300w_lp": "train", "aflw2000": "test", "biwi": "test", "biwi_npz": "test"}


def _cut_one(job):
    image_path, box, size = job
    try:
        with Image.open(image_path) as im:
            im.load()
            return croprules.cut(im, box, size)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"{image_path}: image does not decode ({exc.__class__.__name__}); re-extract it or delete it with its label file") from None


def name_seed(name: str) -> int:
    """A dataset's own stream of crop margins, from its name (not its length: aflw2000 and
    biwi_npz both have 8 letters)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def crop_boxes(table: pd.DataFrame, rule: str, role: str, cfg: Crop, rng) -> np.ndarray:
    boxes = table[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)
    if rule == "box":
        return boxes
    lo, hi = cfg.train_k
    ks = rng.uniform(lo, hi, len(boxes)) if role == "train" else np.full(len(boxes), float(cfg.test_k))
    return np.array([croprules.crop_box(b, rule, k) for b, k in zip(boxes, ks)]).reshape(-1, 4)


def workers_for(cfg: Crop) -> int:
    """crop.workers, where 0 means one process per CPU core."""
    return cfg.workers or os.cpu_count() or 1


def cut_files(table: pd.DataFrame, boxes: np.ndarray, size: int, desc: str, workers: int = 2):
    """Yield the crops of image files, decoded in `workers` processes, in table order."""
    jobs = [(p, b, size) for p, b in zip(table["image"], boxes)]
    with mp.get_context("fork").Pool(workers, initializer=quiet_worker) as pool:
        for crop in tqdm(pool.imap(_cut_one, jobs, chunksize=32), total=len(jobs), desc=desc, unit="img"):
            failpoints.hit("crop.image")
            yield crop


def resize_all(pixels: np.ndarray, size: tuple[int, int], desc: str):
    for p in tqdm(pixels, desc=desc, unit="img"):
        yield np.asarray(Image.fromarray(p).resize(size, Image.BILINEAR))


def _frame_one(job):
    path, size = job
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize(size, Image.BILINEAR))


def crop_frames(samples: readers.Samples, source: str, cfg: Crop, out, workers: int = 2) -> dict:
    """BIWI full frames resized to crop.frame_size (the Bernoulli paper's "BG" input, 128 x 96),
    with the projected head centre; stored as the dataset `biwi_frames`."""
    size = tuple(cfg.frame_size)
    table = samples.table
    with Image.open(table["image"].iloc[0]) as im:
        full = np.array([[0, 0, im.width, im.height]], np.float64)
    boxes = np.repeat(full, len(table), axis=0)
    jobs = [(p, size) for p in table["image"]]
    with mp.get_context("fork").Pool(workers, initializer=quiet_worker) as pool:
        images = tqdm(pool.imap(_frame_one, jobs, chunksize=32), total=len(jobs), desc="frames biwi", unit="img")
        return build_store("biwi_frames", samples, boxes, images, size, out, {"source": source, "rule": "full frame"})


def build_store(name: str, samples: readers.Samples, boxes: np.ndarray, images, size, out, meta: dict) -> dict:
    """Write data/crops/<name>: the crops `images` yields (one per sample, in order, `size` =
    side or (width, height)), streamed to disk, and labels with the head centre moved into crop
    pixels."""
    table = samples.table
    width, height = (size, size) if isinstance(size, int) else size
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    labels = table.assign(cx=(table["cx"] - boxes[:, 0]) / w * width, cy=(table["cy"] - boxes[:, 1]) / h * height,
                          bx0=boxes[:, 0], by0=boxes[:, 1], bx1=boxes[:, 2], by1=boxes[:, 3])
    meta = {"dataset": name, "store_size": [width, height], "n_read": samples.n_read, "n_filtered": samples.n_filtered, "n": len(table),
            "n_unlabelled": samples.n_unlabelled, **meta}
    write_store(out / name, images, labels, meta, size=(width, height))
    return meta


def crop_dataset(name: str, folder, source: str, cfg: Crop, out, workers: int | None = None, role: str | None = None) -> dict:
    """Read one dataset folder and write its crop store to out/<name>, decoding images in `workers`
    processes (default crop.workers). `role` "train" draws HopeNet's margin per sample; by default
    300W-LP is cropped as training data, the rest as test."""
    role = role or ROLE[name]
    workers = workers or workers_for(cfg)
    size = cfg.store_size
    if name == "biwi_npz":
        samples, pixels = readers.read_biwi_npz(folder)
        print(f"{name}: {samples.summary()}")
        boxes = samples.table[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)
        return build_store(name, samples, boxes, resize_all(pixels, (size, size), f"resize {name}"), size, out, {"source": source, "rule": "as given"})
    if name == "300w_lp":
        samples = readers.read_300w_lp(folder)
    elif name == "aflw2000":
        samples = readers.read_aflw2000(folder)
    else:
        samples = readers.read_biwi(folder, box_mm=cfg.biwi_box_mm)
    print(f"{name}: {samples.summary()}")
    rule = "box" if name == "biwi" else cfg.rule
    boxes = crop_boxes(samples.table, rule, role, cfg, np.random.default_rng([cfg.seed, name_seed(name)]))
    images = cut_files(samples.table, boxes, size, f"crop {name}", workers)
    meta = build_store(name, samples, boxes, images, size, out, {"source": source, "rule": rule, "role": role})
    if name == "biwi" and cfg.frame_size:
        crop_frames(samples, source, cfg, out, workers)
    return meta


@contextmanager
def cropped_folder(name: str, folder, cfg: Crop, role: str = "test"):
    """The crop store of one dataset folder, cut into a temporary directory that lives as long as
    the `with` block (a folder scored once, such as real AFLW2000 images: nothing is left behind)."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-crops-") as tmp:
        crop_dataset(name, Path(folder), str(folder), cfg, Path(tmp), role=role)
        yield load_store(Path(tmp) / name)
