"""Skip-GANomaly's UNet generator (methods.md §4.3, the pix2pix ``UnetGenerator`` of the authors'
code); the discriminator is the DCGAN one of ``gan_common``.

For a side of 2^n there are n stride-2 levels, so the bottleneck is always 1×1 (S-1): channels
width, 2·width, … capped at ``cap``; every 4×4 convolution is stride 2, pad 1, without bias except
the last. Each encoder level's output is concatenated to the matching decoder level's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from xadt.plugins.gan_common.networks import dcgan_init

__all__ = ["UnetGenerator", "unet_widths"]


def unet_widths(size: int, width: int, cap: int = 512) -> list[int]:
    """Channels of the n = log2(size) encoder levels; the last is the 1×1 bottleneck.

    32 with width 64 gives [64, 128, 256, 512, 512]; 64 gives [64, 128, 256, 512, 512, 512].
    """
    return [min(width * 2**k, cap) for k in range(int(math.log2(size)))]


class UnetGenerator(nn.Module):
    """UNet: Conv → [LReLU → Conv → BN]… → LReLU → Conv (1×1 bottleneck, no norm), then
    [ReLU → ConvT → BN, concat the encoder level]… → ReLU → ConvT → tanh."""

    def __init__(self, size: int, channels: int, width: int, cap: int = 512) -> None:
        super().__init__()
        e = unet_widths(size, width, cap)
        n = len(e)
        down: list[nn.Module] = [nn.Conv2d(channels, e[0], 4, 2, 1, bias=False)]
        for k in range(1, n):
            layers = [nn.LeakyReLU(0.2), nn.Conv2d(e[k - 1], e[k], 4, 2, 1, bias=False)]
            if k < n - 1:
                layers.append(nn.BatchNorm2d(e[k]))
            down.append(nn.Sequential(*layers))
        up: list[nn.Module] = [
            nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * e[0], channels, 4, 2, 1), nn.Tanh())
        ]
        for k in range(1, n):
            c_in = e[k] if k == n - 1 else 2 * e[k]
            up.append(
                nn.Sequential(
                    nn.ReLU(),
                    nn.ConvTranspose2d(c_in, e[k - 1], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(e[k - 1]),
                )
            )
        self.down, self.up = nn.ModuleList(down), nn.ModuleList(up)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction x̂ of ``x``, in [-1, 1]."""
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        for k in range(len(self.up) - 1, 0, -1):
            x = torch.cat([self.up[k](x), skips[k - 1]], dim=1)
        return self.up[0](x)
