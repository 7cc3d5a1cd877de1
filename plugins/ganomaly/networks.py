"""GANomaly's generator G_E → G_D → E (methods.md §3.3); the discriminator is the DCGAN one."""

from __future__ import annotations

import torch
from torch import nn

from xadt.plugins.gan_common.networks import dcgan_decoder, dcgan_encoder, dcgan_init

__all__ = ["GanomalyGenerator"]


class GanomalyGenerator(nn.Module):
    """Encoder G_E, decoder G_D and a second encoder E with G_E's architecture, own weights.

    ``forward(x)`` returns (x̂ = G_D(G_E(x)), z = G_E(x), ẑ = E(x̂)), codes flattened to
    (B, latent).
    """

    def __init__(self, size: int, channels: int, width: int, latent: int) -> None:
        super().__init__()
        self.encoder = dcgan_encoder(size, channels, width, latent)
        self.decoder = dcgan_decoder(size, channels, width, latent)
        self.encoder2 = dcgan_encoder(size, channels, width, latent)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The reconstruction, the code of ``x`` and the code of the reconstruction."""
        z = self.encoder(x)
        fake = self.decoder(z)
        return fake, z.flatten(1), self.encoder2(fake).flatten(1)
