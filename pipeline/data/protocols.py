"""The seeded splits that evaluation protocols (params.yaml `protocols`, pipeline.config) need.

A protocol names its training dataset and its test datasets; when both come from one dataset
it also says how to split it:
    split: [16, 8]           sequences for training / testing (BIWI 70/30 "P2"; the Bernoulli
                             paper's 16/8, 12/12, 8/16); scaled in proportion when the dataset
                             holds another number of sequences (e.g. the built-in data)
    split_files: {train: [BIWI_train], test: [BIWI_test]}   FSA-Net's .npz files, already split
Splits are drawn from `split_seed` either by sequence or by person (`split_by`; BIWI recorded
four people twice: sequences 02/21, 03/15, 05/18, 07/22), and each run records the split it used.
"""
from __future__ import annotations

import numpy as np

from pipeline.config.params import Protocol
from pipeline.core.errors import ConfigError

BIWI_SAME_PERSON = {"21": "02", "15": "03", "18": "05", "22": "07"}


def person(sequence: str, source: str) -> str:
    """Who was recorded in a BIWI sequence (the built-in data draws a new identity per sequence)."""
    return sequence if source == "synthetic" else BIWI_SAME_PERSON.get(sequence, sequence)


def draw_split(protocol: Protocol, sequences, seed: int, split_by: str, source: str) -> dict | None:
    """{"train": [...], "test": [...]} sequences of a within-dataset protocol, or None for a
    cross-dataset one. Deterministic for a seed; no sequence (or person) is on both sides."""
    sequences = sorted(set(sequences))
    if protocol.split_files:
        files = protocol.split_files
        missing = sorted((set(files.train) | set(files.test)) - set(sequences))
        if missing:
            raise ConfigError(f"params.yaml protocols.{protocol.name}.split_files: {', '.join(missing)} not in the dataset (it holds {', '.join(sequences)})")
        return {"train": sorted(files.train), "test": sorted(files.test), "by": "file"}
    if not protocol.split:
        return None
    n_train, n_test = protocol.split
    if len(sequences) < 2:
        raise ConfigError(f"protocol {protocol.name}: the dataset has {len(sequences)} sequence(s); a split needs at least 2")
    want = min(max(round(len(sequences) * n_train / (n_train + n_test)), 1), len(sequences) - 1)
    rng = np.random.default_rng(seed)
    groups: dict[str, list[str]] = {}
    for s in sequences:
        groups.setdefault(person(s, source) if split_by == "person" else s, []).append(s)
    train: list[str] = []
    for key in rng.permutation(sorted(groups)):
        if len(train) >= want:
            break
        train += groups[key]
    test = [s for s in sequences if s not in train]
    if not test:
        raise ConfigError(f"protocol {protocol.name}: splitting by {split_by} left no test sequence; use split_by: sequence")
    return {"train": sorted(train), "test": test, "by": split_by}


def rows(labels, protocol: Protocol, split: dict | None, dataset: str, side: str) -> np.ndarray:
    """Row indices of a store that a protocol uses on `side` ("train" or "test") of `dataset`."""
    if split is None or dataset != protocol.train:
        return np.arange(len(labels))
    return np.flatnonzero(labels["sequence"].isin(split[side]).to_numpy())
