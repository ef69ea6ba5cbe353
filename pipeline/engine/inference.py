"""Running a model over a crop store, and checkpoints: saved with the experiment that built
them, loaded back into a model by that experiment alone."""
from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.registry import build_model
from pipeline.config.experiment import Experiment, load_experiment
from pipeline.core import angles
from pipeline.core.atomic import atomic_file
from pipeline.core.errors import ConfigError, DataError, HarnessError
from pipeline.data.augment import resample
from pipeline.data.batches import batches, plan_batch
from pipeline.data.store import Store
from pipeline.engine.loader import Loader, autocast, precision_for, prepare_model


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _read(model, images: torch.Tensor, flip: bool = False) -> np.ndarray:
    """The model's (yaw, pitch, roll) for a batch; with `flip`, averaged with its mirror images' (yaw and roll negated back)."""
    ypr = model.predict(model(images)).float().cpu().numpy()
    return (ypr + angles.flip_pose(_read(model, torch.flip(images, dims=[-1])))) / 2 if flip else ypr


@torch.no_grad()
def predict(model, store: Store, idx, size: tuple[int, int], batch_size: int = 128, progress: str | None = None,
            perturb=None, precision: str = "auto", prefetch: int | str = "auto", flip: bool = False,
            pitch_view: int | None = None) -> np.ndarray:
    """(yaw, pitch, roll) predictions in degrees for store samples `idx` (centre crops of `size`,
    width x height), under `precision` (pipeline.engine.loader). `perturb`, if given, maps each
    batch of images (N x 3 x h x w floats in [0, 1], on the model's device) to the images the
    model sees. With `flip` (test-time flip augmentation), each prediction is the mean of the
    image's and its horizontal mirror's, the mirror's yaw and roll negated back (angles.flip_pose).
    With `pitch_view` (pixels), pitch is read from the image resampled to that width and back
    (pipeline.data.augment.resample), yaw and roll from the image itself."""
    idx = np.asarray(idx)
    model.eval()
    dev = next(model.parameters()).device
    plans = [plan_batch(store, idx[b], size) for b in batches(len(idx), batch_size)]
    out = []
    with autocast(dev, precision_for(precision, dev)):
        for images, _ in tqdm(Loader(store, plans, dev, prefetch), desc=progress, unit="batch", disable=progress is None, leave=False):
            if perturb is not None:
                images = perturb(images)
            ypr = _read(model, images, flip)
            if pitch_view is not None:
                ypr[:, 1] = _read(model, resample(images, pitch_view).clamp_(0.0, 1.0), flip)[:, 1]
            out.append(ypr)
    return np.concatenate(out) if out else np.zeros((0, 3))


def pitch_view_for(exp: Experiment, override: int | None = None) -> int | None:
    """The pitch view a checkpoint of `exp` is scored with: `override` if given (0: none), else
    `exp.pitch_view`; a width not narrower than the input is one ConfigError line."""
    view = exp.pitch_view if override is None else (override or None)
    if view is not None and view >= exp.input_size[0]:
        raise ConfigError(f"pitch view {view} px: not coarser than the checkpoint's {exp.input_size[0]} px wide input; give a smaller width, or 0 for none")
    return view


def predict_as_trained(model, exp: Experiment, store: Store, idx, flip: bool | None = None, pitch_view: int | None = None,
                       **kwargs) -> np.ndarray:
    """`predict` the way the checkpoint's experiment `exp` says a model is scored: its input size,
    precision, prefetch, test-time flip (`flip` overrides `exp.test_flip`) and pitch view
    (`pitch_view` overrides `exp.pitch_view`; 0: none). Every scoring path (evaluate, robustness,
    the report's real-AFLW2000 section, pipeline.predict) goes through here, so they give a crop
    the same angles. kwargs: batch_size, progress, perturb."""
    return predict(model, store, idx, exp.input_size, precision=exp.precision, prefetch=exp.prefetch,
                   flip=exp.test_flip if flip is None else flip, pitch_view=pitch_view_for(exp, pitch_view), **kwargs)


@dataclass(frozen=True)
class Checkpoint:
    """What a model.pt holds besides the weights."""

    path: Path
    experiment: Experiment
    split: dict | None  # the train/test split of a within-dataset protocol
    train_run_id: str
    data_fingerprint: str
    epochs: int


def save_checkpoint(path: Path, exp: Experiment, model: torch.nn.Module, **info) -> None:
    """model.pt: the weights, the experiment that built them (a plain dict) and `info`
    (split, train_run_id, data_fingerprint, epochs); written atomically."""
    with atomic_file(path) as tmp:
        torch.save({"config": exp.model_dump(mode="json"), "state_dict": model.state_dict(), **info}, tmp)


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, Checkpoint]:
    """(model in eval mode on the device, checkpoint). Any file that is not a readable harness
    checkpoint is one DataError line naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found; train it first (dvc repro) or give the path of a model.pt")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it is refused below
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, UnicodeDecodeError) as exc:  # torch.load reports damage in many ways
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "empty or truncated file"
        raise DataError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}: {reason}); retrain it or give another model.pt") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise DataError(f"{path}: not a harness checkpoint (no weights and configuration inside); retrain it")
    exp = load_experiment(ckpt.get("config"), str(path))
    try:
        model = build_model(exp.model, exp.hparams)
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, HarnessError) as exc:
        raise DataError(f"{path}: its weights do not fit its {exp.model} configuration ({str(exc).splitlines()[0][:160]}); retrain it") from None
    info = Checkpoint(path, exp, ckpt.get("split"), ckpt.get("train_run_id", ""), ckpt.get("data_fingerprint", ""), int(ckpt.get("epochs", exp.epochs)))
    return prepare_model(model, device()).eval(), info
