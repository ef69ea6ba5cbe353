"""Pictures for the report: test crops with predicted and true pose axes (random samples and
the worst predictions), and Grad-CAM maps of binned-head models (DADL Fig. 10).

Axes follow the harness convention (pipeline.core.axes: red = the head's left-to-right, green =
up, blue = the facing direction). Predictions are solid lines, the truth dashed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.angles import ANGLES
from pipeline.core.axes import axis_segments
from pipeline.reporting.figures import contact_sheet
from pipeline.data.store import Store


def draw_pose(ax, pred, true, centre, length: float) -> None:
    for pose, style, width in ((true, "--", 1.0), (pred, "-", 1.8)):
        for a, b, colour in axis_segments(pose, centre, length):
            ax.plot([a[0], b[0]], [a[1], b[1]], style, color=colour, lw=width)


def store_rows(store: Store, sample_ids) -> np.ndarray:
    """Row of each sample id in the store (predictions CSVs name samples by id)."""
    where = pd.Series(np.arange(len(store)), index=store.labels["sample_id"].astype(str))
    return where[~where.index.duplicated()].reindex(pd.Index(sample_ids).astype(str)).to_numpy()


def pick_samples(predictions: pd.DataFrame, n: int = 8, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(n random rows, the n rows with the largest mean absolute error, worst first)."""
    err = predictions[[f"err_{a}" for a in ANGLES]].mean(axis=1)
    worst = predictions.assign(mean_err=err).sort_values("mean_err", ascending=False).head(n)
    random = predictions.assign(mean_err=err).sample(n=min(n, len(predictions)), random_state=seed)
    return random, worst


def prediction_sheet(store: Store, predictions: pd.DataFrame, path: Path, n: int = 8) -> Path | None:
    """Top row: n random test samples; bottom row: the n worst; axes drawn on each."""
    random, worst = pick_samples(predictions, n)
    chosen = pd.concat([random, worst])
    idx = store_rows(store, chosen["sample_id"])
    keep = ~pd.isna(idx)
    if not keep.any():
        return None
    chosen, idx = chosen[keep], idx[keep].astype(int)
    images = np.asarray(store.images[idx])
    centres = store.labels[["cx", "cy"]].to_numpy(float)[idx]
    true = chosen[[f"true_{a}" for a in ANGLES]].to_numpy()
    pred = chosen[[f"pred_{a}" for a in ANGLES]].to_numpy()
    labels = ["random"] * int(keep[:len(random)].sum()) + [f"worst {i + 1}" for i in range(int(keep[len(random):].sum()))]
    captions = [f"{lab}: err {e:.1f}\ntrue {t[0]:.0f}/{t[1]:.0f}/{t[2]:.0f}\npred {p[0]:.0f}/{p[1]:.0f}/{p[2]:.0f}"
                for lab, e, t, p in zip(labels, chosen["mean_err"], true, pred)]
    length = 0.35 * min(images.shape[1:3])
    return contact_sheet(images, captions, path, columns=n,
                         draw=lambda ax, i: draw_pose(ax, pred[i], true[i], centres[i], length))


def gradcam_samples(store: Store, idx: np.ndarray, n: int = 6) -> np.ndarray:
    """n test rows spanning the yaw range; from one sequence when the store has several (the
    same person in several poses, as in DADL Fig. 10)."""
    idx = np.asarray(idx)
    seqs = store.labels["sequence"].to_numpy()[idx]
    if len(set(seqs)) > 1:
        first = pd.Series(seqs).value_counts().index[0]
        idx = idx[seqs == first]
    order = idx[np.argsort(store.ypr[idx, 0], kind="stable")]
    return order[np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)]


def _target_layer(model):
    backbone = model.backbone
    if hasattr(backbone, "layer4"):
        return backbone.layer4[-1]
    import torch.nn as nn

    return [m for m in backbone.modules() if isinstance(m, nn.Conv2d)][-1]


def _strongest_bins(output):
    """Grad-CAM target: the sum over yaw, pitch and roll of each head's largest logit."""
    return output.max(dim=-1).values.sum()


def gradcam_maps(model, images) -> np.ndarray:
    """N x h x w Grad-CAM maps (0..1) of a model with three 66-bin heads (DADL, HopeNet) for
    N x 3 x h x w images in [0, 1], at the last block of its backbone."""
    from pytorch_grad_cam import GradCAM

    with GradCAM(model=model, target_layers=[_target_layer(model)]) as cam:
        return cam(input_tensor=images, targets=[_strongest_bins] * len(images))


def gradcam_sheet(models: dict, store: Store, idx: np.ndarray, size, path: Path) -> Path:
    """One row per model (name -> model), one column per sample: the Grad-CAM map over the input."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from pipeline.data.batches import make_batch, to_unit_float

    images, targets = make_batch(store, idx, size)
    images = to_unit_float(images)
    base = images.permute(0, 2, 3, 1).numpy()
    tiles, captions = [], []
    for name, model in models.items():
        maps = gradcam_maps(model.cpu(), images)
        pred = model.predict(model(images)).detach().numpy()
        for i in range(len(idx)):
            tiles.append(show_cam_on_image(base[i], maps[i], use_rgb=True, image_weight=0.55))
            t = targets["ypr"][i].numpy()
            captions.append(f"{name}\ntrue {t[0]:.0f}/{t[1]:.0f}/{t[2]:.0f}\npred {pred[i, 0]:.0f}/{pred[i, 1]:.0f}/{pred[i, 2]:.0f}")
    return contact_sheet(np.stack(tiles), captions, path, columns=len(idx))
