"""The ``ganomaly`` detector on the training engine: networks, one D-then-G step, patch scores."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from xadt.engine import Step
from xadt.plugins.gan_common.detector import GanDetector, frozen, signed
from xadt.plugins.gan_common.losses import discriminator_loss, l1, l2
from xadt.plugins.gan_common.networks import DcganDiscriminator
from xadt.plugins.ganomaly.config import GanomalyConfig
from xadt.plugins.ganomaly.losses import generator_loss, latent_score
from xadt.plugins.ganomaly.networks import GanomalyGenerator

__all__ = ["GanomalyDetector"]


class GanomalyDetector(GanDetector):
    """GANomaly on patches: a patch's anomaly score is the distance of z = G_E(x) and
    ẑ = E(G_D(z)), higher = more anomalous; maps spread patch scores over their windows.

    Per batch, as the authors' code: one discriminator step on BCE(D(x), 1) + BCE(D(x̂), 0),
    then one generator step on w_adv·feature matching + w_con·L1 + w_enc·L2 of the codes.
    With ``select='validation'`` the epoch with the lowest L1 reconstruction loss on held-out
    normal patches is kept.
    """

    name: ClassVar[str] = "ganomaly"
    description: ClassVar[str] = (
        "GANomaly (Akcay et al. 2018): encoder-decoder-encoder GAN on patches, latent distance"
    )
    Config: ClassVar[type] = GanomalyConfig
    config: GanomalyConfig
    map_kind = "window"

    def build_networks(self, info: Mapping[str, Any]) -> dict[str, nn.Module]:
        """The generator and the DCGAN discriminator for ``info``'s patch size and channels."""
        c, size, channels = self.config, int(info["patch"]), int(info["channels"])
        return {
            "generator": GanomalyGenerator(size, channels, c.width, c.latent),
            "discriminator": DcganDiscriminator(size, channels, c.width),
        }

    def training_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """One discriminator step, then one generator step (methods.md §3.5)."""
        g, d, c = step.nets["generator"], step.nets["discriminator"], self.config
        x = signed(batch)
        with step.autocast():
            fake, z, z_hat = g(x)
            real_logits, f_real = d(x)
            fake_logits, _ = d(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
        step.optimize("discriminator", d_loss)
        with frozen(d):  # D's weights need no gradient in the generator's step
            with step.autocast():
                _, f_fake = d(fake)
                terms = generator_loss(
                    f_real.detach(), f_fake, x, fake, z, z_hat,
                    w_adv=c.w_adv, w_con=c.w_con, w_enc=c.w_enc,
                )  # fmt: skip
            step.optimize("generator", terms["g"])
        return self.logged(step, terms, d_loss)

    def validation_step(self, step: Step, batch: torch.Tensor) -> dict[str, float]:
        """L1 reconstruction loss (``loss``, the selection loss) and encoder loss of held-out
        normal patches."""
        x = signed(batch)
        fake, z, z_hat = step.nets["generator"](x)
        return {"loss": float(l1(x, fake)), "enc": float(l2(z, z_hat))}

    def score_patches(self, patches: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Latent distance of each patch (``score``: mean squared or mean absolute)."""
        _, z, z_hat = self.networks()["generator"](signed(patches))
        return latent_score(z, z_hat, self.config.score), None
