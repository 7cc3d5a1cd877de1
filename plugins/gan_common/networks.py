"""DCGAN networks of the GANomaly family (methods.md §3.3 and §4.3, from the authors' code).

Every convolution is 4×4 without bias and LeakyReLU slopes are 0.2. An encoder halves the side
until a 4×4 map, doubling the channels from ``width``, then a 4×4 convolution without padding
gives a 1×1 code; the decoder mirrors it with transposed convolutions and ends in tanh. The
discriminator is the encoder up to the 4×4 map (its features f(·)) and a 4×4 classifier to one
logit.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

__all__ = [
    "DcganDiscriminator",
    "dcgan_decoder",
    "dcgan_encoder",
    "dcgan_init",
    "pyramid",
]


def pyramid(size: int, width: int) -> list[int]:
    """Channels of the stride-2 stages that take a ``size`` input down to 4×4: width, 2·width, …

    32 gives [w, 2w, 4w] (16², 8², 4²); 64 gives [w, 2w, 4w, 8w].
    """
    return [width * 2**k for k in range(int(math.log2(size)) - 2)]


def dcgan_encoder(size: int, channels: int, width: int, latent: int) -> nn.Sequential:
    """G_E / E of GANomaly: (B, channels, size, size) → (B, latent, 1, 1).

    Conv(channels→w, s2) → LReLU, then Conv → BN → LReLU doubling the channels down to 4×4,
    then Conv(4×4, s1, p0) to ``latent`` channels.
    """
    return nn.Sequential(
        *_features(size, channels, width), _final(pyramid(size, width)[-1], latent)
    )


def dcgan_decoder(size: int, channels: int, width: int, latent: int) -> nn.Sequential:
    """G_D of GANomaly: (B, latent, 1, 1) → (B, channels, size, size) in [-1, 1].

    ConvT(latent→c, 4×4, s1, p0) → BN → ReLU to 4×4, then ConvT(s2) → BN → ReLU halving the
    channels, and a last ConvT(s2) to ``channels`` → tanh.
    """
    widths = pyramid(size, width)[::-1]
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(latent, widths[0], 4, 1, 0, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(True),
    ]
    for c_in, c_out in itertools.pairwise(widths):
        layers += [
            nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(True),
        ]
    layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class DcganDiscriminator(nn.Module):
    """The DCGAN discriminator; ``forward`` returns (logits (B,), features f(·) (B, c, 4, 4)).

    The papers' D ends in a sigmoid; the losses take its logits (``losses.bce``), which is the
    same loss computed stably.
    """

    def __init__(self, size: int, channels: int, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(*_features(size, channels, width))
        self.classifier = _final(pyramid(size, width)[-1], 1)
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits that ``x`` is real, and the last 4×4 feature map."""
        features = self.features(x)
        return self.classifier(features).flatten(), features

    def reset_parameters(self) -> None:
        """Draw fresh weights (the official initialisation; used by the re-initialisation rule)."""
        self.apply(dcgan_init)


def dcgan_init(module: nn.Module) -> None:
    """The authors' initialisation: conv weights ~ N(0, 0.02); BatchNorm γ ~ N(1, 0.02), β = 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _features(size: int, channels: int, width: int) -> list[nn.Module]:
    widths = pyramid(size, width)
    layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False)]
    layers.append(nn.LeakyReLU(0.2, True))
    for c_in, c_out in itertools.pairwise(widths):
        layers += [
            nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2, True),
        ]
    return layers


def _final(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 4, 1, 0, bias=False)
