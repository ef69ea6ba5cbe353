"""Crop stage: raw dataset folders -> one crop store per dataset under data/crops/.

    python -m pipeline.crop
"""
from __future__ import annotations

import json
import multiprocessing as mp

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from pipeline import crops, readers
from pipeline.atomic import atomic_dir
from pipeline.errors import DataError, ConfigError, cli
from pipeline.params import load_params, section
from pipeline.paths import CROPS, RAW
from pipeline.store import write_store

# dataset name -> (raw folder, role). Training sets draw HopeNet's k per sample.
DATASETS = {
    "300w_lp": ("300W_LP", "train"),
    "aflw2000": ("AFLW2000", "test"),
    "biwi": ("hpdb", "test"),
}


def _cut_one(job):
    image_path, box, size = job
    try:
        with Image.open(image_path) as im:
            im.load()
            return crops.cut(im, box, size)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"{image_path}: image does not decode ({exc.__class__.__name__}); re-extract it or delete it with its label file") from None


def crop_boxes(table: pd.DataFrame, rule: str, role: str, cfg: dict, rng) -> np.ndarray:
    boxes = table[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)
    if rule == "box":
        return boxes
    lo, hi = cfg["train_k"]
    ks = rng.uniform(lo, hi, len(boxes)) if role == "train" else np.full(len(boxes), float(cfg["test_k"]))
    return np.array([crops.crop_box(b, rule, k) for b, k in zip(boxes, ks)])


def build_store(name: str, samples: readers.Samples, rule: str, role: str, cfg: dict, out, source: str = "unknown", workers: int = 2) -> dict:
    table = samples.table
    size = int(cfg["store_size"])
    boxes = crop_boxes(table, rule, role, cfg, np.random.default_rng([int(cfg["seed"]), len(name)]))
    images = np.zeros((len(table), size, size, 3), np.uint8)
    jobs = [(p, b, size) for p, b in zip(table["image"], boxes)]
    with mp.get_context("fork").Pool(workers) as pool:
        for i, arr in enumerate(tqdm(pool.imap(_cut_one, jobs, chunksize=32), total=len(jobs), desc=f"crop {name}", unit="img")):
            images[i] = arr
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    labels = table.assign(
        cx=(table["cx"] - boxes[:, 0]) / w * size,
        cy=(table["cy"] - boxes[:, 1]) / h * size,
        bx0=boxes[:, 0], by0=boxes[:, 1], bx1=boxes[:, 2], by1=boxes[:, 3],
    )
    meta = {
        "dataset": name, "source": source, "role": role, "rule": rule, "store_size": size,
        "n_read": samples.n_read, "n_filtered": samples.n_filtered, "n": len(table),
    }
    write_store(out / name, images, labels, meta)
    return meta


def read_dataset(name: str, folder, cfg: dict) -> readers.Samples:
    if name == "300w_lp":
        return readers.read_300w_lp(folder)
    if name == "aflw2000":
        return readers.read_aflw2000(folder)
    return readers.read_biwi(folder, box_mm=float(cfg["biwi_box_mm"]))


def rule_for(name: str, cfg: dict) -> str:
    return "box" if name == "biwi" else cfg["rule"]


@cli
def main():
    cfg = section(load_params(), "crop")
    if cfg.get("rule") not in ("hopenet", "fsanet"):
        raise ConfigError(f"params.yaml crop.rule: {cfg.get('rule')!r} is not a crop rule; use hopenet or fsanet")
    present = {n: RAW / d for n, (d, _) in DATASETS.items() if (RAW / d).exists()}
    if not present:
        raise DataError(f"{RAW}: no dataset folder ({', '.join(d for d, _ in DATASETS.values())}); run `dvc repro download` first")
    source_file = RAW / "source.json"
    source = json.loads(source_file.read_text())["source"] if source_file.is_file() else "unknown"
    with atomic_dir(CROPS) as out:
        for name, folder in present.items():
            samples = read_dataset(name, folder, cfg)
            print(f"{name}: {samples.summary()}")
            build_store(name, samples, rule_for(name, cfg), DATASETS[name][1], cfg, out, source)
        (out / "index.json").write_text(json.dumps(sorted(present), indent=2) + "\n")


if __name__ == "__main__":
    main()
