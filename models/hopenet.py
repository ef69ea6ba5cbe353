"""HopeNet (Ruiz et al. 2018): 66-bin heads per angle, CE + alpha * MSE of the expected angle
(the papers compare alpha = 1 and alpha = 2)."""
from __future__ import annotations

from models.backbones import Backbone
from models.binned import BinnedPose
from models.dadl import Weight
from pipeline.core.fields import Switch
from models.registry import register


@register("hopenet")
class HopeNet(BinnedPose):
    def __init__(self, backbone: Backbone = "resnet18", pretrained: Switch = False, alpha: Weight = 1.0):
        super().__init__(backbone, pretrained, ce=1.0, alpha=alpha)
