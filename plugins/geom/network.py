"""The transformation classifier: a pre-activation Wide ResNet (methods.md §5.3) behind the
transformations, so one call maps [0, 1] patches to the logits of every transformed copy."""

from __future__ import annotations

import math

import torch
from torch import nn

from xadt.plugins.geom.transforms import gather_table, transform

__all__ = ["TransformClassifier", "WideResNet"]

_BN = {"momentum": 0.1, "eps": 1e-5}  # Keras momentum 0.9 is torch's 0.1


class _Block(nn.Module):
    """BN → ReLU → conv3×3(stride) → BN → ReLU → conv3×3, plus the identity or a 1×1 conv of the
    first BN-ReLU output when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in, **_BN)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)
            if c_in != c_out or stride != 1
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output."""
        h = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(h)
        h = self.conv2(torch.relu(self.bn2(self.conv1(h))))
        return h + skip


class WideResNet(nn.Module):
    """WRN-depth-widen (Zagoruyko & Komodakis, pre-activation) for ``patch``-pixel inputs.

    Channels 16, 16w, 32w, 64w; (depth - 4) / 6 blocks per group at strides 1, 2, 2; head BN →
    ReLU → 8×8 average pooling (the whole map when it is smaller) → linear. Convolutions have no
    bias and He-normal weights.
    """

    def __init__(self, channels: int, classes: int, *, depth: int, widen: int, patch: int) -> None:
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False)]
        for group, stride in enumerate((1, 2, 2)):
            for b in range(n):
                c_in = widths[group] if b == 0 else widths[group + 1]
                layers.append(_Block(c_in, widths[group + 1], stride if b == 0 else 1))
        self.features = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(widths[3], **_BN)
        side = math.ceil(math.ceil(patch / 2) / 2)  # after the two stride-2 groups
        pool = min(8, side)
        self.pool = nn.AvgPool2d(pool)
        self.head = nn.Linear(widths[3] * (side // pool) ** 2, classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) of images (N, C, p, p) in [-1, 1]."""
        h = self.pool(torch.relu(self.bn(self.features(x))))
        return self.head(h.flatten(1))


class TransformClassifier(nn.Module):
    """Applies each transformation of a set to [0, 1] patches, scales them to [-1, 1] and
    classifies every copy with a :class:`WideResNet`.

    ``forward`` maps (B, C, p, p) to logits (B, K, K): entry ``[b, i, j]`` is class ``j``'s logit
    for patch ``b`` under transformation ``i`` of ``transforms``; training asks for a shuffled
    mix of copies instead.
    """

    def __init__(
        self,
        channels: int,
        patch: int,
        transforms: tuple[int, ...],
        *,
        shift: int,
        depth: int,
        widen: int,
    ) -> None:
        super().__init__()
        self.classes = len(transforms)
        self.wrn = WideResNet(channels, self.classes, depth=depth, widen=widen, patch=patch)
        # Derived from the options, so not part of the weights.
        self.register_buffer("table", gather_table(patch, shift, transforms), persistent=False)

    def transform(self, patches: torch.Tensor) -> torch.Tensor:
        """Every transformed copy of ``patches``, flattened to (B·K, C, p, p) in [-1, 1]."""
        return transform(patches * 2 - 1, self.table).flatten(0, 1)

    def copies(self, patches: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """The copies ``pairs[:, 1]`` (positions in the set) of patches ``pairs[:, 0]``, as
        (N, C, p, p) in [-1, 1]: one gather, whatever the mix of transformations."""
        b, c, h, w = patches.shape
        flat = (patches * 2 - 1).reshape(b, c, h * w)
        channel = torch.arange(c, device=patches.device)[None, :, None]
        out = flat[pairs[:, 0, None, None], channel, self.table[pairs[:, 1]][:, None, :]]
        return out.reshape(len(pairs), c, h, w)

    def forward(self, patches: torch.Tensor, pairs: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K, K) of every transformed copy of ``patches`` (B, C, p, p) in [0, 1]; or,
        given ``pairs``, the logits (N, K) of those copies alone (see :meth:`copies`)."""
        if pairs is not None:
            return self.wrn(self.copies(patches, pairs))
        logits = self.wrn(self.transform(patches))
        return logits.reshape(len(patches), self.classes, self.classes)
