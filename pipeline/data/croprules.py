"""Crop rules: from a landmark (or head) box to the region that is cut out and resized.

- "hopenet" (default): HopeNet's margins, applied one side after another as in its code:
  left 0.6k*w, top 2k*h, right 0.6k*w', bottom 0.6k*h' (w', h' the already widened sizes).
  Training draws k in [0.2, 0.4); AFLW2000 testing uses k = 0.2.
- "fsanet": FSA-Net's padding of 0.6 of the box on every side.
- "box": the box as given (BIWI head boxes are already built around the projected centre).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from pipeline.core.errors import ConfigError

RULES = ("hopenet", "fsanet", "box")


def crop_box(box, rule: str, k: float = 0.2) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    if rule == "hopenet":
        x0 -= 0.6 * k * abs(x1 - x0)
        y0 -= 2.0 * k * abs(y1 - y0)
        x1 += 0.6 * k * abs(x1 - x0)
        y1 += 0.6 * k * abs(y1 - y0)
    elif rule == "fsanet":
        w, h = x1 - x0, y1 - y0
        x0, y0, x1, y1 = x0 - 0.6 * w, y0 - 0.6 * h, x1 + 0.6 * w, y1 + 0.6 * h
    elif rule != "box":
        raise ConfigError(f"params.yaml crop.rule: unknown crop rule {rule!r}; choose one of {', '.join(RULES)}")
    return x0, y0, x1, y1


def cut(image: Image.Image, box, size: int) -> np.ndarray:
    """Cut `box` out of `image` (black beyond the borders) and resize it to size x size RGB uint8."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    region = image.convert("RGB").crop((x0, y0, x1, y1)).resize((size, size), Image.BILINEAR)
    return np.asarray(region, dtype=np.uint8)
