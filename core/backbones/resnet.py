"""ResNet-18/34/50/101/152 in plain torch, loading torchvision state-dict files the user names.

The module names equal torchvision's (``conv1``, ``layer3.5.conv2``, ``fc`` …) and the blocks follow
torchvision's "v1.5" (stride on the 3x3 conv of a bottleneck), so a torchvision ImageNet state dict
loads with ``strict=True``. No weights ship with xadt and nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xadt.backbones.base import Backbone, conv_bn
from xadt.backbones.weights import file_sha256, load_into, read_state_dict
from xadt.errors import XadtError

__all__ = ["RESNET_DEPTHS", "BasicBlock", "Bottleneck", "ResNet", "resnet"]


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual (ResNet-18/34)."""

    expansion: ClassVar[int] = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _shortcut(cin, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = F.relu_(conv_bn(x, self.conv1, self.bn1))
        y = conv_bn(y, self.conv2, self.bn2)
        return F.relu_(y + _skip(x, self.downsample))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, with a residual (ResNet-50+)."""

    expansion: ClassVar[int] = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = _shortcut(cin, width * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = F.relu_(conv_bn(x, self.conv1, self.bn1))
        y = F.relu_(conv_bn(y, self.conv2, self.bn2))
        y = conv_bn(y, self.conv3, self.bn3)
        return F.relu_(y + _skip(x, self.downsample))


def _skip(x: torch.Tensor, downsample: nn.Sequential | None) -> torch.Tensor:
    """The residual branch: ``x`` itself, or its 1x1 projection."""
    if downsample is None:
        return x
    conv, bn = downsample
    return conv_bn(x, conv, bn)


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """A 1x1 projection + batch norm where the residual changes shape, as torchvision names it."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


RESNET_DEPTHS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
"""Block type and blocks per stage of each ResNet depth."""


class ResNet(Backbone):
    """A torchvision-compatible ResNet: 512-D (18/34) or 2048-D (50+) pooled features, 1000 logits.

    Input: ImageNet normalisation (``mean`` and ``std`` below). Build with :func:`resnet` to load
    a weights file; the constructor alone gives an untrained network.

    Layers for :meth:`forward`'s ``layers``: ``'stem'`` (after the max-pool), ``'layer1'`` …
    ``'layer4'`` (whose average is ``pooled``).
    """

    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)
    input_size = 224

    def __init__(self, depth: int, num_classes: int = 1000) -> None:
        if depth not in RESNET_DEPTHS:
            msg = f"no ResNet of depth {depth}; depths: {sorted(RESNET_DEPTHS)}"
            raise ValueError(msg)
        super().__init__()
        self.depth = depth
        block, counts = RESNET_DEPTHS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for stage, (width, count) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
            stride = 1 if stage == 0 else 2
            blocks = []
            for i in range(count):
                blocks.append(block(cin, width, stride if i == 0 else 1))
                cin = width * block.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)
        self.freeze()

    @property
    def name(self) -> str:  # type: ignore[override]
        """``'resnet<depth>'``."""
        return f"resnet{self.depth}"

    @property
    def classifier(self) -> nn.Linear:  # type: ignore[override]
        """The final ``fc`` layer (torchvision's name)."""
        return self.fc

    @property
    def layer_names(self) -> tuple[str, ...]:
        """``'stem'``, ``'layer1'`` … ``'layer4'``."""
        return ("stem", "layer1", "layer2", "layer3", "layer4")

    def _trunk(
        self, x: torch.Tensor, layers: frozenset[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stem and the four stages, keeping the maps asked for."""
        maps: dict[str, torch.Tensor] = {}
        x = F.max_pool2d(F.relu_(conv_bn(x, self.conv1, self.bn1)), 3, 2, 1)
        if "stem" in layers:
            maps["stem"] = x
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            if name in layers:
                maps[name] = x
        return x, maps

    def load_weights(self, path: str | os.PathLike[str]) -> ResNet:
        """Load a torchvision-format state dict file; return ``self``.

        Raises:
            XadtError: naming the file, if it is not a state dict or its keys or shapes differ.
        """
        load_into(self, read_state_dict(path), path)
        self.weights_id = file_sha256(path)
        return self.freeze()


def resnet(depth: int, *, weights: str | os.PathLike[str] | None = None) -> ResNet:
    """Build a ResNet of the given depth with ImageNet weights from a torchvision state-dict file.

    Args:
        depth: 18, 34, 50, 101 or 152.
        weights: the ``.pth`` file (for example torchvision's ``resnet152-394f9c45.pth``); it is
            required, because xadt ships no ResNet weights and downloads nothing.

    Returns:
        A frozen :class:`ResNet` in eval mode.

    Raises:
        XadtError: if ``weights`` is missing, or the file is not a fitting state dict.
    """
    if weights is None:
        msg = (
            f"backbone 'resnet{depth}' needs weights=FILE, a torchvision ImageNet state dict "
            "(e.g. from torchvision's model zoo); xadt ships none and downloads nothing"
        )
        raise XadtError(msg)
    return ResNet(depth).load_weights(Path(weights))
