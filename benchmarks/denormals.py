"""How much denormal floats slow training on this CPU, and what flushing them to zero gives back.

    python -m benchmarks.denormals CHECKPOINT [--seconds S]

A few epochs into training, a model's weights, Adam's moments, activations and gradients hold
values below float32's smallest normal number (1.2e-38), and x86 arithmetic on such denormal
values takes a slow path: epochs grow slower as training goes on. So
`pipeline.engine.loader.prepare_model` makes CPU processes flush them to zero
(`torch.set_flush_denormal`). This benchmark loads a trained checkpoint (results/NAME/seed-K/
model.pt; its experiment travels with it), counts its denormal weights, and measures the
training step on one batch of the experiment's training crops (`dvc repro crop` first) with
flushing off and on, in alternating rounds, for the trained weights and for those training starts from. It
prints images/s and the ratio (on / off; 1.0: nothing to gain). Leave the machine's cores to it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.throughput import _alternating, _plans
from models.registry import build_model
from pipeline.core.errors import DataError, cli
from pipeline.core.paths import crop_store
from pipeline.data.store import load_store
from pipeline.engine.inference import load_checkpoint
from pipeline.engine.loader import Loader, prepare_model
from pipeline.engine.training import _optimizer, train_step

TINY = torch.finfo(torch.float32).tiny


def denormal_share(state: dict) -> tuple[int, int]:
    """(denormal values, all values) of the floating-point tensors of a state dict."""
    found = total = 0
    for tensor in state.values():
        if torch.is_tensor(tensor) and tensor.is_floating_point():
            size = tensor.abs()
            found += int(((size > 0) & (size < TINY)).sum())
            total += tensor.numel()
    return found, total


def rates(exp, state: dict | None, images, targets, seconds: float, rounds: int = 3) -> dict:
    """Images/s of the training step with flushing off and on, in alternating rounds."""
    dev = torch.device("cpu")

    def make_step(flush: bool):
        torch.manual_seed(0)
        model = prepare_model(build_model(exp.model, exp.hparams), dev).train()
        torch.set_flush_denormal(flush)  # after prepare_model, which turns it on
        if state is not None:
            model.load_state_dict(state)
        opt = _optimizer(model, exp)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        return lambda: train_step(model, model, opt, scaler, images, targets, "fp32")

    try:
        r = _alternating({"off": lambda: make_step(False), "on": lambda: make_step(True)}, seconds, exp.batch_size, rounds)
    finally:
        torch.set_flush_denormal(True)
    return {**r, "ratio": r["on"] / r["off"]}


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a trained model.pt (results/NAME/seed-K/model.pt)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per measurement (default 30)")
    args = parser.parse_args(argv)
    trained, ckpt = load_checkpoint(args.checkpoint)
    exp = ckpt.experiment
    store = load_store(crop_store(exp.protocol.train, exp.store_size))
    w, h = exp.input_size
    if store.images.shape[1] < h or store.images.shape[2] < w:
        raise DataError(f"{store.path}: crops of {store.images.shape[2]} x {store.images.shape[1]} px, the checkpoint takes "
                        f"{w} x {h} px inputs; run `dvc repro crop` with the crop settings it was trained beside")
    state = {k: v.cpu() for k, v in trained.state_dict().items()}
    found, total = denormal_share(state)
    print(f"{args.checkpoint}: {exp.name} ({exp.model}, {w}x{h} px, batch {exp.batch_size}); {found} of {total} weights denormal")
    images, targets = next(iter(Loader(store, [next(_plans(store, exp, np.random.default_rng(0)))], torch.device("cpu"), prefetch=0)))
    for label, weights in (("trained weights", state), ("weights at the start of training", None)):
        r = rates(exp, weights, images, targets, args.seconds)
        print(f"{label}: flush off {r['off']:.1f} images/s, flush on {r['on']:.1f} images/s, ratio {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
