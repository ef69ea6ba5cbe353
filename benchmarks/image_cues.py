"""Which parts of the crop move a trained model's angles, on real and on synthetic faces: an
occlusion test that needs no training (issue: a model trained on the built-in data reads real
near-frontal faces with a pitch offset, and the faces' landmarks do not explain it).

    python -m benchmarks.image_cues --checkpoint results/sim2real/seed-0/model.pt \
        [--synthetic data/crops/aflw2000] [--real FOLDER] [--image cues.png] [--batchnorm]

The real folder (params.yaml `report.real_aflw2000` by default) is cropped with the checkpoint's
own crop settings, as `python -m pipeline.evaluate` crops it; the synthetic crops are the store of
`dvc repro crop` (its AFLW2000-style test set). Both keep their near-frontal samples (|yaw| < 30,
|pitch| < 30, |roll| < 15). Each region of `REGIONS` (a share of the crop's height and width) is
filled with each image's own mean colour, and the model predicts again: the mean of the
prediction minus the masked one is how far that region pushed each angle, relative to a blank. Where a region pushes
real and synthetic crops by different amounts, the two domains differ there in a way the model
reads as pose. The first row (nothing masked) gives each domain's mean error (predicted - true).

A second table reads both domains' crops again at coarser resolution (each crop averaged down
by 2, 4 or 8 and interpolated back), with each domain's resampling (median source pixels per
stored crop pixel: above 1 the crops were down-sampled from larger faces) and its median
sharpness (mean |Laplacian| of the grey crop over its standard deviation): where the real error
moves differently from the synthetic one as detail is removed, the fine detail of one domain is
read as pose.

A third table asks where that detail is: each region of `REGIONS` in turn is replaced by the same
pixels of the crop resampled to the pitch-view width and back (the checkpoint's `pitch_view`, or
two thirds of its input width; pipeline.data.augment.resample), and the model predicts again: the
prediction minus that one is how far the region's fine detail pushed each angle. Its last row (the
whole crop) is what reading the whole crop at the pitch-view width changes.

`--batchnorm` adds a fourth table, a test of where the domains differ inside the network (AdaBN,
Li et al., "Revisiting Batch Normalization For Practical Domain Adaptation", 2016): the running
statistics of the first quarter, half, three quarters and all of the model's BatchNorm layers (in
module order) are estimated again from all of one domain's crops and their mirrors, unlabelled, and
both domains' near-frontal crops are read with them. Where statistics from real crops move the
real error and statistics from synthetic crops do not, the two domains' features differ at that
depth in a way the model reads as pose. It looks at the real crops to understand the error, so it
is a diagnostic, not a way of scoring.

`--image` writes the mean crop of each domain's near-frontal samples in three pitch ranges (rows:
looking down, level, looking up; columns: real, synthetic), which shows framing, head outline,
neck and hair at a glance.
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.config.params import load_params
from pipeline.core.angles import ANGLES
from pipeline.core.errors import DataError, cli
from pipeline.data.augment import resample
from pipeline.data.cropping import cropped_folder
from pipeline.data.store import Store, load_store
from pipeline.engine.inference import load_checkpoint, predict
from pipeline.reporting.sections.real import real_folder

# name: (top, bottom, left, right) as shares of the crop; several boxes are masked together
REGIONS = {
    "top 0-0.2 (crown, hair)": ((0.0, 0.2, 0.0, 1.0),),
    "0.2-0.4 (brows, eyes)": ((0.2, 0.4, 0.0, 1.0),),
    "0.4-0.6 (nose)": ((0.4, 0.6, 0.0, 1.0),),
    "0.6-0.8 (mouth)": ((0.6, 0.8, 0.0, 1.0),),
    "bottom 0.8-1 (chin, neck)": ((0.8, 1.0, 0.0, 1.0),),
    "sides (outer 0.15)": ((0.0, 1.0, 0.0, 0.15), (0.0, 1.0, 0.85, 1.0)),
    "all (a blank crop)": ((0.0, 1.0, 0.0, 1.0),),  # what the model reads with no information at all
}
PITCH_ROWS = ((-35.0, -15.0), (-10.0, 10.0), (15.0, 35.0))
COARSER = (2, 4, 8)  # resolution factors of the second table
BN_SHARES = (0.25, 0.5, 0.75, 1.0)  # shares of the BatchNorm layers the fourth table estimates again
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def near_frontal(store: Store, yaw: float = 30.0, pitch: float = 30.0, roll: float = 15.0) -> np.ndarray:
    size = np.abs(store.ypr)
    return np.flatnonzero((size[:, 0] < yaw) & (size[:, 1] < pitch) & (size[:, 2] < roll))


def replace_boxes(boxes, replacement):
    """A `predict` perturbation: every box (top, bottom, left, right shares) of each image replaced by
    the same pixels of `replacement(images)` (an image batch of the same shape)."""
    def perturb(images: torch.Tensor) -> torch.Tensor:
        out, new = images.clone(), replacement(images)
        h, w = images.shape[-2:]
        for top, bottom, left, right in boxes:
            rows, cols = slice(round(top * h), round(bottom * h)), slice(round(left * w), round(right * w))
            out[..., rows, cols] = new[..., rows, cols]
        return out
    return perturb


def mask_boxes(boxes):
    """Every box filled with its image's mean colour."""
    return replace_boxes(boxes, lambda images: images.mean(dim=(2, 3), keepdim=True).expand_as(images))


def coarsen_boxes(boxes, width: int):
    """Every box replaced by its pixels in the image resampled to `width` pixels wide and back."""
    return replace_boxes(boxes, lambda images: resample(images, width).clamp_(0.0, 1.0))


def cue_shifts(model, store: Store, idx, size, regions=None, precision: str = "auto", change=mask_boxes) -> dict:
    """{region: mean (yaw, pitch, roll) push of the region: prediction minus the prediction with
    the region changed by `change(boxes)` (masked, by default)} over the samples `idx`, and "error":
    the unchanged mean error (predicted - true)."""
    regions = REGIONS if regions is None else regions
    idx = np.asarray(idx)
    base = predict(model, store, idx, size, precision=precision)
    out = {"error": (base - store.ypr[idx]).mean(0)}
    for name, boxes in regions.items():
        out[name] = (base - predict(model, store, idx, size, perturb=change(boxes), precision=precision)).mean(0)
    return out


def coarser(factor: int):
    """A `predict` perturbation: each image averaged down by `factor` and interpolated back to its size."""
    def perturb(images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        small = F.interpolate(images, size=(max(1, h // factor), max(1, w // factor)), mode="area")
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return perturb


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """Per image: mean |Laplacian| of the grey image over its standard deviation (contrast-free)."""
    grey = images.float().mean(1, keepdim=True)
    return F.conv2d(grey, LAPLACIAN.to(grey.device)).abs().mean(dim=(1, 2, 3)) / (grey.std(dim=(1, 2, 3)) + 1e-6)


def resolution_errors(model, store: Store, idx, size, factors=COARSER, precision: str = "auto") -> tuple[dict, float]:
    """({"error": the mean error (predicted - true) of the crops as they are, "coarser xF": the same
    with every crop at 1/F of its resolution}, the crops' median sharpness)."""
    idx = np.asarray(idx)
    seen = []

    def record(images):
        seen.append(sharpness(images).cpu().numpy())
        return images

    out = {"error": (predict(model, store, idx, size, perturb=record, precision=precision) - store.ypr[idx]).mean(0)}
    for f in factors:
        out[f"coarser x{f}"] = (predict(model, store, idx, size, perturb=coarser(f), precision=precision) - store.ypr[idx]).mean(0)
    return out, float(np.median(np.concatenate(seen)))


def batchnorm_layers(model) -> list:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def renormalised(model, store: Store, idx, size, share: float, precision: str = "auto"):
    """A copy of `model` whose first `share` of BatchNorm layers (module order) hold running
    statistics estimated from the crops `idx` of `store` and their mirrors (labels unused); the
    other layers and all weights as trained. `model` itself is not changed."""
    seen = []
    predict(model, store, idx, size, perturb=lambda images: seen.append(images.clone()) or images, precision=precision)
    images = torch.cat(seen)
    images = torch.cat([images, torch.flip(images, dims=[-1])])
    out = copy.deepcopy(model).eval()
    layers = batchnorm_layers(out)
    for layer in layers[:round(share * len(layers))]:
        layer.reset_running_stats()
        layer.momentum = None  # a plain average over all batches
        layer.train()
    for batch in torch.split(images, 128):
        out(batch)
    return out.eval()


def batchnorm_errors(model, stores: dict[str, Store], size, shares=BN_SHARES, precision: str = "auto") -> list[dict]:
    """For each of `stores` (name: store): {"error": its near-frontal mean error (predicted - true)
    as trained, and for each share and each source store, the same with `renormalised` statistics
    from all of the source store's crops}."""
    def error(m, store):
        idx = near_frontal(store)
        return (predict(m, store, idx, size, precision=precision) - store.ypr[idx]).mean(0)

    out = [{"error": error(model, store)} for store in stores.values()]
    total = len(batchnorm_layers(model))
    for share in shares:
        for source_name, source in stores.items():
            m = renormalised(model, source, np.arange(len(source.labels)), size, share, precision)
            for row, store in zip(out, stores.values()):
                row[f"first {round(share * total)} of {total} from {source_name}"] = error(m, store)
    return out


def resampling(store: Store, idx) -> float:
    """Median source-image pixels per stored crop pixel of the samples `idx` (above 1: down-sampled)."""
    side = (store.labels["bx1"] - store.labels["bx0"]).to_numpy()[np.asarray(idx)]
    return float(np.median(side / store.images.shape[2]))


def mean_crops(stores: list[Store], path: Path) -> Path:
    """A grid of mean near-frontal crops: a row per range of PITCH_ROWS, a column per store."""
    rows = []
    for lo, hi in PITCH_ROWS:
        cells = []
        for store in stores:
            idx = near_frontal(store, pitch=90.0)
            idx = idx[(store.ypr[idx, 1] > lo) & (store.ypr[idx, 1] < hi)]
            side = store.images.shape[1]
            cells.append(store.images[idx].astype(np.float32).mean(0) if len(idx) else np.zeros((side, side, 3), np.float32))
        rows.append(np.concatenate(cells, 1))
    grid = np.concatenate(rows, 0).clip(0, 255).astype(np.uint8)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2)).save(path)
    return path


def table(real: dict, synthetic: dict, first: str = "region", error: str = "mean error, nothing masked") -> str:
    head = f"| {first} | " + " | ".join(f"{a} real | {a} synthetic" for a in ANGLES) + " | pitch real - synthetic |"
    lines = [head, "|" + "---|" * (2 + 2 * len(ANGLES))]
    for name in real:
        label = error if name == "error" else name
        cells = " | ".join(f"{real[name][i]:+.2f} | {synthetic[name][i]:+.2f}" for i in range(len(ANGLES)))
        lines.append(f"| {label} | {cells} | {real[name][1] - synthetic[name][1]:+.2f} |")
    return "\n".join(lines)


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a model.pt trained on the built-in data")
    parser.add_argument("--synthetic", type=Path, default=Path("data/crops/aflw2000"), help="synthetic crop store")
    parser.add_argument("--real", type=Path, help="real AFLW2000 folder (default: params.yaml report.real_aflw2000)")
    parser.add_argument("--image", type=Path, help="also write the mean crops of both domains to this PNG")
    parser.add_argument("--batchnorm", action="store_true", help="add the fourth table: BatchNorm statistics estimated again from each domain")
    args = parser.parse_args(argv)
    real = args.real or real_folder(load_params().report.real_aflw2000)
    if not real.is_dir():
        raise DataError(f"{real}: real AFLW2000 folder not found; give --real FOLDER (images and .mat labels)")
    model, ckpt = load_checkpoint(args.checkpoint)
    exp = ckpt.experiment
    synthetic = load_store(args.synthetic)
    with cropped_folder("aflw2000", real, exp.crop) as real_store:
        if real_store.images.shape[1:] != synthetic.images.shape[1:]:
            raise DataError(f"{args.synthetic}: crops of {synthetic.images.shape[1]} px, the checkpoint crops at "
                            f"{real_store.images.shape[1]} px; give the crop store it was trained beside (--synthetic)")
        view = exp.pitch_view or round(2 * exp.input_size[0] / 3)
        coarse_regions = {("whole crop" if name.startswith("all") else name): boxes for name, boxes in REGIONS.items()}
        shifts, resolution, sharp, resampled, detail = [], [], [], [], []
        for name, store in (("real", real_store), ("synthetic", synthetic)):
            idx = near_frontal(store)
            if len(idx) < 10:
                raise DataError(f"{store.path}: {len(idx)} near-frontal samples (|yaw| < 30, |pitch| < 30, |roll| < 15), need 10; "
                                "give a larger folder or store")
            print(f"{name}: {len(idx)} near-frontal crops, mean true pitch {store.ypr[idx, 1].mean():+.1f}")
            shifts.append(cue_shifts(model, store, idx, exp.input_size, precision=exp.precision))
            errors, median_sharpness = resolution_errors(model, store, idx, exp.input_size, precision=exp.precision)
            resolution.append(errors)
            sharp.append(median_sharpness)
            resampled.append(resampling(store, idx))
            detail.append(cue_shifts(model, store, idx, exp.input_size, coarse_regions, exp.precision,
                                     change=lambda boxes: coarsen_boxes(boxes, view)))
        print("\nHow far each region pushes the predicted angles (deg): the prediction minus the prediction with the region "
              "filled with the image's mean colour:\n")
        print(table(*shifts))
        print(f"\nThe same crops at coarser resolution: mean error (predicted - true, deg). Resampling (source pixels per crop "
              f"pixel, median) real {resampled[0]:.2f}, synthetic {resampled[1]:.2f}; median sharpness (mean |Laplacian| / "
              f"std of the grey input) real {sharp[0]:.3f}, synthetic {sharp[1]:.3f}\n")
        print(table(*resolution, first="resolution", error="as stored"))
        print(f"\nHow far each region's fine detail pushes the predicted angles (deg): the prediction minus the prediction "
              f"with the region read at {view} px wide (resampled and back):\n")
        print(table(*detail, error="mean error, as stored"))
        if args.batchnorm:
            if not batchnorm_layers(model):
                raise DataError(f"{args.checkpoint}: the model has no BatchNorm layers; leave out --batchnorm")
            print("\nMean error (predicted - true, deg) of the near-frontal crops with the running statistics of the first "
                  "BatchNorm layers (module order) estimated again from all of one domain's crops and their mirrors:\n")
            errors = batchnorm_errors(model, {"real": real_store, "synthetic": synthetic}, exp.input_size, precision=exp.precision)
            print(table(*errors, first="BatchNorm statistics", error="as trained"))
        if args.image:
            print(f"\nmean crops (columns real, synthetic; rows pitch {PITCH_ROWS}): {mean_crops([real_store, synthetic], args.image)}")


if __name__ == "__main__":
    main()
