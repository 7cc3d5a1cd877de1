"""The built-in backbones, registered through the ``xadt`` entry points like a third party's.

Importing this module is cheap: each factory imports torch and the network only when called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import xadt

if TYPE_CHECKING:
    from xadt.backbones import Backbone, BackboneFactory

_Weights = str | os.PathLike[str] | None


def efficientnet_lite0(*, weights: _Weights = None) -> Backbone:
    """EfficientNet-Lite0, ImageNet weights built in (the default backbone)."""
    from xadt.backbones.efficientnet_lite import efficientnet_lite0 as build

    return build(weights=weights)


def resnet18(*, weights: _Weights = None) -> Backbone:
    """ResNet-18, ImageNet weights from a torchvision file: weights=FILE."""
    return _resnet(18, weights)


def resnet34(*, weights: _Weights = None) -> Backbone:
    """ResNet-34, ImageNet weights from a torchvision file: weights=FILE."""
    return _resnet(34, weights)


def resnet50(*, weights: _Weights = None) -> Backbone:
    """ResNet-50, ImageNet weights from a torchvision file: weights=FILE."""
    return _resnet(50, weights)


def resnet101(*, weights: _Weights = None) -> Backbone:
    """ResNet-101, ImageNet weights from a torchvision file: weights=FILE."""
    return _resnet(101, weights)


def resnet152(*, weights: _Weights = None) -> Backbone:
    """ResNet-152, ImageNet weights from a torchvision file: weights=FILE."""
    return _resnet(152, weights)


def _resnet(depth: int, weights: _Weights) -> Backbone:
    """Build a ResNet, importing torch only now."""
    from xadt.backbones.resnet import resnet

    return resnet(depth, weights=weights)


@xadt.hookimpl
def xadt_backbones() -> dict[str, BackboneFactory]:
    """Return the built-in backbone factories by name (``efficientnet_lite0`` is the default)."""
    return {
        "efficientnet_lite0": efficientnet_lite0,
        "resnet18": resnet18,
        "resnet34": resnet34,
        "resnet50": resnet50,
        "resnet101": resnet101,
        "resnet152": resnet152,
    }
