"""Levelling one model's pitch by another's on a folder of real photographs, with no labels:
every pitch is shifted by one amount, the median over the folder's images of this model's pitch
minus the other's (params.yaml pitch_level_from; pipeline.evaluate --pitch-level-from). Used by
pipeline.analysis.evaluation (evaluate_folder) and the report's real AFLW2000 section.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.angles import ANGLES
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.paths import run_dir
from pipeline.data.cropping import cropped_folder
from pipeline.engine.inference import load_checkpoint, predict_as_trained

PITCH = ANGLES.index("pitch")


def pitch_level_shift(pitch: np.ndarray, reference: np.ndarray) -> float:
    """The one amount to subtract from every `pitch` so that the median of its per-image
    difference from `reference` (another model's pitch on the same images) is 0. The median,
    not the mean, so a few images one model gets badly wrong do not move the level."""
    if pitch.shape != reference.shape or not len(pitch):
        raise ValueError(f"pitch_level_shift needs two equal, non-empty arrays, got {pitch.shape} and {reference.shape}")
    return float(np.median(pitch - reference))


def pitch_level_checkpoint(exp, given: Path | None = None, level: bool = True) -> Path | None:
    """The checkpoint whose pitch sets the level of `exp`'s where a folder is scored: `given`, else
    the run of the same seed of the experiment `exp.pitch_level_from` names (results/<name>/seed-K/
    model.pt, which must exist); None when `level` is False or neither says one."""
    if not level:
        return None
    if given is not None or exp.pitch_level_from is None:
        return given
    path = run_dir(exp.pitch_level_from, exp.seed) / "model.pt"
    if not path.is_file():
        raise DataError(f"{path}: missing; experiment {exp.name} takes the level of its pitch from {exp.pitch_level_from} "
                        f"(params.yaml pitch_level_from): train it (python -m pipeline.train {exp.pitch_level_from} --seed {exp.seed}), "
                        "or score without it (--no-pitch-level)")
    return path


def level_pitch(pred: np.ndarray, reference: Path, dataset: str, root: Path, sample_ids: pd.Series) -> float:
    """Shift pitch (column PITCH of `pred`, in place) so its median difference from `reference`'s
    pitch on the same images is 0; returns the shift subtracted."""
    shift = pitch_level_shift(pred[:, PITCH], _reference_pitch(reference, dataset, root, sample_ids))
    pred[:, PITCH] -= shift
    return shift


def _reference_pitch(checkpoint: Path, dataset: str, root: Path, sample_ids: pd.Series) -> np.ndarray:
    """`checkpoint`'s pitch on the folder's images (cropped with its own crop settings, scored
    as its experiment says), in the order of `sample_ids`."""
    model, ckpt = load_checkpoint(checkpoint)
    exp = ckpt.experiment
    with cropped_folder(dataset, root, exp.crop) as store:
        pred = predict_as_trained(model, exp, store, np.arange(len(store)), progress=f"pitch level from {checkpoint}")
        ids = store.labels["sample_id"].to_numpy()
    if set(ids) != set(sample_ids):
        raise ConfigError(f"--pitch-level-from {checkpoint}: its crop settings keep {len(ids)} images of {root} and the scored "
                          f"checkpoint's keep {len(sample_ids)}; give a checkpoint whose crops keep the same images")
    return pd.Series(pred[:, PITCH], index=ids).loc[sample_ids.to_numpy()].to_numpy()
