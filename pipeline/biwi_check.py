"""Draw the head centre projected through rgb.cal on BIWI frames, to check the calibration
direction the harness assumes (pipeline/data/calibration.py) on real data in a minute.

    python -m pipeline.biwi_check --root /path/to/hpdb --out biwi_check.png [--frames 12]

If the dots sit on the heads (within a few pixels), the assumed direction (depth frame -> RGB
frame) is right. If they are off by a consistent few centimetres, the extrinsics map the other
way; please tell the maintainers.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.core.errors import cli
from pipeline.reporting.figures import contact_sheet
from pipeline.data.readers import read_biwi


def draw_centres(root: Path, out: Path, frames: int = 12, box_mm: float = 190.0) -> Path:
    table = read_biwi(root, box_mm=box_mm).table
    picks = table.iloc[np.linspace(0, len(table) - 1, min(frames, len(table))).astype(int)]
    images, captions = [], []
    for row in picks.itertuples():
        with Image.open(row.image) as im:
            im = im.convert("RGB")
        draw = ImageDraw.Draw(im)
        r = max(3, im.width // 100)
        draw.ellipse((row.cx - r, row.cy - r, row.cx + r, row.cy + r), outline=(255, 0, 0), width=2)
        draw.rectangle((row.x0, row.y0, row.x1, row.y1), outline=(0, 255, 0), width=1)
        images.append(np.asarray(im))
        captions.append(f"{row.sample_id}\nyaw {row.yaw:.0f} pitch {row.pitch:.0f} roll {row.roll:.0f}")
    return contact_sheet(np.stack(images), captions, out, columns=4)


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="BIWI hpdb folder (sequences 01..24)")
    parser.add_argument("--out", type=Path, default=Path("biwi_check.png"))
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args(argv)
    print(f"wrote {draw_centres(args.root, args.out, args.frames)}: red circle = projected head centre, green = crop box")


if __name__ == "__main__":
    main()
