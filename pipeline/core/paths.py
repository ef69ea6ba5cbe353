"""Where things live. Stages take these paths; nothing else hard-codes them."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
RAW = ROOT / "data" / "raw"
CROPS = ROOT / "data" / "crops"
RESULTS = ROOT / "results"
REPORTS = ROOT / "reports"
CACHE = ROOT / "cache"  # resume states and other scratch that DVC must not delete
ASYMMETRY_FIT = RESULTS / "asymmetry" / "fit.json"  # the asymmetry stage's per-angle sigmas


def project_root() -> Path:
    """The user's repository, also when DVC runs us in a temporary copy under .dvc/tmp/exps/."""
    parts = ROOT.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return ROOT


def crop_store(dataset: str, store_size: int | None = None, crops: Path = CROPS) -> Path:
    """The crop store of `dataset`: data/crops/<dataset>/ at crop.store_size (store_size None), or
    data/crops/<side>px/<dataset>/ at one of crop.extra_store_sizes (an experiment's store_size)."""
    return crops / dataset if store_size is None else crops / f"{store_size}px" / dataset


def crop_stores(crops: Path = CROPS) -> list[Path]:
    """Every store folder under `crops` as crop_store names them, relative to it: the datasets at
    crop.store_size, then those of each extra side (<side>px/<dataset>)."""
    folders = sorted(p for p in crops.iterdir() if p.is_dir()) if crops.is_dir() else []
    extra = {p for p in folders if re.fullmatch(r"\d+px", p.name)}
    return [Path(p.name) for p in folders if p not in extra] + [Path(s.name, p.name) for s in sorted(extra) for p in sorted(s.iterdir()) if p.is_dir()]


def experiment_dir(name: str) -> Path:
    return RESULTS / name


def run_dir(name: str, seed: int) -> Path:
    """results/<name>/seed-<seed>/: one training run of an experiment and everything scored from it."""
    return RESULTS / name / f"seed-{seed}"


def experiment_config_file(name: str) -> Path:
    """results/<name>/config.json: the experiment resolved by the configure stage, read by train."""
    return RESULTS / name / "config.json"
