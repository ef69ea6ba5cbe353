"""Asymmetry analysis (DADL Figs. 1, 4, 5): how fast images stop looking alike as the head
turns away from the frontal pose, along yaw, pitch and roll.

A small LeNet (models/lenet.py) is trained on the protocol's training crops with the one training
loop. Its last fully connected features give, for each angle, the mean cosine similarity between
centre-pose images (the `centre_images` most frontal ones) and the images of every other bin
along that angle (the other two angles within `tolerance`). A Gaussian a*exp(-(x-mu)^2/2s^2)+c is
fitted per angle (between-angle asymmetry: different s), and one with separate widths left and
right of mu (within-angle asymmetry).

Writes results/asymmetry/fit.json and similarity.png. A DADL experiment with `sigma: asymmetry`
takes its per-angle label sigmas from fit.json: the fitted widths rescaled so that their mean is
`mean_sigma` bins (the fit measures relative widths; the label's absolute width stays a choice).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import curve_fit

from pipeline.config.experiment import resolve_experiment
from pipeline.config.params import Params
from pipeline.core.angles import ANGLES
from pipeline.core.atomic import write_json
from pipeline.core.errors import DataError
from pipeline.core.paths import CROPS, experiment_dir
from pipeline.data.batches import batches, make_batch, to_unit_float
from pipeline.data.protocols import rows
from pipeline.data.store import load_store
from pipeline.engine import tracking
from pipeline.engine.inference import load_checkpoint
from pipeline.engine.training import train_experiment

OUT = "asymmetry"


def similarity_curves(features: np.ndarray, ypr: np.ndarray, bin_width: float, tolerance: float, max_offset: float,
                      centre_images: int = 50) -> dict:
    """Per angle: bin centres (degrees), mean cosine similarity to the centre-pose images, counts;
    plus the largest |angle| among the centre images."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    frontal = np.abs(ypr).max(axis=1)
    centre = np.argsort(frontal, kind="stable")[: max(1, int(centre_images))]
    mean_centre = f[centre].mean(axis=0)  # mean pairwise cosine = dot of the two means
    edges = np.arange(-max_offset - bin_width / 2, max_offset + bin_width, bin_width)
    curves = {}
    for a, name in enumerate(ANGLES):
        others = [o for o in range(3) if o != a]
        along = np.all(np.abs(ypr[:, others]) <= tolerance, axis=1)
        which = np.digitize(ypr[:, a], edges) - 1
        xs, sims, counts = [], [], []
        for b in range(len(edges) - 1):
            members = along & (which == b)
            if members.sum():
                xs.append(float((edges[b] + edges[b + 1]) / 2))
                sims.append(float(f[members].mean(axis=0) @ mean_centre))
                counts.append(int(members.sum()))
        curves[name] = {"offset": xs, "similarity": sims, "n": counts}
    curves["centre"] = {"n": int(len(centre)), "max_abs_angle": float(frontal[centre].max())}
    return curves


def _gauss(x, a, mu, s, c):
    return a * np.exp(-((x - mu) ** 2) / (2 * s**2)) + c


def _split_gauss(x, a, mu, s_left, s_right, c):
    s = np.where(x < mu, s_left, s_right)
    return a * np.exp(-((x - mu) ** 2) / (2 * s**2)) + c


def _moments(x, y) -> dict:
    """Width of a bell curve from its second moment about the peak, each side separately."""
    w = np.clip(y - y.min(), 0, None)
    mu = float(x[np.argmax(y)])
    side = lambda m: float(np.sqrt((w[m] * (x[m] - mu) ** 2).sum() / max(w[m].sum(), 1e-12))) or 1e-3  # noqa: E731
    s = float(np.sqrt((w * (x - mu) ** 2).sum() / max(w.sum(), 1e-12))) or 1e-3
    a, c = float(y.max() - y.min()), float(y.min())
    return {"amplitude": a, "mu": mu, "sigma": s, "offset_c": c, "method": "moments",
            "split": {"amplitude": a, "mu": mu, "sigma_left": side(x <= mu), "sigma_right": side(x >= mu), "offset_c": c}}


def fit_curve(offset, similarity) -> dict:
    """Symmetric and left/right Gaussian fits of one similarity curve (widths in degrees). Where
    least squares does not converge (few, noisy bins) the widths come from the curve's second
    moments instead, and "method" says so."""
    x, y = np.asarray(offset, float), np.asarray(similarity, float)
    if len(x) < 5:
        raise DataError(f"asymmetry: only {len(x)} bins along an angle have images; raise asymmetry.tolerance or train on more data")
    span = float(x.max() - x.min())
    p0 = [max(y.max() - y.min(), 1e-3), 0.0, span / 4, float(y.min())]
    bounds = ([0, x.min(), 1e-3, -1.0], [2.0, x.max(), 10 * span, 1.0])
    try:
        (a, mu, s, c), _ = curve_fit(_gauss, x, y, p0=p0, bounds=bounds, maxfev=20000)
        (a2, mu2, sl, sr, c2), _ = curve_fit(_split_gauss, x, y, p0=[a, mu, s, s, c],
                                             bounds=([0, x.min(), 1e-3, 1e-3, -1.0], [2.0, x.max(), 10 * span, 10 * span, 1.0]), maxfev=20000)
    except RuntimeError:
        return _moments(x, y)
    return {"amplitude": float(a), "mu": float(mu), "sigma": float(s), "offset_c": float(c), "method": "least squares",
            "split": {"amplitude": float(a2), "mu": float(mu2), "sigma_left": float(sl), "sigma_right": float(sr), "offset_c": float(c2)}}


def label_sigmas(fits: dict, mean_sigma: float) -> list[float]:
    widths = np.array([fits[a]["sigma"] for a in ANGLES])
    return [float(v) for v in mean_sigma * widths / widths.mean()]


def plot(curves: dict, fits: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), sharey=True)
    for ax, name in zip(axes, ANGLES):
        x, y = np.array(curves[name]["offset"]), np.array(curves[name]["similarity"])
        grid = np.linspace(x.min(), x.max(), 200)
        f, s = fits[name], fits[name]["split"]
        ax.plot(x, y, "o", ms=4, label="cosine similarity")
        ax.plot(grid, _gauss(grid, f["amplitude"], f["mu"], f["sigma"], f["offset_c"]), "-", label=f"Gaussian, sigma {f['sigma']:.1f} deg")
        ax.plot(grid, _split_gauss(grid, s["amplitude"], s["mu"], s["sigma_left"], s["sigma_right"], s["offset_c"]), "--",
                label=f"left/right {s['sigma_left']:.1f}/{s['sigma_right']:.1f}")
        ax.set_title(name)
        ax.set_xlabel(f"{name} of the other image (deg)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("similarity to frontal images")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


@torch.no_grad()
def lenet_features(model, store, idx, size) -> np.ndarray:
    model.eval()
    out = [model.features(to_unit_float(make_batch(store, idx[b], size)[0])).numpy() for b in batches(len(idx), 256)]
    return np.concatenate(out)


def analyse(params: Params) -> dict:
    cfg = params.asymmetry
    exp = resolve_experiment(params, OUT, spec=cfg.experiment, where="asymmetry.experiment")
    out = experiment_dir(OUT)
    result = train_experiment(exp, out)
    model, ckpt = load_checkpoint(out / "model.pt")
    protocol = exp.protocol
    store = load_store(CROPS / protocol.train)
    idx = rows(store.labels, protocol, ckpt.split, protocol.train, "train")
    feats = lenet_features(model.cpu(), store, idx, exp.input_size)
    curves = similarity_curves(feats, store.ypr[idx], cfg.bin_width, cfg.tolerance, cfg.max_offset, cfg.centre_images)
    fits = {a: fit_curve(curves[a]["offset"], curves[a]["similarity"]) for a in ANGLES}
    fit = {"fits": fits, "curves": curves, "sigma_bins": label_sigmas(fits, cfg.mean_sigma),
           "mean_sigma": cfg.mean_sigma, "lenet_run_id": result["run_id"], "dataset": protocol.train}
    plot(curves, fits, out / "similarity.png")
    write_json(out / "fit.json", fit)
    with tracking.run("asymmetry", {"stage": "asymmetry", "lenet_run_id": result["run_id"]}) as (mlflow, _):
        mlflow.log_params({"bin_width": cfg.bin_width, "tolerance": cfg.tolerance, "mean_sigma": cfg.mean_sigma})
        mlflow.log_metrics({f"sigma_deg_{a}": fits[a]["sigma"] for a in ANGLES} | {f"sigma_bins_{a}": s for a, s in zip(ANGLES, fit["sigma_bins"])})
        mlflow.log_artifact(str(out / "fit.json"))
        mlflow.log_artifact(str(out / "similarity.png"))
    return fit
