"""HopeNet (Ruiz et al. 2018): 66-bin heads per angle, CE + alpha * MSE of the expected angle
(the papers compare alpha = 1 and alpha = 2)."""
from __future__ import annotations

from models import register
from models.binned import BinnedPose


@register("hopenet", defaults={"backbone": "resnet18", "pretrained": False, "alpha": 1.0})
class HopeNet(BinnedPose):
    def __init__(self, config: dict):
        super().__init__(config, ce=1.0, alpha=config["alpha"])
