"""Robustness stage (Bernoulli paper Fig. 10): a trained model on perturbed test images, no retraining.

    python -m pipeline.robustness EXPERIMENT [--repeats 5]

Scores results/EXPERIMENT/model.pt on its protocol's test rows (the centre crops evaluate uses),
once clean and `repeats` times (seeds 0, 1, ...) under each perturbation, every sample drawn
anew each time:
- translation: the crop's content shifted by up to SHIFT of its side in x and in y (uniform,
  independently), the uncovered border filled with zeros (black);
- occlusion: a black rectangle covering OCCLUDED_AREA (uniform) of the crop, aspect ratio
  between 1/2 and 2, placed uniformly inside it.
Writes results/EXPERIMENT/robustness.json: per test set the clean Criterion I, and per
perturbation the Criterion I of every repeat with their mean and standard deviation; and logs
one MLflow run.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from pipeline import tracking
from pipeline.angles import ANGLES
from pipeline.atomic import write_json
from pipeline.errors import cli
from pipeline.inference import load_checkpoint, predict
from pipeline.metrics import criterion_1
from pipeline.paths import CROPS, experiment_dir
from pipeline.protocols import rows
from pipeline.store import load_store

SHIFT = 0.10                 # largest shift, as a share of the crop side
OCCLUDED_AREA = (0.10, 0.25)  # share of the crop a rectangle covers
KEYS = (*ANGLES, "mae")


def translate(rng: np.random.Generator, max_shift: float = SHIFT):
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


def occlude(rng: np.random.Generator, area: tuple[float, float] = OCCLUDED_AREA):
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


PERTURBATIONS = {"translation": (translate, f"shift by up to {SHIFT:.0%} of the side in x and y, zero fill"),
                 "occlusion": (occlude, f"black rectangle over {OCCLUDED_AREA[0]:.0%}-{OCCLUDED_AREA[1]:.0%} of the crop, aspect 1/2-2")}


def summarise(repeats: list[dict]) -> dict:
    """Mean and sample standard deviation (ddof 1; 0 for a single repeat) of each metric over the repeats."""
    ddof = 1 if len(repeats) > 1 else 0
    return {"mean": {k: float(np.mean([r[k] for r in repeats])) for k in KEYS},
            "std": {k: float(np.std([r[k] for r in repeats], ddof=ddof)) for k in KEYS}}


def robustness(name: str, repeats: int = 5, results=None, crops=None) -> dict:
    out = (results / name) if results else experiment_dir(name)
    crops = crops or CROPS
    model, ckpt = load_checkpoint(out / "model.pt")
    config = ckpt["config"]
    protocol = config["protocol"]
    report = {}
    for test_set in protocol["test"]:
        store = load_store(crops / test_set)
        idx = rows(store.labels, protocol, ckpt.get("split"), test_set, "test")
        true = store.ypr[idx]
        entry = {"clean": criterion_1(predict(model, store, idx, config["input_size"]), true), "n": int(len(idx))}
        for kind, (make, description) in PERTURBATIONS.items():
            runs = []
            for seed in range(repeats):
                pred = predict(model, store, idx, config["input_size"], perturb=make(np.random.default_rng(seed)))
                runs.append({**criterion_1(pred, true), "seed": seed})
            entry[kind] = {"description": description, "repeats": runs, **summarise(runs)}
        report[test_set] = entry
    tags = {"stage": "robustness", "experiment": name, "train_run_id": ckpt.get("train_run_id", "")}
    with tracking.run(f"robustness:{name}", tags) as (mlflow, active):
        mlflow.log_params({"repeats": repeats, "shift": SHIFT, "occluded_area": str(OCCLUDED_AREA)})
        mlflow.log_metrics({f"{ts}_{kind}_{stat}_mae": e[kind][stat]["mae"] for ts, e in report.items()
                            for kind in PERTURBATIONS for stat in ("mean", "std")} | {f"{ts}_clean_mae": e["clean"]["mae"] for ts, e in report.items()})
        report = {"run_id": active.info.run_id, "repeats": repeats, "test_sets": report}
        write_json(out / "robustness.json", report)
        mlflow.log_artifact(str(out / "robustness.json"))
    return report


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="name under 'experiments' in params.yaml (reads results/NAME/model.pt)")
    parser.add_argument("--repeats", type=int, default=5, help="random repeats per perturbation, seeds 0..N-1 (default 5)")
    args = parser.parse_args(argv)
    for test_set, e in robustness(args.experiment, args.repeats)["test_sets"].items():
        shown = ", ".join(f"{kind} {e[kind]['mean']['mae']:.2f} +- {e[kind]['std']['mae']:.2f}" for kind in PERTURBATIONS)
        print(f"{args.experiment} on {test_set}: clean MAE {e['clean']['mae']:.2f}; {shown} deg (mean +- std of {args.repeats})")


if __name__ == "__main__":
    main()
