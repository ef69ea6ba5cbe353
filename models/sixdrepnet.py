"""6DRepNet (Hempel et al. 2022): the backbone regresses a 6D rotation representation, turned
into a rotation matrix by Gram-Schmidt, trained with the geodesic distance to the true matrix.
The true matrix and the Euler angles read back both use the harness's convention
(pipeline.core.angles.rotation_matrix / biwi_euler), so predictions are comparable with every other
model. Read-back is exact for |yaw| < 90 degrees; beyond, the same matrix has another Euler triple."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones import Backbone, build_backbone, imagenet_normalise
from models.registry import register
from pipeline.core import angles
from pipeline.core.fields import Switch


def gram_schmidt(six: torch.Tensor) -> torch.Tensor:
    """N x 6 -> N x 3 x 3 rotation matrices with columns x, y, z (6DRepNet's construction)."""
    x = F.normalize(six[:, 0:3], dim=1)
    z = F.normalize(torch.cross(x, six[:, 3:6], dim=1), dim=1)
    y = torch.cross(z, x, dim=1)
    return torch.stack([x, y, z], dim=2)


def geodesic(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Angle (radians) of the rotation between matching N x 3 x 3 matrices."""
    cos = (torch.einsum("nij,nij->n", a, b) - 1) / 2  # trace(a^T b) = sum of elementwise products
    return torch.acos(cos.clamp(-1 + eps, 1 - eps))


@register("sixdrepnet")
class SixDRepNet(nn.Module):
    def __init__(self, backbone: Backbone = "resnet18", pretrained: Switch = False):
        super().__init__()
        self.backbone, dim = build_backbone(backbone, pretrained)
        self.fc = nn.Linear(dim, 6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return gram_schmidt(self.fc(self.backbone(imagenet_normalise(images))))

    def predict(self, matrices: torch.Tensor) -> torch.Tensor:
        return angles.biwi_euler(matrices.double()).float()

    def loss(self, matrices: torch.Tensor, targets: dict):
        ypr = targets["ypr"].double()
        truth = angles.rotation_matrix(ypr[:, 0], ypr[:, 1], ypr[:, 2]).to(matrices.dtype)
        loss = geodesic(matrices, truth).mean()
        return loss, {"geodesic": float(loss.detach())}
