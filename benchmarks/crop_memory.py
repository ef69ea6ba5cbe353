"""Peak memory of the crop stage as the number of images grows: it must stay within a fixed budget.

    python -m benchmarks.crop_memory [--sizes 2000 20000] [--store-size 256] [--workers 0]

For each size N, writes a throw-away AFLW2000-style folder of N samples (a few distinct 450 px
JPEGs and one label file, hard-linked N times, so making it is quick), crops it into a store of
`store-size` px crops in a fresh process, and prints the peak resident memory of that process
(ru_maxrss) and of its largest decoding worker, the store's size on disk, and the time taken.
An in-memory store would need N x side x side x 3 bytes (20,000 x 256 px = 3.9 GB); a streamed
one needs the same few hundred MB at every N.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core import angles
from pipeline.core.errors import cli

CHILD = """
import json, resource, sys
from pathlib import Path
from pipeline.config.params import load_params
from pipeline.data.cropping import crop_dataset
cfg = load_params().crop.model_copy(update={{"store_size": {size}, "workers": {workers}}})
crop_dataset("aflw2000", Path(sys.argv[1]), "benchmark", cfg, Path(sys.argv[2]))
print(json.dumps({{"self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""


def fake_aflw2000(folder: Path, n: int, distinct: int = 16) -> None:
    import scipy.io

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    bases = []
    for i in range(distinct):
        path = folder / f"base{i}.jpg.src"
        Image.fromarray(rng.integers(0, 256, (450, 450, 3), dtype=np.uint8)).save(path, format="JPEG", quality=90)
        bases.append(path)
    label = folder / "label.mat.src"
    pt2d = np.array([[150.0, 300.0, 225.0, 170.0], [160.0, 160.0, 250.0, 330.0]])
    scipy.io.savemat(label, {"Pose_Para": angles.ypr_to_pose_para([10, -5, 3]), "pt2d": pt2d})
    for i in range(n):
        os.link(bases[i % distinct], folder / f"image{i:05d}.jpg")
        os.link(label, folder / f"image{i:05d}.mat")


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--store-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0, help="crop.workers (0: one per CPU core)")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="crop-memory-") as tmp:
            fake_aflw2000(Path(tmp) / "AFLW2000", n)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD.format(size=args.store_size, workers=args.workers),
                                   str(Path(tmp) / "AFLW2000"), str(Path(tmp) / "crops")],
                                  cwd=root, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - start
            peak = json.loads(proc.stdout.strip().splitlines()[-1])
            store = Path(tmp) / "crops" / "aflw2000" / "images.npy"
            print(f"{n} images at {args.store_size} px: peak memory {peak['self_mb']:.0f} MB (crop process), "
                  f"{peak['worker_mb']:.0f} MB (largest decoding worker); store {store.stat().st_size / 2**20:.0f} MB on disk; "
                  f"{seconds:.1f} s")


if __name__ == "__main__":
    main()
