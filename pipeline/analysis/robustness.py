"""Robustness (Bernoulli paper Fig. 10): a trained model on perturbed test images, no retraining.

Scores a checkpoint on its protocol's test rows (the centre crops evaluate uses), once clean and
`repeats` times (seeds 0, 1, ...) under each perturbation, every sample drawn anew each time
(params.yaml `robustness`):
- translation: the crop's content shifted by up to `shift` of its side in x and in y (uniform,
  independently), the uncovered border filled with zeros (black);
- occlusion: a black rectangle covering `occluded_area` (uniform) of the crop, aspect ratio
  between 1/2 and 2, placed uniformly inside it.
Writes robustness.json beside the checkpoint: per test set the clean Criterion I, and per
perturbation the Criterion I of every repeat with their mean and standard deviation; and logs
one MLflow run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.core.metrics import criterion_1
from pipeline.config.params import Robustness
from pipeline.core.angles import ANGLES
from pipeline.core.atomic import write_json
from pipeline.core.paths import CROPS, crop_store
from pipeline.data.protocols import rows
from pipeline.data.store import load_store
from pipeline.engine import tracking
from pipeline.engine.inference import load_checkpoint, predict_as_trained

KEYS = (*ANGLES, "mae")


def translate(rng: np.random.Generator, max_shift: float):
    """A perturbation: shift each image by up to max_shift of its side, zero fill."""
    def apply(images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        dx = rng.integers(-int(max_shift * w), int(max_shift * w) + 1, n)
        dy = rng.integers(-int(max_shift * h), int(max_shift * h) + 1, n)
        out = torch.zeros_like(images)
        for i in range(n):
            sx, sy = slice(max(0, -dx[i]), w - max(0, dx[i])), slice(max(0, -dy[i]), h - max(0, dy[i]))
            tx, ty = slice(max(0, dx[i]), w - max(0, -dx[i])), slice(max(0, dy[i]), h - max(0, -dy[i]))
            out[i, :, ty, tx] = images[i, :, sy, sx]
        return out
    return apply


def occlude(rng: np.random.Generator, area: tuple[float, float]):
    """A perturbation: a black rectangle over a random `area` share of each image."""
    def apply(images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        out = images.clone()
        share = rng.uniform(area[0], area[1], n)
        aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0), n))
        for i in range(n):
            rh = int(np.clip(round(np.sqrt(share[i] * h * w / aspect[i])), 1, h))
            rw = int(np.clip(round(share[i] * h * w / rh), 1, w))
            y0, x0 = rng.integers(0, h - rh + 1), rng.integers(0, w - rw + 1)
            out[i, :, y0 : y0 + rh, x0 : x0 + rw] = 0.0
        return out
    return apply


def perturbations(settings: Robustness) -> dict:
    """{name: (rng -> perturbation, description)} for the settings of params.yaml `robustness`."""
    low, high = settings.occluded_area
    return {"translation": (lambda rng: translate(rng, settings.shift), f"shift by up to {settings.shift:.0%} of the side in x and y, zero fill"),
            "occlusion": (lambda rng: occlude(rng, settings.occluded_area), f"black rectangle over {low:.0%}-{high:.0%} of the crop, aspect 1/2-2")}


def summarise(repeats: list[dict]) -> dict:
    """Mean and sample standard deviation (ddof 1; 0 for a single repeat) of each metric over the repeats."""
    ddof = 1 if len(repeats) > 1 else 0
    return {"mean": {k: float(np.mean([r[k] for r in repeats])) for k in KEYS},
            "std": {k: float(np.std([r[k] for r in repeats], ddof=ddof)) for k in KEYS}}


def robustness(out: Path, settings: Robustness, crops: Path = CROPS) -> dict:
    """Score out/model.pt clean and perturbed; write out/robustness.json and log an MLflow run."""
    model, ckpt = load_checkpoint(out / "model.pt")
    exp = ckpt.experiment
    protocol = exp.protocol
    kinds = perturbations(settings)
    report = {}
    for test_set in protocol.test:
        store = load_store(crop_store(test_set, exp.store_size, crops))
        idx = rows(store.labels, protocol, ckpt.split, test_set, "test")
        true = store.ypr[idx]
        run = lambda perturb=None: predict_as_trained(model, exp, store, idx, perturb=perturb)  # noqa: E731
        entry = {"clean": criterion_1(run(), true), "n": int(len(idx))}
        for kind, (make, description) in kinds.items():
            runs = []
            for seed in range(settings.repeats):
                pred = run(make(np.random.default_rng(seed)))
                runs.append({**criterion_1(pred, true), "seed": seed})
            entry[kind] = {"description": description, "repeats": runs, **summarise(runs)}
        report[test_set] = entry
    tags = {"stage": "robustness", "experiment": exp.name, "seed": exp.seed, "train_run_id": ckpt.train_run_id}
    with tracking.run(f"robustness:{exp.name}", tags) as (mlflow, active):
        mlflow.log_params({"repeats": settings.repeats, "shift": settings.shift, "occluded_area": str(list(settings.occluded_area))})
        mlflow.log_metrics({f"{ts}_{kind}_{stat}_mae": e[kind][stat]["mae"] for ts, e in report.items()
                            for kind in kinds for stat in ("mean", "std")} | {f"{ts}_clean_mae": e["clean"]["mae"] for ts, e in report.items()})
        report = {"run_id": active.info.run_id, "repeats": settings.repeats, "test_sets": report}
        write_json(out / "robustness.json", report)
        mlflow.log_artifact(str(out / "robustness.json"))
    return report
