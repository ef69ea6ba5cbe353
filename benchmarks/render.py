"""Render-speed benchmark of the built-in data: images per second on this machine.

    python -m benchmarks.render                 # params.yaml data.synthetic, 2 workers, about 600 images
    python -m benchmarks.render --workers 1 --train-per-subset 50

Runs `pipeline.sources.synthetic.generate` with the settings of params.yaml `data.synthetic`
(image size, seed, label noise), only fewer images, into a temporary folder, and prints the
images rendered per second of wall-clock time, for each dataset style and in all: rendering,
compositing, JPEG/PNG encoding and writing the .mat/.txt labels. A 300W-LP-style sample is one
rendered image written twice (itself and its mirrored `_Flip` twin); it counts once. The CPU
seconds of this process and its workers are printed too, since on a shared machine the
wall-clock rate depends on the load.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from pipeline.config.params import load_params
from pipeline.sources import synthetic


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(cfg: dict, workers: int) -> dict:
    """Images per second of one generate() call with `cfg`, and its CPU seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        cpu, start = _cpu(), time.perf_counter()
        counts = synthetic.generate(Path(tmp) / "raw", cfg, progress=False, workers=workers)
        wall, cpu = time.perf_counter() - start, _cpu() - cpu
    images = counts["300W_LP"] // 2 + counts["AFLW2000"] + counts["hpdb"]
    return {"images": images, "seconds": wall, "cpu_seconds": cpu, "images_per_s": images / wall}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-per-subset", type=int, default=100, help="300W-LP-style samples per subset (4 subsets)")
    parser.add_argument("--test-images", type=int, default=100, help="AFLW2000-style images")
    parser.add_argument("--biwi-frames", type=int, default=50, help="frames of each of 2 BIWI-style sequences")
    args = parser.parse_args(argv)
    base = load_params().data.synthetic.model_dump()
    small = dict(train_per_subset=1, test_images=1, biwi_sequences=1, biwi_frames=1)
    styles = {
        "300W-LP-style": {**base, **small, "train_per_subset": args.train_per_subset},
        "AFLW2000-style": {**base, **small, "test_images": args.test_images},
        "BIWI-style": {**base, **small, "biwi_sequences": 2, "biwi_frames": args.biwi_frames},
    }
    run({**base, **small}, args.workers)  # warm-up: imports, the face's ambient occlusion
    total_images, total_wall = 0, 0.0
    print(f"{os.cpu_count()} CPUs, {args.workers} workers, image_size {base['image_size']}, biwi_size {base['biwi_size']}")
    for name, cfg in styles.items():
        r = run(cfg, args.workers)
        total_images += r["images"]
        total_wall += r["seconds"]
        print(f"{name:15s} {r['images']:5d} images in {r['seconds']:6.1f} s: {r['images_per_s']:6.1f} images/s "
              f"({r['cpu_seconds'] / r['images'] * 1000:.1f} CPU ms per image)")
    print(f"{'all':15s} {total_images:5d} images in {total_wall:6.1f} s: {total_images / total_wall:6.1f} images/s")


if __name__ == "__main__":
    main()
