"""Pretrained CNN backbones: per-patch pooled features (appearance) and logits (semantics).

``create_backbone('efficientnet_lite0')`` gives the default, whose ImageNet weights ship with xadt;
the ResNet family loads torchvision state dicts from a file the user names (methods.md §1.3).
"""

from __future__ import annotations

from xadt.backbones.base import Backbone, BackboneFactory, BackboneOutput
from xadt.backbones.classes import gun_indices, imagenet_classes, imagenet_wnids, plausible_indices
from xadt.backbones.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from xadt.backbones.registry import DEFAULT_BACKBONE, create_backbone
from xadt.backbones.resnet import ResNet, resnet

__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneFactory",
    "BackboneOutput",
    "EfficientNetLite0",
    "ResNet",
    "create_backbone",
    "efficientnet_lite0",
    "gun_indices",
    "imagenet_classes",
    "imagenet_wnids",
    "plausible_indices",
    "resnet",
]
