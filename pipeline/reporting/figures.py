"""Figures shared by tests and the report, each drawn from plain numbers and saved as a PNG:
contact sheets of crops, grouped bars, curves and bars with error bars."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return Path(path)


def contact_sheet(images: np.ndarray, captions: list[str], path: Path, columns: int = 8,
                  draw: Callable | None = None) -> Path:
    """Grid of uint8 H x W x 3 images with a caption under each, saved as PNG. `draw(ax, i)`,
    if given, draws over image i (in its pixel coordinates)."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.5, rows * (1.55 + 0.12 * lines)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image, caption) in enumerate(zip(axes.flat, images, captions)):
        ax.imshow(image)
        if draw is not None:
            draw(ax, i)
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
        ax.set_title(caption, fontsize=6)
    return _save(fig, path)


def grouped_bars(panels: dict[str, dict[str, list[float]]], groups: list[str], path: Path, ylabel: str = "MAE (deg)",
                 errors: dict[str, dict[str, list[float]]] | None = None) -> Path:
    """One panel per key of `panels`; in each, one bar per series (its legend label) in every
    group; `errors` (same shape) draws error bars. NaN values leave a gap."""
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.5, 4.8 * len(panels)), 3.6), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels.items()):
        width = 0.8 / max(1, len(series))
        x = np.arange(len(groups))
        for k, (label, values) in enumerate(series.items()):
            err = (errors or {}).get(title, {}).get(label)
            bars = ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=label, yerr=err, capsize=3 if err else 0)
            ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
        ax.set_xticks(x, groups)
        ax.set(title=title, ylabel=ylabel)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.15)
        ax.legend(fontsize=7)
    return _save(fig, path)


def curves(panels: dict[str, dict[str, tuple[list[float], list[float]]]], path: Path, xlabel: str, ylabel: str,
           marker: str = "o", ylim=None, share=None, intervals=None) -> Path | None:
    """One panel per key; in each, one line per label through its (x, y) points. `share`, if
    given as {panel: (x, y)}, draws the share of samples as grey bars on a second axis;
    `intervals` as {panel: {label: [(lo, hi) or None per point]}} draws error bars (95% intervals).
    None (nothing drawn) unless some line has two points: a lone point says less than a table."""
    if not any(len(x) > 1 for lines in panels.values() for x, _ in lines.values()):
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.5, 4.6 * len(panels)), 3.6), squeeze=False)
    for ax, (title, lines) in zip(axes[0], panels.items()):
        if share and title in share:
            twin = ax.twinx()
            sx, sy = share[title]
            twin.bar(sx, sy, width=(sx[1] - sx[0]) * 0.8 if len(sx) > 1 else 1, color="grey", alpha=0.25)
            twin.set_ylabel("share of samples", color="grey")
            ax.set_zorder(twin.get_zorder() + 1)
            ax.patch.set_visible(False)
        for label, (x, y) in lines.items():
            bounds = ((intervals or {}).get(title) or {}).get(label)
            if bounds and any(b is not None for b in bounds):
                low = [yi - b[0] if b else 0.0 for yi, b in zip(y, bounds)]
                high = [b[1] - yi if b else 0.0 for yi, b in zip(y, bounds)]
                ax.errorbar(x, y, yerr=[low, high], marker=marker, ms=3.5, capsize=3, label=f"{label} (95% intervals)")
            else:
                ax.plot(x, y, marker=marker, ms=3.5, label=label)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=7)
    return _save(fig, path)
