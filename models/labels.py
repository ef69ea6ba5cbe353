"""Label codecs over the shared 66 x 3-degree bins (pipeline.core.angles): hard bins, soft labels,
and the expectation read-out.

Unit of sigma: BINS (one bin = 3 degrees). The DADL paper does not state the unit; in bins its
AFLW2000 setting (yaw 1, pitch 2, roll 0.5) gives soft labels 3-6 degrees wide, which is the
scale of the labels' own uncertainty, whereas in degrees sigma = 0.5 would be a hard label.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.core import angles

BIN_ANGLES = torch.tensor(angles.BIN_ANGLES, dtype=torch.float32)


def hard_bins(deg: torch.Tensor) -> torch.Tensor:
    """Bin index (long) of each angle: floor((a + 99) / 3) clipped to [0, 65]."""
    idx = torch.floor((deg + angles.ANGLE_LIMIT) / angles.BIN_WIDTH)
    return idx.clamp(0, angles.N_BINS - 1).long()


def soft_labels(bins: torch.Tensor, sigma: float) -> torch.Tensor:
    """Discrete Gaussian over the bins centred on each sample's true bin, summing to 1 (N x 66)."""
    grid = torch.arange(angles.N_BINS, dtype=torch.float32, device=bins.device)
    logits = -((grid[None, :] - bins[:, None].float()) ** 2) / (2.0 * float(sigma) ** 2)
    return torch.softmax(logits, dim=1)


def expectation(logits: torch.Tensor) -> torch.Tensor:
    """Expected angle in degrees under softmax(logits), with the papers' decoding bin * 3 - 99."""
    return torch.softmax(logits, dim=1) @ BIN_ANGLES.to(logits.device)


def soft_kl(logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """KL(soft || softmax(logits)), averaged over the batch."""
    return F.kl_div(F.log_softmax(logits, dim=1), soft, reduction="batchmean")
