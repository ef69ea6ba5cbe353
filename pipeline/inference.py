"""Running a model over a crop store, and loading a checkpoint with the config that built it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models import build_model
from pipeline.batches import batches, make_batch
from pipeline.errors import DataError
from pipeline.store import Store


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def predict(model, store: Store, idx, size, batch_size: int = 128, progress: str | None = None, perturb=None) -> np.ndarray:
    """(yaw, pitch, roll) predictions in degrees for store samples `idx` (centre crops). `perturb`,
    if given, maps each batch of images (N x 3 x h x w in [0, 1]) to the images the model sees."""
    idx = np.asarray(idx)
    model.eval()
    dev = next(model.parameters()).device
    out = []
    chunks = list(batches(len(idx), batch_size))
    for b in tqdm(chunks, desc=progress, unit="batch", disable=progress is None, leave=False):
        images, _ = make_batch(store, idx[b], size)
        if perturb is not None:
            images = perturb(images)
        out.append(model.predict(model(images.to(dev))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3))


def load_checkpoint(path: Path):
    """(model in eval mode, checkpoint dict). The checkpoint carries the config that built it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found; train it first (dvc repro) or give the path of a model.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        config = ckpt["config"]
        model = build_model(config)
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, EOFError, OSError, TypeError) as exc:
        raise DataError(f"{path}: not a harness checkpoint ({exc.__class__.__name__}: {str(exc).splitlines()[0][:120]}); retrain it") from None
    return model.to(device()).eval(), ckpt
