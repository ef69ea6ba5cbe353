"""Training throughput of the harness against the model's own ceiling, on this machine's device.

    python -m benchmarks.throughput [EXPERIMENT ...] [--seconds S] [--papers-size] [--prefetch N] [--threads N]

For each experiment of params.yaml (default: those in `run`), on its training crop store (run
`dvc repro crop` first), prints in one run:
- ceiling: images/s of the training step on one batch held on the device (no data path at all);
- harness: images/s of the training loop as it runs (pipeline.engine.loader: batches planned,
  cut by the loader's threads, ahead in a background thread if `prefetch` says so, made float on
  the device, then the same step);
- their ratio (the data path's cost to training; 1.0 = none); the two are measured in alternating
  rounds so that a drift of the machine's speed does not pass for a cost, and
- data path: images/s of the loader alone, without a model: the uint8 batches ready to cross to
  the device (pinned on CUDA), and the same made float on the device (the model's input).
With --papers-size the same for the papers' setting on a throw-away store of random crops (256 px
stored, 224 px inputs, batch 32, ResNet-50 DADL), so a GPU user can check a machine in a minute.
Each figure is measured for S seconds after one warm-up batch (ceiling and harness 2 x S between
them, alternating); leave the machine's cores to it.
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models.registry import build_model
from pipeline.config.experiment import Experiment, resolve_experiment
from pipeline.config.params import load_params
from pipeline.core.errors import cli
from pipeline.core.paths import crop_store
from pipeline.data.batches import batches, plan_batch
from pipeline.data.store import Store, load_store, write_store
from pipeline.engine.inference import device
from pipeline.engine.loader import Loader, precision_for, prefetch_for, prepare_model, threads_for
from pipeline.engine.training import _optimizer, train_step


def _rate(step, seconds: float, batch: int) -> float:
    """Images per second of `step()` (one batch each) over `seconds`, after one warm-up call."""
    return _count(step, seconds, batch) / seconds


def _count(step, seconds: float, batch: int) -> float:
    """Images that `step()` (one batch each) goes through in about `seconds` after one warm-up
    call, scaled to exactly `seconds`."""
    step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        done += batch
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return done * seconds / (time.perf_counter() - start)


def _alternating(steps: dict, seconds: float, batch: int, rounds: int = 3) -> dict:
    """Images/s of the step each of `steps` makes (a fresh one per turn), measured in `rounds`
    alternating turns of seconds / rounds each."""
    done = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, make_step in steps.items():
            done[name] += _count(make_step(), seconds / rounds, batch)
    return {name: images / seconds for name, images in done.items()}


def _plans(store: Store, exp: Experiment, rng):
    """Endless training batches of `exp` on `store`, planned as the training loop plans them."""
    while True:
        for b in batches(len(store), exp.batch_size, rng):
            if len(b) == exp.batch_size:
                yield plan_batch(store, b, exp.input_size, rng)


def measure(exp: Experiment, store: Store, seconds: float, prefetch=None, threads: int = 0) -> dict:
    dev = device()
    torch.manual_seed(0)
    model = prepare_model(build_model(exp.model, exp.hparams), dev).train()
    opt = _optimizer(model, exp)
    precision = precision_for(exp.precision, dev)
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
    rng = np.random.default_rng(0)
    prefetch = exp.prefetch if prefetch is None else prefetch
    images, targets = next(iter(Loader(store, [next(_plans(store, exp, rng))], dev, prefetch=0)))

    def fixed():
        train_step(model, model, opt, scaler, images, targets, precision)

    def loader():
        return Loader(store, itertools.islice(_plans(store, exp, rng), 20_000), dev, prefetch, threads)

    def harness():
        stream = iter(loader())

        def step():
            batch_images, batch_targets = next(stream)
            train_step(model, model, opt, scaler, batch_images, batch_targets, precision)
        return step

    def data(batches):
        stream = batches(loader())
        return lambda: next(stream)

    rates = _alternating({"ceiling": lambda: fixed, "harness": harness}, 2 * seconds, exp.batch_size)
    uint8 = _rate(data(lambda lo: lo.uint8_batches()), seconds, exp.batch_size)
    model_input = _rate(data(iter), seconds, exp.batch_size)
    return {**rates, "ratio": rates["harness"] / rates["ceiling"], "uint8": uint8, "input": model_input, "precision": precision,
            "torch_threads": torch.get_num_threads(), "prefetch": prefetch_for(prefetch, dev), "cut_threads": threads_for(threads)}


def papers_store(folder: Path, n: int = 512) -> Store:
    """A throw-away store of `n` random 256 px crops (what the papers' 256 -> 224 setting reads)."""
    rng = np.random.default_rng(0)
    labels = pd.DataFrame({"sample_id": [str(i) for i in range(n)], "yaw": rng.uniform(-90, 90, n), "pitch": rng.uniform(-40, 40, n),
                           "roll": rng.uniform(-40, 40, n), "sequence": "", "group": [str(i) for i in range(n)], "cx": 128.0,
                           "cy": 128.0, "bx0": 0.0, "by0": 0.0, "bx1": 256.0, "by1": 256.0})
    crops = (rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(n))
    write_store(folder / "papers", crops, labels, {"dataset": "papers", "n_filtered": 0}, size=(256, 256))
    return load_store(folder / "papers")


def report(label: str, m: dict) -> None:
    print(f"{label}: ceiling {m['ceiling']:.1f} img/s, harness {m['harness']:.1f} img/s, harness / ceiling {m['ratio']:.3f}; "
          f"data path alone: uint8 batches {m['uint8']:.0f} img/s, as model input {m['input']:.0f} img/s "
          f"({m['precision']}, {m['torch_threads']} torch threads, {m['cut_threads']} cutting threads, prefetch {m['prefetch']})")


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", help="names under 'experiments' in params.yaml (default: run)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per figure (default 20)")
    parser.add_argument("--papers-size", action="store_true", help="also measure the papers' size on random crops")
    parser.add_argument("--prefetch", type=int, help="batches prepared ahead, instead of the experiment's train.prefetch")
    parser.add_argument("--threads", type=int, default=0, help="threads cutting a batch (default 0: torch's intra-op threads)")
    args = parser.parse_args(argv)
    params = load_params()
    dev = device()
    print(f"device {dev}{' ' + torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''}, torch {torch.__version__}")
    for name in args.experiments or params.run:
        exp = resolve_experiment(params, name)
        if exp.hparams.model_dump().get("sigma") == "asymmetry":
            exp = resolve_experiment(params, name, fit={"sigma_bins": [1.0, 1.0, 1.0]})  # the sigmas do not change the cost
        report(f"{name} ({exp.model}, {exp.input_size[0]}x{exp.input_size[1]} px, batch {exp.batch_size})",
               measure(exp, load_store(crop_store(exp.protocol.train, exp.store_size)), args.seconds, args.prefetch, args.threads))
    if args.papers_size:
        exp = resolve_experiment(params, "dadl", overrides={"backbone": "resnet50", "input_size": 224, "batch_size": 32})
        with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
            report("papers' size (DADL ResNet-50, 256 px store, 224 px inputs, batch 32)", measure(exp, papers_store(Path(tmp)), args.seconds, args.prefetch, args.threads))


if __name__ == "__main__":
    main()
